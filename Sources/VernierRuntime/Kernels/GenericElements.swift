import Foundation
import VernierGraph

/// The slow-but-general path of the Pool, Normalization and Reduce kernels: element types
/// other than float are widened to Double, computed with the same loops, and narrowed back.
/// Exact for every integer below 2^53 and for float16/double results within tolerance.
enum GenericElements {
    /// Element types the generic paths read and write.
    static func supports(_ type: ElementType) -> Bool {
        switch type {
        case .float, .double, .float16, .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64, .bool:
            return true
        default:
            return false
        }
    }

    /// The elements of `tensor` as Double, or `.unsupported` for other element types.
    static func load(_ tensor: Tensor) throws -> [Double] {
        guard supports(tensor.elementType), let values = tensor.doubles() else {
            throw KernelError.unsupported("element type \(tensor.elementType)")
        }
        return values
    }

    /// Writes `values` into `tensor`, converting to its element type: integers round toward
    /// zero (C's conversion) and saturate; NaN becomes 0; bool is `value != 0`.
    static func store(_ values: UnsafeBufferPointer<Double>, into tensor: Tensor) {
        let count = min(values.count, tensor.elementCount)
        let raw = tensor.rawPointer
        switch tensor.elementType {
        case .float:
            let p = raw.assumingMemoryBound(to: Float.self)
            for i in 0..<count { p[i] = Float(values[i]) }
        case .double:
            let p = raw.assumingMemoryBound(to: Double.self)
            for i in 0..<count { p[i] = values[i] }
        case .float16:
            let p = raw.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { p[i] = Float16(Float(values[i])) }
        case .int8: storeInteger(values, raw, count, Int8.self)
        case .int16: storeInteger(values, raw, count, Int16.self)
        case .int32: storeInteger(values, raw, count, Int32.self)
        case .int64: storeInteger(values, raw, count, Int64.self)
        case .uint8: storeInteger(values, raw, count, UInt8.self)
        case .uint16: storeInteger(values, raw, count, UInt16.self)
        case .uint32: storeInteger(values, raw, count, UInt32.self)
        case .uint64: storeInteger(values, raw, count, UInt64.self)
        case .bool:
            let p = raw.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { p[i] = values[i] != 0 ? 1 : 0 }
        default:
            break
        }
    }

    static func store(_ values: [Double], into tensor: Tensor) {
        values.withUnsafeBufferPointer { store($0, into: tensor) }
    }

    private static func storeInteger<T: FixedWidthInteger>(_ values: UnsafeBufferPointer<Double>,
                                                          _ raw: UnsafeMutableRawPointer, _ count: Int, _: T.Type) {
        let p = raw.assumingMemoryBound(to: T.self)
        let low = Double(T.min), high = Double(T.max)
        for i in 0..<count {
            let v = values[i]
            if v.isNaN { p[i] = 0 } else if v <= low { p[i] = T.min } else if v >= high { p[i] = T.max } else {
                p[i] = T(v.rounded(.towardZero))
            }
        }
    }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var result = Array(repeating: 1, count: shape.count)
        var running = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            result[i] = running
            running *= shape[i]
        }
        return result
    }

    /// `axis` in `-rank..<rank` made non-negative, or `.invalid`.
    static func normalizedAxis(_ axis: Int, rank: Int) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < max(rank, 1) else {
            throw KernelError.invalid("axis \(axis) is out of range for rank \(rank)")
        }
        return a
    }

    /// The product of `shape[range]`.
    static func product(_ shape: [Int], _ range: Range<Int>) -> Int {
        var p = 1
        for i in range { p *= shape[i] }
        return p
    }
}

/// Vectorized exp for the float fast paths (softmax, log-softmax): range reduction to
/// `x = n ln2 + r`, |r| <= ln2/2, and a degree-6 polynomial for e^r; about 2 ulp.
enum NormMath {
    @inline(__always)
    static func exp(_ input: SIMD8<Float>) -> SIMD8<Float> {
        let x = minimum(maximum(input, SIMD8(repeating: -87.33654)), SIMD8(repeating: 88.37626))
        // n = round(x·log2(e)) with the 1.5·2^23 trick: t's low mantissa bits hold n.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = x * 1.442_695_04 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        p = p * (r * r) + r + 1
        // 2^n: (n + 127) << 23, with n read from t's bits (0x4B40_0000 is the magic's).
        let exponent = ((unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000) &+ 127) &<< 23
        let result = p * unsafeBitCast(exponent, to: SIMD8<Float>.self)
        // exp(-inf) and other underflows are exactly 0 (masked attention scores).
        return result.replacing(with: 0, where: input .< -87.33654)
    }

    /// exp of 16 lanes for softmax's shifted logits: four independent SSE chains, and no
    /// clamping, so inputs must be <= 0 (underflows and -inf still give exactly 0).
    @inline(__always)
    static func exp16(_ input: SIMD16<Float>) -> SIMD16<Float> {
        let x = input
        // n = round(x·log2(e)) with the 1.5·2^23 trick: t's low mantissa bits hold n.
        let magic = SIMD16<Float>(repeating: 12_582_912)
        let t = x * 1.442_695_04 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        p = p * (r * r) + r + 1
        // 2^n: (n + 127) << 23, with n read from t's bits (0x4B40_0000 is the magic's).
        let exponent = ((unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000) &+ 127) &<< 23
        let result = p * unsafeBitCast(exponent, to: SIMD16<Float>.self)
        // exp(-inf) and other underflows are exactly 0 (masked attention scores).
        return result.replacing(with: 0, where: input .< -87.33654)
    }

    /// Lane-wise max and min. `pointwiseMax`/`pointwiseMin` compile to a scalar loop with
    /// branches; compare-and-select compiles to `maxps`/`minps`.
    @inline(__always)
    static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

    @inline(__always)
    static func maximum(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: a .< b) }

    @inline(__always)
    static func minimum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

    @inline(__always)
    static func abs(_ v: SIMD8<Float>) -> SIMD8<Float> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
    }

    /// Loads `count` (< 8) floats, the rest set to `fill`.
    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> SIMD8<Float> {
        var v = SIMD8<Float>(repeating: fill)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    @inline(__always)
    static func storePartial(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { p[i] = v[i] }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Sum of a float row, two SIMD8 accumulators.
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        while i + 16 <= n { a += load(p + i); b += load(p + i + 8); i += 16 }
        if i + 8 <= n { a += load(p + i); i += 8 }
        var s = (a + b).sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    /// Max of a float row (n >= 1).
    @inline(__always)
    static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var s = -Float.infinity
        if n >= 8 {
            var a = load(p)
            i = 8
            while i + 8 <= n { a = maximum(a, load(p + i)); i += 8 }
            s = a.max()
        }
        while i < n { s = Swift.max(s, p[i]); i += 1 }
        return s
    }
}
