import Foundation

/// Where a tensor's bytes live. Large weights stay in the memory-mapped model or
/// external-data file and are read in place.
public enum TensorStorage: Sendable {
    /// Little-endian packed bytes held in memory (small tensors, typed-field tensors).
    case bytes([UInt8])
    /// A range of a memory-mapped file.
    case mapped(MappedFile, offset: Int, length: Int)
    /// STRING tensors: one byte string per element.
    case strings([[UInt8]])
}

/// A tensor with data: an initializer, a Constant's value, or a tensor attribute.
public struct TensorData: Sendable {
    public var name: String
    public var elementType: ElementType
    public var dims: [Int]
    public var storage: TensorStorage

    public init(name: String, elementType: ElementType, dims: [Int], storage: TensorStorage) {
        self.name = name
        self.elementType = elementType
        self.dims = dims
        self.storage = storage
    }

    public var type: TensorType { TensorType(elementType, known: dims) }

    /// Element count (the loader has checked it does not overflow).
    public var elementCount: Int { dims.reduce(1, *) }

    /// Bytes the payload occupies (for strings, the sum of the string lengths).
    public var byteCount: Int {
        switch storage {
        case .bytes(let b): return b.count
        case .mapped(_, _, let length): return length
        case .strings(let s): return s.reduce(0) { $0 + $1.count }
        }
    }

    /// Calls `body` with the packed little-endian bytes (empty for strings).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .bytes(let b): return try b.withUnsafeBytes(body)
        case .mapped(let file, let offset, let length): return try body(file.slice(offset: offset, length: length))
        case .strings: return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// For weights mapped from the file: drops their resident pages (see
    /// `MappedFile.releasePages`); nothing for inline data.
    public func releaseResidentPages() {
        if case .mapped(let file, let offset, let length) = storage { file.releasePages(offset: offset, length: length) }
    }

    /// Integer elements widened to Int (int8...uint64, bool); nil for other types.
    public func integerValues() -> [Int]? {
        let n = elementCount
        return withUnsafeBytes { raw -> [Int]? in
            func read<T: FixedWidthInteger>(_: T.Type) -> [Int]? {
                guard raw.count >= n * MemoryLayout<T>.size else { return nil }
                return (0..<n).map { Int(truncatingIfNeeded: T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))) }
            }
            switch elementType {
            case .int64: return read(Int64.self)
            case .int32: return read(Int32.self)
            case .int16: return read(Int16.self)
            case .int8: return read(Int8.self)
            case .uint8, .bool: return read(UInt8.self)
            case .uint16: return read(UInt16.self)
            case .uint32: return read(UInt32.self)
            case .uint64: return read(UInt64.self)
            default: return nil
            }
        }
    }

    /// Floating-point elements widened to Double (float, double, float16); integer
    /// types are converted too; nil for other types.
    public func doubleValues() -> [Double]? {
        let n = elementCount
        switch elementType {
        case .float:
            return withUnsafeBytes { raw in
                guard raw.count >= n * 4 else { return nil }
                return (0..<n).map { Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))) }
            }
        case .double:
            return withUnsafeBytes { raw in
                guard raw.count >= n * 8 else { return nil }
                return (0..<n).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
            }
        case .float16:
            return withUnsafeBytes { raw in
                guard raw.count >= n * 2 else { return nil }
                return (0..<n).map { Double(halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
            }
        case .bfloat16:
            return withUnsafeBytes { raw in
                guard raw.count >= n * 2 else { return nil }
                return (0..<n).map { Double(Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) << 16)) }
            }
        default:
            return integerValues()?.map(Double.init)
        }
    }
}

/// IEEE half to single precision, without relying on the platform's Float16.
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
}
