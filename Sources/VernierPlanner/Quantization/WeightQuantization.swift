import Foundation
import VernierGraph

/// A float weight quantized to symmetric int8: `w ≈ q * scale`, zero point 0, `q` in
/// [-127, 127] (the range symmetric about zero, so -128 is never used and the
/// dequantized range is exactly ±max|w|).
public struct QuantizedWeight: Sendable {
    /// The int8 values, in the original element order.
    public var values: [Int8]
    /// One scale (per tensor) or one per index along `axis` (per output channel).
    public var scales: [Float]
    /// The axis the scales run along; nil for a single per-tensor scale.
    public var axis: Int?
    public var dims: [Int]
}

/// Symmetric int8 weight quantization and float16 storage of float weights.
public enum WeightQuantization {
    /// The largest magnitude a symmetric int8 value takes.
    public static let int8Limit: Float = 127

    /// The scale that maps `maxMagnitude` onto 127. An all-zero slice gets scale 1 (any
    /// positive scale represents zeros exactly; ONNX requires a non-zero scale).
    public static func symmetricScale(maxMagnitude: Float) -> Float {
        maxMagnitude > 0 && maxMagnitude.isFinite ? maxMagnitude / int8Limit : 1
    }

    /// `values` (laid out with `dims`) quantized per tensor (`axis` nil) or with one
    /// scale per index along `axis`. Rounding is half to even, as QuantizeLinear does.
    public static func quantize(_ values: [Float], dims: [Int], axis: Int?) -> QuantizedWeight {
        let channels = axis.map { dims[$0] } ?? 1
        let inner = axis.map { dims[($0 + 1)...].reduce(1, *) } ?? max(values.count, 1)
        func channel(of index: Int) -> Int { axis == nil ? 0 : (index / inner) % channels }
        var maxima = [Float](repeating: 0, count: channels)
        for (i, v) in values.enumerated() { maxima[channel(of: i)] = max(maxima[channel(of: i)], abs(v)) }
        let scales = maxima.map { symmetricScale(maxMagnitude: $0) }
        let q = values.enumerated().map { i, v -> Int8 in
            let scaled = (v / scales[channel(of: i)]).rounded(.toNearestOrEven)
            return Int8(max(-int8Limit, min(int8Limit, scaled.isFinite ? scaled : 0)))
        }
        return QuantizedWeight(values: q, scales: scales, axis: axis, dims: dims)
    }

    /// The float values of a float32 tensor; nil for other element types.
    public static func floats(of t: TensorData) -> [Float]? {
        guard t.elementType == .float else { return nil }
        let n = t.elementCount
        return t.withUnsafeBytes { raw -> [Float]? in
            guard raw.count >= n * 4 else { return nil }
            return (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// IEEE binary16 bits of `v`, rounded to nearest even; overflow becomes infinity.
    public static func halfBits(_ v: Float) -> UInt16 {
        let bits = v.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0) }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 31 { return sign | 0x7C00 }
        if halfExponent <= 0 {
            // Subnormal half (or zero): shift the implicit bit in, round to nearest even.
            if halfExponent < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - halfExponent)
            let half = mantissa >> shift
            let rest = mantissa & ((1 << shift) - 1)
            let midpoint = UInt32(1) << (shift - 1)
            let rounded = rest > midpoint || (rest == midpoint && half & 1 == 1) ? half + 1 : half
            return sign | UInt16(rounded)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && result & 1 == 1) { result += 1 }   // may carry into the exponent: correct
        return sign | UInt16(result)
    }

    /// `t` (float32) stored as float16 under the same name.
    public static func float16Copy(of t: TensorData) -> TensorData? {
        guard let values = floats(of: t) else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * 2)
        for v in values { withUnsafeBytes(of: halfBits(v).littleEndian) { bytes += $0 } }
        return TensorData(name: t.name, elementType: .float16, dims: t.dims, storage: .bytes(bytes))
    }

    /// An int8 tensor of `values`.
    static func int8Tensor(_ name: String, _ values: [Int8], dims: [Int]) -> TensorData {
        TensorData(name: name, elementType: .int8, dims: dims, storage: .bytes(values.map { UInt8(bitPattern: $0) }))
    }

    /// A uint8 tensor of `values`.
    static func uint8Tensor(_ name: String, _ values: [UInt8], dims: [Int]) -> TensorData {
        TensorData(name: name, elementType: .uint8, dims: dims, storage: .bytes(values))
    }
}
