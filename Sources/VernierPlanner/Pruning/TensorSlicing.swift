import Foundation
import VernierGraph

/// A tensor that cannot be sliced.
public enum TensorSliceError: Error, CustomStringConvertible, Sendable, Equatable {
    case unsupportedElementType(tensor: String, elementType: String)
    case indexOutOfRange(tensor: String, axis: Int, index: Int, size: Int)

    public var description: String {
        switch self {
        case .unsupportedElementType(let t, let e):
            return "tensor '\(t)' holds \(e) elements, which cannot be sliced (sub-byte or string types)"
        case .indexOutOfRange(let t, let axis, let index, let size):
            return "tensor '\(t)': index \(index) along axis \(axis) is outside its size \(size)"
        }
    }
}

/// Copies of stored tensors with some indices removed.
enum TensorSlicing {
    /// `t` keeping only the listed indices (ascending) along each listed axis; the
    /// result is held in memory, the original (perhaps mapped) is not touched.
    static func keeping(_ keep: [Int: [Int]], of t: TensorData) throws -> TensorData {
        guard let bits = t.elementType.bitWidth, bits >= 8, bits % 8 == 0 else {
            throw TensorSliceError.unsupportedElementType(tensor: t.name, elementType: t.elementType.description)
        }
        var dims = t.dims
        var bytes = t.withUnsafeBytes { [UInt8]($0) }
        // One axis at a time: each pass copies whole inner blocks.
        for (axis, indices) in keep.sorted(by: { $0.key < $1.key }) {
            guard axis < dims.count else { continue }
            if let bad = indices.first(where: { $0 < 0 || $0 >= dims[axis] }) {
                throw TensorSliceError.indexOutOfRange(tensor: t.name, axis: axis, index: bad, size: dims[axis])
            }
            let outer = dims[..<axis].reduce(1, *)
            let block = dims[(axis + 1)...].reduce(1, *) * bits / 8
            let size = dims[axis]
            var out = [UInt8](repeating: 0, count: outer * indices.count * block)
            bytes.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress, block > 0 else { return }
                    var at = 0
                    for o in 0..<outer {
                        for i in indices {
                            memcpy(d + at, s + (o * size + i) * block, block)
                            at += block
                        }
                    }
                }
            }
            bytes = out
            dims[axis] = indices.count
        }
        return TensorData(name: t.name, elementType: t.elementType, dims: dims, storage: .bytes(bytes))
    }

    /// An integer tensor like `t` (name, type, dims) holding `values`.
    static func integers(_ values: [Int], like t: TensorData) -> TensorData {
        var bytes: [UInt8] = []
        for v in values {
            switch t.elementType {
            case .int32: withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { bytes += $0 }
            default: withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 }
            }
        }
        return TensorData(name: t.name, elementType: t.elementType == .int32 ? .int32 : .int64, dims: t.dims, storage: .bytes(bytes))
    }
}
