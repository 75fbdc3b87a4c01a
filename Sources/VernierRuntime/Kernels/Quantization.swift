import VernierGraph

/// Kernels of the Quantization family (same file name as the shape rules and cost
/// formulas): QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, and the integer
/// products whose shape rules live in MatMul.swift (MatMulInteger, QLinearMatMul) and
/// Conv.swift (ConvInteger, QLinearConv).
///
/// Rounding is half to even and results saturate, as ONNX specifies. The integer products
/// run on `ExactIntegerGemm`: operands minus zero points are integers of at most 255 in
/// magnitude, so fp32 products and sums of up to 64 of them are exact; the fp32 SIMD
/// micro-kernel sums 64-deep slices and adds them up in int32. The results are exactly
/// the int32 sums ONNX defines. float8 element types are not supported.
enum QuantizationKernels {
    static let all: [String: KernelFactory] = [
        "QuantizeLinear": { try QuantizeLinearKernel($0) },
        "DequantizeLinear": { try DequantizeLinearKernel($0) },
        "DynamicQuantizeLinear": { _ in FunctionKernel(dynamicQuantizeLinear) },
        "MatMulInteger": { try IntegerMatMulKernel($0, qlinear: false) },
        "QLinearMatMul": { ctx in
            if let int8 = try Int8MatMulKernel.make(ctx) { return int8 }
            return try IntegerMatMulKernel(ctx, qlinear: true)
        },
        "ConvInteger": { try IntegerConvKernel($0, qlinear: false) },
        "QLinearConv": { ctx in
            if let int8 = try Int8ConvKernel.make(ctx) { return int8 }
            let exact = try IntegerConvKernel(ctx, qlinear: true)
            guard ctx.inputLayout(0) == .plain, ctx.outputLayout(0) == .plain else {
                return ChannelsLastAdapter(exact, input: ctx.inputLayout(0), output: ctx.outputLayout(0))
            }
            return exact
        },
    ]
}

// MARK: - Element types and parameters

/// The integer range of a quantized element type.
func quantizedRange(_ type: ElementType, what: String) throws -> ClosedRange<Int32> {
    switch type {
    case .uint8: return 0...255
    case .int8: return -128...127
    case .uint16: return 0...65535
    case .int16: return -32768...32767
    case .uint4: return 0...15
    case .int4: return -8...7
    case .int32: return Int32.min...Int32.max
    case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0, .float4e2m1:
        throw KernelError.unsupported("\(what) of type \(type): float8/float4 quantization is not implemented")
    default:
        throw KernelError.unsupported("\(what) of type \(type) (uint8, int8, uint16, int16, uint4, int4 or int32)")
    }
}

/// The elements of an integer tensor (packed 4-bit types unpacked, low nibble first).
func quantizedElements(_ t: Tensor, what: String) throws -> [Int32] {
    switch t.elementType {
    case .uint8: return t.scalars(as: UInt8.self).map { Int32($0) }
    case .int8: return t.scalars(as: Int8.self).map { Int32($0) }
    case .uint16: return t.scalars(as: UInt16.self).map { Int32($0) }
    case .int16: return t.scalars(as: Int16.self).map { Int32($0) }
    case .int32: return t.scalars(as: Int32.self)
    case .uint4, .int4:
        let bytes = UnsafeBufferPointer(start: t.rawPointer.assumingMemoryBound(to: UInt8.self), count: t.byteCount)
        let signed = t.elementType == .int4
        return (0..<t.elementCount).map { i in
            let nibble = Int32((bytes[i / 2] >> (4 * UInt8(i % 2))) & 0xF)
            return signed && nibble >= 8 ? nibble - 16 : nibble
        }
    default:
        _ = try quantizedRange(t.elementType, what: what)
        throw KernelError.unsupported("\(what) of type \(t.elementType)")
    }
}

/// Writes `values` (already in range) into an integer tensor of its element type.
func storeQuantized(_ values: UnsafeBufferPointer<Int32>, into t: Tensor) {
    let n = min(values.count, t.elementCount)
    let raw = t.rawPointer
    switch t.elementType {
    case .uint8: for i in 0..<n { raw.storeBytes(of: UInt8(truncatingIfNeeded: values[i]), toByteOffset: i, as: UInt8.self) }
    case .int8: for i in 0..<n { raw.storeBytes(of: Int8(truncatingIfNeeded: values[i]), toByteOffset: i, as: Int8.self) }
    case .uint16: for i in 0..<n { raw.storeBytes(of: UInt16(truncatingIfNeeded: values[i]), toByteOffset: 2 * i, as: UInt16.self) }
    case .int16: for i in 0..<n { raw.storeBytes(of: Int16(truncatingIfNeeded: values[i]), toByteOffset: 2 * i, as: Int16.self) }
    case .int32: for i in 0..<n { raw.storeBytes(of: values[i], toByteOffset: 4 * i, as: Int32.self) }
    case .uint4, .int4:
        for byte in 0..<t.byteCount {
            let low = UInt8(truncatingIfNeeded: values[2 * byte]) & 0xF
            let high = 2 * byte + 1 < n ? UInt8(truncatingIfNeeded: values[2 * byte + 1]) & 0xF : 0
            raw.storeBytes(of: low | high << 4, toByteOffset: byte, as: UInt8.self)
        }
    default: break
    }
}

/// The elements of a floating-point tensor (or int32, QuantizeLinear's integer input) as Float.
func floatElements(_ t: Tensor, what: String) throws -> [Float] {
    switch t.elementType {
    case .float: return t.scalars(as: Float.self)
    case .float16: return t.scalars(as: Float16.self).map { Float($0) }
    case .bfloat16: return t.scalars(as: UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
    case .int32: return t.scalars(as: Int32.self).map { Float($0) }
    case .double: return t.scalars(as: Double.self).map { Float($0) }
    default: throw KernelError.unsupported("\(what) of type \(t.elementType) (float, float16, bfloat16)")
    }
}

/// Round half to even of a Float of magnitude below 2^22 by the 1.5 * 2^23 shift (exact in
/// the default rounding mode).
@inline(__always)
func roundHalfEven(_ v: Float) -> Float { (v + 12_582_912) - 12_582_912 }

/// ONNX's saturate(round(x / scale) + zeroPoint), NaN to the zero point, for ranges
/// within +-2^22 (every quantized type but int32), one element at a time (the general
/// path; `QuantizeLoops.row` is the vectorized 8-bit one).
@inline(__always)
func quantize(_ x: Float, scale: Float, zeroPoint: Int32, low: Float, high: Float) -> Int32 {
    var v = x / scale
    v = v != v ? 0 : v
    v = Swift.min(Swift.max(v, -4_194_304), 4_194_304)
    let q = Swift.min(Swift.max(roundHalfEven(v) + Float(zeroPoint), low), high)
    // q is a small integer: its value sits in the mantissa of q + 1.5 * 2^23.
    return Int32(bitPattern: (q + 12_582_912).bitPattern) &- 0x4B40_0000
}

/// How per-tensor, per-axis or blocked scales and zero points map onto a tensor seen as
/// `[outer, axisSize, inner]`.
struct QuantizationLayout {
    let outer: Int, axisSize: Int, inner: Int
    /// 0 per tensor; for blocked, the block size along the axis; -1 per axis.
    let blockSize: Int

    init(shape: [Int], parameter: [Int], axis: Int, blockSize: Int, op: String) throws {
        let count = parameter.reduce(1, *)
        if count == 1 && blockSize <= 0 {
            outer = shape.reduce(1, *); axisSize = 1; inner = 1; self.blockSize = 0
            return
        }
        let rank = shape.count
        guard axis >= -rank, axis < rank else { throw KernelError.invalid("\(op) axis \(axis) is out of range for rank \(rank)") }
        let a = axis < 0 ? axis + rank : axis
        outer = shape[..<a].reduce(1, *)
        axisSize = shape[a]
        inner = shape[(a + 1)...].reduce(1, *)
        if blockSize > 0 {
            var expected = shape
            expected[a] = (shape[a] + blockSize - 1) / blockSize
            guard parameter == expected else {
                throw KernelError.invalid("\(op) blocked scale \(parameter) must be \(expected) for input \(shape), block_size \(blockSize)")
            }
            self.blockSize = blockSize
        } else {
            guard parameter.count == 1, count == shape[a] else {
                throw KernelError.invalid("\(op) scale \(parameter) must be a scalar or 1-D of \(shape[a]) (axis \(a) of \(shape))")
            }
            self.blockSize = -1
        }
    }

    var isBlocked: Bool { blockSize > 0 }

    /// Elements per span: a per-axis row, or for one scale over the whole tensor a piece
    /// threads can share (a per-tensor layout has rows of one element, and a loop over
    /// them ran 20x slower than the SIMD row loop over a long span).
    var spanLength: Int { blockSize == 0 ? 16384 : inner }
    var elementCount: Int { outer * axisSize * inner }
    var spanCount: Int { spanLength > 0 ? (elementCount + spanLength - 1) / spanLength : 0 }
    /// Fewest spans a thread takes: about 32K elements.
    var spansPerThread: Int { max(1, 32768 / max(1, spanLength)) }

    /// Span `s` of a per-tensor or per-axis layout: its first element, its length, and
    /// the index of its scale and zero point.
    @inline(__always) func span(_ s: Int) -> (start: Int, count: Int, parameter: Int) {
        let start = s * spanLength
        return (start, min(spanLength, elementCount - start), blockSize == 0 ? 0 : s % axisSize)
    }

    /// The parameter index of row (o, a) of a per-tensor or per-axis layout.
    @inline(__always) func rowParameter(_ o: Int, _ a: Int) -> Int { blockSize == 0 ? 0 : a }

    /// The parameter index of element (o, a, i) of a blocked layout.
    @inline(__always) func blockedParameter(_ o: Int, _ a: Int, _ i: Int) -> Int {
        let blocks = (axisSize + blockSize - 1) / blockSize
        return (o * blocks + a / blockSize) * inner + i
    }
}

// MARK: - QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear

final class QuantizeLinearKernel: Kernel {
    let axis: Int, blockSize: Int
    let outputType: ElementType?
    let opset: Int

    init(_ ctx: KernelContext) throws {
        opset = ctx.opset
        axis = try ctx.node.int("axis", default: 1)
        blockSize = try ctx.node.int("block_size", default: 0)
        guard blockSize >= 0 else { throw KernelError.invalid("QuantizeLinear block_size \(blockSize) must not be negative") }
        let dtype = try ctx.node.int("output_dtype", default: 0)
        if dtype != 0 {
            guard let t = ElementType(rawValue: dtype) else { throw KernelError.invalid("QuantizeLinear output_dtype \(dtype) is unknown") }
            _ = try quantizedRange(t, what: "QuantizeLinear output")
            outputType = t
        } else {
            outputType = nil
        }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0), scaleTensor = try requiredInput(inputs, 1)
        let zeroTensor = inputs.count > 2 ? inputs[2] : nil
        if let zeroTensor, let outputType, zeroTensor.elementType != outputType {
            throw KernelError.invalid("QuantizeLinear zero point of \(zeroTensor.elementType) but output_dtype \(outputType)")
        }
        let type = zeroTensor?.elementType ?? outputType ?? .uint8
        guard type != .int32 else { throw KernelError.unsupported("QuantizeLinear to int32") }
        let range = try quantizedRange(type, what: "QuantizeLinear output")
        let layout = try QuantizationLayout(shape: x.shape, parameter: scaleTensor.shape, axis: axis, blockSize: blockSize, op: "QuantizeLinear")
        if let zeroTensor, zeroTensor.shape != scaleTensor.shape && zeroTensor.elementCount != scaleTensor.elementCount {
            throw KernelError.invalid("QuantizeLinear zero point \(zeroTensor.shape) does not match scale \(scaleTensor.shape)")
        }
        let scales = try floatElements(scaleTensor, what: "QuantizeLinear scale")
        let zeros = try zeroTensor.map { try quantizedElements($0, what: "QuantizeLinear zero point") }
            ?? [Int32](repeating: 0, count: scales.count)
        let out = try outputs.allocate(0, type, x.shape)
        let (low, high) = (Float(range.lowerBound), Float(range.upperBound))
        let inner = layout.inner

        if x.elementType == .float, (type == .uint8 || type == .int8), !layout.isBlocked {
            // The common case: SIMD over contiguous rows, one scale per row.
            let source = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
            let target = out.rawPointer.assumingMemoryBound(to: UInt8.self)
            ThreadPool.parallelFor(layout.spanCount, minimumPerThread: layout.spansPerThread) { range in
                for s in range {
                    let (start, count, p) = layout.span(s)
                    QuantizeLoops.row(source + start, target + start, count: count,
                                      scale: scales[p], zeroPoint: zeros[p], low: low, high: high)
                }
            }
            return
        }
        let xs = try floatElements(x, what: "QuantizeLinear input")
        var q = [Int32](repeating: 0, count: xs.count)
        for o in 0..<layout.outer {
            for a in 0..<layout.axisSize {
                let base = (o * layout.axisSize + a) * inner
                for i in 0..<inner {
                    let p = layout.isBlocked ? layout.blockedParameter(o, a, i) : layout.rowParameter(o, a)
                    q[base + i] = quantize(xs[base + i], scale: scales[p], zeroPoint: zeros[p], low: low, high: high)
                }
            }
        }
        q.withUnsafeBufferPointer { storeQuantized($0, into: out) }
    }
}

/// ONNX's saturate(round(x / scale) + zeroPoint) into an 8-bit type, NaN to the zero
/// point, written so loops over it vectorize: x / scale clamped to the range minus the
/// zero point, rounded half to even by the 1.5 * 2^23 shift, plus the zero point, whose
/// low byte is the result (for int8 too). The clamp comes first so no step leaves the
/// mantissa; the zero point is added after rounding (added before, an odd zero point
/// would flip which way ties go).
struct ByteQuantizer {
    let scale: Float, zeroPoint: Int32
    let low: Float, high: Float

    /// `low` and `high`: the output type's range.
    init(scale: Float, zeroPoint: Int32, low: Float, high: Float) {
        (self.scale, self.zeroPoint) = (scale, zeroPoint)
        (self.low, self.high) = (low - Float(zeroPoint), high - Float(zeroPoint))
    }

    @inline(__always)
    func callAsFunction(_ x: Float) -> UInt8 {
        let d = x / scale
        var v = d > low ? d : low
        v = v < high ? v : high
        v = d != d ? 0 : v
        return UInt8(truncatingIfNeeded: Int32(bitPattern: (v + 12_582_912).bitPattern) &+ zeroPoint)
    }
}

/// The one scale and zero point of an 8-bit operand (an omitted zero point is 0), and
/// DequantizeLinear's fp32 value of its integers: DequantizeLinear and the QLinear
/// element-wise kernels compute it here, so the fused kernels match the QDQ graph bit
/// for bit.
struct ScalarQuantization {
    let scale: Float, zeroPoint: Int32

    init(scale: Float, zeroPoint: Int32) { (self.scale, self.zeroPoint) = (scale, zeroPoint) }

    /// Reads inputs `s` (one fp32 value) and `z` (one value of `type`, or omitted) of a
    /// QLinear op.
    init(_ inputs: [Tensor?], scale s: Int, zeroPoint z: Int, type: ElementType, op: String, operand: String) throws {
        let scaleTensor = try requiredInput(inputs, s)
        guard scaleTensor.elementType == .float, scaleTensor.elementCount == 1 else {
            throw KernelError.unsupported("\(op) \(operand)_scale of \(scaleTensor.elementType) \(scaleTensor.shape): one fp32 value (per tensor) is supported")
        }
        scale = scaleTensor.rawPointer.load(as: Float.self)
        guard z < inputs.count, let zeroTensor = inputs[z] else {
            zeroPoint = 0
            return
        }
        guard zeroTensor.elementType == type, zeroTensor.elementCount == 1 else {
            throw KernelError.invalid("\(op) \(operand)_zero_point must be one \(type) value, got \(zeroTensor.elementType) \(zeroTensor.shape)")
        }
        zeroPoint = type == .uint8 ? Int32(zeroTensor.rawPointer.load(as: UInt8.self)) : Int32(zeroTensor.rawPointer.load(as: Int8.self))
    }

    /// DequantizeLinear's fp32 value of `q`.
    @inline(__always)
    func real<T: FixedWidthInteger>(_ q: T) -> Float { Float(Int32(truncatingIfNeeded: q) &- zeroPoint) * scale }
}

/// The row loop of QuantizeLinear float -> 8-bit: 0.36 -> 0.23 ns per element against
/// `quantize` per element; the division is most of what is left, and MLAS divides too.
/// A hand-written SIMD8 version (masked replace, clamped, truncating vector conversion)
/// compiled to element-by-element code and ran at 8.8 ns per element.
enum QuantizeLoops {
    static func row(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, count: Int,
                    scale: Float, zeroPoint: Int32, low: Float, high: Float) {
        let quantize = ByteQuantizer(scale: scale, zeroPoint: zeroPoint, low: low, high: high)
        for i in 0..<count { y[i] = quantize(x[i]) }
    }
}

final class DequantizeLinearKernel: Kernel {
    let axis: Int, blockSize: Int

    init(_ ctx: KernelContext) throws {
        axis = try ctx.node.int("axis", default: 1)
        blockSize = try ctx.node.int("block_size", default: 0)
        guard blockSize >= 0 else { throw KernelError.invalid("DequantizeLinear block_size \(blockSize) must not be negative") }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0), scaleTensor = try requiredInput(inputs, 1)
        let zeroTensor = inputs.count > 2 ? inputs[2] : nil
        _ = try quantizedRange(x.elementType, what: "DequantizeLinear input")
        if let zeroTensor, zeroTensor.elementType != x.elementType {
            throw KernelError.invalid("DequantizeLinear zero point of \(zeroTensor.elementType) but input of \(x.elementType)")
        }
        let outType = scaleTensor.elementType
        guard outType == .float || outType == .float16 else {
            throw KernelError.unsupported("DequantizeLinear scale of type \(outType) (float or float16)")
        }
        let layout = try QuantizationLayout(shape: x.shape, parameter: scaleTensor.shape, axis: axis, blockSize: blockSize, op: "DequantizeLinear")
        if let zeroTensor, zeroTensor.elementCount != scaleTensor.elementCount {
            throw KernelError.invalid("DequantizeLinear zero point \(zeroTensor.shape) does not match scale \(scaleTensor.shape)")
        }
        let scales = try floatElements(scaleTensor, what: "DequantizeLinear scale")
        let zeros = try zeroTensor.map { try quantizedElements($0, what: "DequantizeLinear zero point") }
            ?? [Int32](repeating: 0, count: scales.count)
        let out = try outputs.allocate(0, outType, x.shape)
        let inner = layout.inner

        if outType == .float, !layout.isBlocked, x.elementType == .uint8 || x.elementType == .int8 {
            let target = out.rawPointer.assumingMemoryBound(to: Float.self)
            let signed = x.elementType == .int8
            let source = UnsafeRawPointer(x.rawPointer)
            ThreadPool.parallelFor(layout.spanCount, minimumPerThread: layout.spansPerThread) { range in
                for span in range {
                    let (start, count, p) = layout.span(span)
                    let dequantize = ScalarQuantization(scale: scales[p], zeroPoint: zeros[p])
                    let y = target + start
                    if signed {
                        let q = source.assumingMemoryBound(to: Int8.self) + start
                        for i in 0..<count { y[i] = dequantize.real(q[i]) }
                    } else {
                        let q = source.assumingMemoryBound(to: UInt8.self) + start
                        for i in 0..<count { y[i] = dequantize.real(q[i]) }
                    }
                }
            }
            return
        }
        let q = try quantizedElements(x, what: "DequantizeLinear input")
        var y = [Float](repeating: 0, count: q.count)
        for o in 0..<layout.outer {
            for a in 0..<layout.axisSize {
                let base = (o * layout.axisSize + a) * inner
                for i in 0..<inner {
                    let p = layout.isBlocked ? layout.blockedParameter(o, a, i) : layout.rowParameter(o, a)
                    // Int64: int32 inputs minus a zero point may leave Int32.
                    y[base + i] = Float(Int64(q[base + i]) - Int64(zeros[p])) * scales[p]
                }
            }
        }
        if outType == .float {
            out.withUnsafeMutableBufferPointer(as: Float.self) { target in for i in y.indices { target[i] = y[i] } }
        } else {
            out.withUnsafeMutableBufferPointer(as: Float16.self) { target in for i in y.indices { target[i] = Float16(y[i]) } }
        }
    }
}

/// DynamicQuantizeLinear: uint8 with scale (max(0, max x) - min(0, min x)) / 255 and zero
/// point round(-min / scale). All-zero input gets scale 1 (as ONNX Runtime) rather than 0.
func dynamicQuantizeLinear(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
    let x = try requiredInput(inputs, 0)
    guard x.elementType == .float else { throw KernelError.unsupported("DynamicQuantizeLinear input of type \(x.elementType) (float)") }
    let source = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
    var low: Float = 0, high: Float = 0
    for i in 0..<x.elementCount where !source[i].isNaN {
        low = min(low, source[i])
        high = max(high, source[i])
    }
    if !low.isFinite || !high.isFinite { throw KernelError.invalid("DynamicQuantizeLinear input holds infinities") }
    var scale = (high - low) / 255
    if scale == 0 { scale = 1 }
    let zeroPoint = Int32(roundHalfEven(min(max(0 - low / scale, 0), 255)))
    let y = try outputs.allocate(0, .uint8, x.shape)
    let target = y.rawPointer.assumingMemoryBound(to: UInt8.self)
    let count = x.elementCount
    ThreadPool.parallelFor(count, minimumPerThread: 32768) { range in
        QuantizeLoops.row(source + range.lowerBound, target + range.lowerBound, count: range.count,
                          scale: scale, zeroPoint: zeroPoint, low: 0, high: 255)
    }
    if outputs.count > 1 && outputs.isRequested(1) {
        try outputs.allocate(1, .float, []).rawPointer.storeBytes(of: scale, as: Float.self)
    }
    if outputs.count > 2 && outputs.isRequested(2) {
        try outputs.allocate(2, .uint8, []).rawPointer.storeBytes(of: UInt8(zeroPoint), as: UInt8.self)
    }
}

// MARK: - Integer products

/// Where a per-tensor, per-row (or per-column) or per-batch-row parameter sits for row `i`
/// of batch `b`: one value, `along` values, or `batches * along` values.
struct ParameterIndex {
    let count: Int, along: Int

    init(count: Int, along: Int, batches: Int, what: String) throws {
        guard count == 1 || count == along || count == batches * along else {
            throw KernelError.invalid("\(what) has \(count) values; expected 1 or \(along) (or \(batches * along) for every batch)")
        }
        self.count = count
        self.along = along
    }

    @inline(__always)
    func callAsFunction(_ b: Int, _ i: Int) -> Int { count == 1 ? 0 : count == along ? i : b * along + i }
}

/// The product of three quantization scales as ONNX's reference computes it: in the
/// scales' own precision (float or float16), a_scale * b_scale / y_scale.
@inline(__always)
func requantizationMultiplier(_ a: Float, _ b: Float, _ y: Float, half: Bool) -> Double {
    if half { return Double(Float(Float16(Float16(a) * Float16(b)) / Float16(y))) }
    return Double(a * b / y)
}

/// saturate(round(accumulator * multiplier + zeroPoint)), in Double as the reference does.
@inline(__always)
func requantize(_ accumulator: Int32, _ multiplier: Double, _ zeroPoint: Int32, _ range: ClosedRange<Int32>) -> Int32 {
    let v = (Double(accumulator) * multiplier + Double(zeroPoint)).rounded(.toNearestOrEven)
    guard !v.isNaN else { return zeroPoint }
    return Int32(min(max(v, Double(range.lowerBound)), Double(range.upperBound)))
}

/// saturate(round(value + zeroPoint)) of a value already in the output's units.
@inline(__always)
func requantize(_ value: Double, _ zeroPoint: Int32, _ range: ClosedRange<Int32>) -> Int32 {
    let v = (value + Double(zeroPoint)).rounded(.toNearestOrEven)
    guard !v.isNaN else { return zeroPoint }
    return Int32(min(max(v, Double(range.lowerBound)), Double(range.upperBound)))
}

/// Element `i` of a float or float16 scale tensor.
private func scaleValues(_ t: Tensor, what: String) throws -> (values: [Float], half: Bool) {
    guard t.elementType == .float || t.elementType == .float16 else {
        throw KernelError.unsupported("\(what) of type \(t.elementType) (float or float16)")
    }
    return (try floatElements(t, what: what), t.elementType == .float16)
}

/// Zero points of 8-bit operands (0 when the input is omitted).
private func zeroPoints(_ t: Tensor?, matching type: ElementType, what: String) throws -> [Int32] {
    guard let t else { return [0] }
    guard t.elementType == type else { throw KernelError.invalid("\(what) of type \(t.elementType) does not match its operand's \(type)") }
    return try quantizedElements(t, what: what)
}

/// MatMulInteger (int32 result) and QLinearMatMul (requantized to the output zero
/// point's type), NumPy matmul semantics with batch broadcasting.
final class IntegerMatMulKernel: Kernel {
    let qlinear: Bool
    var bIndex: Int { qlinear ? 3 : 1 }
    var bZeroIndex: Int { qlinear ? 5 : 3 }
    /// B minus its zero points in panels, per batch matrix, when both are initializers.
    private var constantB: (shape: [Int], panels: [[Float]])?

    init(_ ctx: KernelContext, qlinear: Bool) throws {
        self.qlinear = qlinear
        let present = { (i: Int) in i < ctx.node.inputs.count && !ctx.node.inputs[i].isEmpty }
        if let b = ctx.constant(bIndex), !present(bZeroIndex) || ctx.constant(bZeroIndex) != nil {
            constantB = try? (b.shape, Self.packB(b, zero: ctx.constant(bZeroIndex)))
            if constantB != nil { b.releaseResidentPages() }
        }
    }

    private static func matrixShape(_ b: Tensor) -> [Int] { b.rank == 1 ? b.shape + [1] : b.shape }

    /// Every batch matrix of B as GEMM panels, zero points subtracted.
    static func packB(_ b: Tensor, zero: Tensor?) throws -> [[Float]] {
        let shape = matrixShape(b)
        guard shape.count >= 2 else { throw KernelError.invalid("B must not be a scalar") }
        let (k, n) = (shape[shape.count - 2], shape[shape.count - 1])
        let batches = shape.dropLast(2).reduce(1, *)
        let values = try QuantizedBytes(b, what: "B")
        let zeros = try zeroPoints(zero, matching: b.elementType, what: "B zero point")
        let zeroIndex = try ParameterIndex(count: zeros.count, along: n, batches: batches, what: "B zero point")
        let panels = ExactIntegerGemm.paddedColumns(n) / 16
        return (0..<batches).map { batch in
            var packed = [Float](repeating: 0, count: panels * k * 16)
            for p in 0..<k {
                for j in 0..<n {
                    let v = values[(batch * k + p) * n + j] - zeros[zeroIndex(batch, j)]
                    packed[((j / 16) * k + p) * 16 + j % 16] = Float(v)
                }
            }
            return packed
        }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let op = qlinear ? "QLinearMatMul" : "MatMulInteger"
        let a = try requiredInput(inputs, 0), b = try requiredInput(inputs, bIndex)
        func optional(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }
        guard let outShape = ReferenceKernels.matMulShape(a.shape, b.shape) else {
            throw KernelError.invalid("\(op) operands \(a.shape) and \(b.shape) do not fit")
        }
        let a2 = a.rank == 1 ? [1] + a.shape : a.shape
        let b2 = Self.matrixShape(b)
        let (m, k, n) = (a2[a2.count - 2], a2[a2.count - 1], b2[b2.count - 1])
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let batch = ReferenceKernels.broadcast(aBatch, bBatch) ?? []
        let aBatches = aBatch.reduce(1, *), bBatches = bBatch.reduce(1, *)

        let aValues = try QuantizedBytes(a, what: "\(op) A")
        let aZeros = try zeroPoints(optional(2), matching: a.elementType, what: "\(op) A zero point")
        let aZeroIndex = try ParameterIndex(count: aZeros.count, along: m, batches: aBatches, what: "\(op) A zero point")
        let panels: [[Float]]
        if let constantB, constantB.shape == b.shape { panels = constantB.panels } else {
            panels = try Self.packB(b, zero: optional(bZeroIndex))
        }

        // Requantization parameters (QLinearMatMul).
        var outType = ElementType.int32
        var aScale: [Float] = [1], bScale: [Float] = [1], yScale: [Float] = [1], yZeros: [Int32] = [0]
        var half = false
        if qlinear {
            let yZero = try requiredInput(inputs, 7)
            outType = yZero.elementType
            guard outType == .uint8 || outType == .int8 else { throw KernelError.unsupported("QLinearMatMul output of type \(outType)") }
            yZeros = try quantizedElements(yZero, what: "y zero point")
            let scales = try [1, 4, 6].map { try scaleValues(try requiredInput(inputs, $0), what: "QLinearMatMul scale \($0)") }
            (aScale, bScale, yScale) = (scales[0].values, scales[1].values, scales[2].values)
            half = scales.contains { $0.half }
        }
        let aScaleIndex = try ParameterIndex(count: aScale.count, along: m, batches: aBatches, what: "a_scale")
        let bScaleIndex = try ParameterIndex(count: bScale.count, along: n, batches: bBatches, what: "b_scale")
        let yScaleIndex = try ParameterIndex(count: yScale.count, along: m, batches: 1, what: "y_scale")
        let yZeroIndex = try ParameterIndex(count: yZeros.count, along: m, batches: 1, what: "y_zero_point")
        let range = try quantizedRange(outType, what: "\(op) output")

        let out = try outputs.allocate(0, outType, outShape)
        let mp = ExactIntegerGemm.paddedRows(m), np = ExactIntegerGemm.paddedColumns(n)
        var packedA = [Float](repeating: 0, count: mp * k)
        var c = [Int32](repeating: 0, count: mp * np)
        let rank = batch.count
        let aPadded = Array(repeating: 1, count: rank - aBatch.count) + aBatch
        let bPadded = Array(repeating: 1, count: rank - bBatch.count) + bBatch
        var index = [Int](repeating: 0, count: rank)
        for flat in 0..<batch.reduce(1, *) {
            var rest = flat
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                index[axis] = rest % batch[axis]
                rest /= batch[axis]
            }
            var aIndex = 0, bIndex = 0
            for axis in 0..<rank {
                aIndex = aIndex * aPadded[axis] + (aPadded[axis] == 1 ? 0 : index[axis])
                bIndex = bIndex * bPadded[axis] + (bPadded[axis] == 1 ? 0 : index[axis])
            }
            for i in 0..<m {
                let z = aZeros[aZeroIndex(aIndex, i)]
                let row = (aIndex * m + i) * k
                for p in 0..<k { packedA[i * k + p] = Float(aValues[row + p] - z) }
            }
            packedA.withUnsafeBufferPointer { pa in
                panels[bIndex].withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        guard let pa = pa.baseAddress, let pb = pb.baseAddress, let pc = pc.baseAddress else { return }
                        ExactIntegerGemm.multiply(a: pa, rows: m, depth: k, b: pb, columns: n, c: pc, ldc: np)
                    }
                }
            }
            let base = flat * m * n
            if !qlinear {
                let target = out.rawPointer.assumingMemoryBound(to: Int32.self) + base
                for i in 0..<m {
                    for j in 0..<n { target[i * n + j] = c[i * np + j] }
                }
                continue
            }
            let target = out.rawPointer
            let signed = outType == .int8
            // Per-tensor a_scale and y_scale (the usual case): one multiplier per column.
            let columnMultipliers: [Double]? = aScale.count == 1 && yScale.count == 1
                ? (0..<n).map { requantizationMultiplier(aScale[0], bScale[bScaleIndex(bIndex, $0)], yScale[0], half: half) }
                : nil
            for i in 0..<m {
                let zero = yZeros[yZeroIndex(0, i)]
                for j in 0..<n {
                    let multiplier = columnMultipliers?[j]
                        ?? requantizationMultiplier(aScale[aScaleIndex(aIndex, i)], bScale[bScaleIndex(bIndex, j)],
                                                    yScale[yScaleIndex(0, i)], half: half)
                    let q = requantize(c[i * np + j], multiplier, zero, range)
                    if signed {
                        target.storeBytes(of: Int8(truncatingIfNeeded: q), toByteOffset: base + i * n + j, as: Int8.self)
                    } else {
                        target.storeBytes(of: UInt8(truncatingIfNeeded: q), toByteOffset: base + i * n + j, as: UInt8.self)
                    }
                }
            }
        }
    }
}

/// ConvInteger (int32 result) and QLinearConv (requantized, optional int32 bias), 1-D and
/// 2-D, with groups, strides, dilations, pads and auto_pad. Padding contributes nothing
/// (it is the zero point). The product runs as W' · im2col(X') on `ExactIntegerGemm`.
/// A QLinearConv may carry an activation the graph passes fused (`fused_activation`):
/// it applies to the real value before requantization. Without y_scale and y_zero_point
/// (the graph passes' form for a result that stays fp32) it writes the real values in
/// fp32, plus a fused residual addend (`fused_sum`, the last input) before the activation.
final class IntegerConvKernel: Kernel {
    let qlinear: Bool
    let activation: FusedEpilogue
    let kernelShape: [Int]?, strides: [Int]?, dilations: [Int]?, pads: [Int]?
    let autoPad: String
    let group: Int
    var wIndex: Int { qlinear ? 3 : 1 }
    var wZeroIndex: Int { qlinear ? 5 : 3 }
    /// W minus its zero points as GEMM rows per group, when both are initializers.
    private var constantW: (shape: [Int], rows: [[Float]])?

    init(_ ctx: KernelContext, qlinear: Bool) throws {
        self.qlinear = qlinear
        let node = ctx.node
        kernelShape = try node.ints("kernel_shape")
        strides = try node.ints("strides")
        dilations = try node.ints("dilations")
        pads = try node.ints("pads")
        autoPad = try node.string("auto_pad", default: "NOTSET")
        group = try node.int("group", default: 1)
        guard group >= 1 else { throw KernelError.invalid("group \(group) must be positive") }
        activation = try FusedEpilogue(node: node)
        let floatOutput = qlinear && (node.inputs.count <= 6 || node.inputs[6].isEmpty)
        guard !activation.addsResidual || floatOutput, qlinear || activation.isEmpty else {
            throw KernelError.unsupported("\(qlinear ? "QLinearConv" : "ConvInteger") with a fused \(activation.addsResidual ? "sum" : "activation")")
        }
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw KernelError.invalid("auto_pad '\(autoPad)' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER")
        }
        let present = { (i: Int) in i < node.inputs.count && !node.inputs[i].isEmpty }
        if let w = ctx.constant(wIndex), !present(wZeroIndex) || ctx.constant(wZeroIndex) != nil {
            constantW = try? (w.shape, Self.packW(w, zero: ctx.constant(wZeroIndex), group: group))
            if constantW != nil { w.releaseResidentPages() }
        }
    }

    /// Per group, `paddedRows(M / group)` rows of `C/group * kernel` values w - w_zero_point.
    static func packW(_ w: Tensor, zero: Tensor?, group: Int) throws -> [[Float]] {
        guard w.rank >= 3, w.shape[0] % group == 0 else {
            throw KernelError.invalid("weights \(w.shape) do not split into \(group) groups")
        }
        let m = w.shape[0], mg = m / group
        let depth = w.shape.dropFirst().reduce(1, *)
        let values = try QuantizedBytes(w, what: "weights")
        let zeros = try zeroPoints(zero, matching: w.elementType, what: "weight zero point")
        let zeroIndex = try ParameterIndex(count: zeros.count, along: m, batches: 1, what: "weight zero point")
        return (0..<group).map { g in
            var rows = [Float](repeating: 0, count: ExactIntegerGemm.paddedRows(mg) * depth)
            for oc in 0..<mg {
                let z = zeros[zeroIndex(0, g * mg + oc)]
                for p in 0..<depth { rows[oc * depth + p] = Float(values[(g * mg + oc) * depth + p] - z) }
            }
            return rows
        }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let op = qlinear ? "QLinearConv" : "ConvInteger"
        let x = try requiredInput(inputs, 0), w = try requiredInput(inputs, wIndex)
        func optional(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }
        guard x.rank == 3 || x.rank == 4, w.rank == x.rank else {
            throw KernelError.unsupported("\(op) with input \(x.shape) and weights \(w.shape) (1-D and 2-D convolutions only)")
        }
        // 1-D as 2-D with height 1.
        let spatial = x.rank - 2
        func lift(_ v: [Int]?, _ fill: Int, _ count: Int) throws -> [Int] {
            let values = v ?? Array(repeating: fill, count: count)
            guard values.count == count else { throw KernelError.invalid("\(op) attribute \(values) needs \(count) values") }
            return spatial == 1 ? (count == 2 ? [0, values[0], 0, values[1]] : [1] + values) : values
        }
        let (n, c) = (x.shape[0], x.shape[1])
        let (h, wd) = spatial == 1 ? (1, x.shape[2]) : (x.shape[2], x.shape[3])
        let m = w.shape[0]
        let (kh, kw) = spatial == 1 ? (1, w.shape[2]) : (w.shape[2], w.shape[3])
        if let kernelShape, kernelShape != Array(w.shape.dropFirst(2)) {
            throw KernelError.invalid("\(op) kernel_shape \(kernelShape) does not match weights \(w.shape)")
        }
        guard c % group == 0, m % group == 0, w.shape[1] == c / group else {
            throw KernelError.invalid("\(op) input \(x.shape) and weights \(w.shape) do not fit group \(group)")
        }
        let stride = try lift(strides, 1, spatial), dilation = try lift(dilations, 1, spatial)
        var pad = spatial == 1 ? [0, 0, 0, 0] : [0, 0, 0, 0]
        guard stride.allSatisfy({ $0 >= 1 }), dilation.allSatisfy({ $0 >= 1 }) else {
            throw KernelError.invalid("\(op) strides and dilations must be positive")
        }
        let inputSize = [h, wd], kernelSize = [kh, kw]
        var outSize = [0, 0]
        if autoPad == "NOTSET" {
            let given = try (pads.map { p -> [Int] in
                guard p.count == 2 * spatial else { throw KernelError.invalid("\(op) pads \(p) needs \(2 * spatial) values") }
                return spatial == 1 ? [0, p[0], 0, p[1]] : p
            }) ?? [0, 0, 0, 0]
            guard given.allSatisfy({ $0 >= 0 }) else { throw KernelError.invalid("\(op) pads \(given) must not be negative") }
            pad = given
        }
        for axis in 0..<2 {
            let extent = dilation[axis] * (kernelSize[axis] - 1) + 1
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                let out = (inputSize[axis] + stride[axis] - 1) / stride[axis]
                let total = max(0, (out - 1) * stride[axis] + extent - inputSize[axis])
                let small = total / 2
                (pad[axis], pad[axis + 2]) = autoPad == "SAME_UPPER" ? (small, total - small) : (total - small, small)
            case "VALID": (pad[axis], pad[axis + 2]) = (0, 0)
            default: break
            }
            let padded = inputSize[axis] + pad[axis] + pad[axis + 2]
            guard padded >= extent else { throw KernelError.invalid("\(op) kernel \(w.shape) is larger than the padded input \(x.shape)") }
            outSize[axis] = (padded - extent) / stride[axis] + 1
        }
        let (oh, ow) = (outSize[0], outSize[1])
        let positions = oh * ow
        let (cg, mg) = (c / group, m / group)
        let depth = cg * kh * kw

        let xValues = try QuantizedBytes(x, what: "\(op) input")
        let xZeros = try zeroPoints(optional(2), matching: x.elementType, what: "\(op) input zero point")
        guard xZeros.count == 1 else { throw KernelError.unsupported("\(op) input zero point with \(xZeros.count) values (per tensor only)") }
        let xZero = xZeros[0]
        let rows: [[Float]]
        if let constantW, constantW.shape == w.shape { rows = constantW.rows } else {
            rows = try Self.packW(w, zero: optional(wZeroIndex), group: group)
        }

        var outType = ElementType.int32
        var multipliers = [Double](repeating: 1, count: m)
        // With a fused activation: x_scale * w_scale and y_scale apart, the activation between them.
        var productScales = [Double](repeating: 1, count: m)
        var yScale = 1.0
        var yZero: Int32 = 0
        var bias = [Int32](repeating: 0, count: m)
        let floatOutput = qlinear && optional(6) == nil
        if qlinear {
            if floatOutput {
                outType = .float
            } else {
                let yZeroTensor = try requiredInput(inputs, 7)
                outType = yZeroTensor.elementType
                guard outType == .uint8 || outType == .int8 else { throw KernelError.unsupported("QLinearConv output of type \(outType)") }
                let yz = try quantizedElements(yZeroTensor, what: "y zero point")
                guard yz.count == 1 else { throw KernelError.unsupported("QLinearConv y_zero_point with \(yz.count) values (per tensor only)") }
                yZero = yz[0]
            }
            let xs = try scaleValues(try requiredInput(inputs, 1), what: "x_scale")
            let ws = try scaleValues(try requiredInput(inputs, 4), what: "w_scale")
            let ys = floatOutput ? (values: [Float(1)], half: false) : try scaleValues(try requiredInput(inputs, 6), what: "y_scale")
            guard xs.values.count == 1, ys.values.count == 1 else { throw KernelError.unsupported("QLinearConv x_scale and y_scale per tensor only") }
            let wsIndex = try ParameterIndex(count: ws.values.count, along: m, batches: 1, what: "w_scale")
            let half = xs.half || ws.half || ys.half
            for oc in 0..<m {
                multipliers[oc] = requantizationMultiplier(xs.values[0], ws.values[wsIndex(0, oc)], ys.values[0], half: half)
                productScales[oc] = Double(xs.values[0] * ws.values[wsIndex(0, oc)])
            }
            yScale = Double(ys.values[0])
            if let b = optional(8) {
                guard b.elementType == .int32, b.elementCount == m else { throw KernelError.invalid("QLinearConv bias \(b.shape) must be \(m) int32") }
                bias = b.scalars(as: Int32.self)
            }
        }
        let range = floatOutput ? 0...0 : try quantizedRange(outType, what: "\(op) output")
        let outShape = [n, m] + (spatial == 1 ? [ow] : [oh, ow])
        let addend = activation.addsResidual ? try requiredInput(inputs, inputs.count - 1) : nil
        if let addend, addend.shape != outShape || addend.elementType != .float {
            throw KernelError.invalid("fused addend \(addend.elementType) \(addend.shape) for an fp32 output \(outShape)")
        }
        let out = try outputs.allocate(0, outType, outShape)

        let pp = ExactIntegerGemm.paddedColumns(positions), panels = pp / 16
        var columns = [Float](repeating: 0, count: panels * depth * 16)
        var result = [Int32](repeating: 0, count: ExactIntegerGemm.paddedRows(mg) * pp)
        let (sh, sw, dh, dw, top, left) = (stride[0], stride[1], dilation[0], dilation[1], pad[0], pad[1])
        for image in 0..<n {
            for g in 0..<group {
                // im2col in GEMM panels: column = output position, row = (channel, ky, kx).
                columns.withUnsafeMutableBufferPointer { buffer in
                    guard let base = buffer.baseAddress else { return }
                    ThreadPool.parallelFor(panels, minimumPerThread: max(1, 4096 / max(1, depth * 16))) { range in
                        for panel in range {
                            let out = base + panel * depth * 16
                            for lane in 0..<16 {
                                let position = panel * 16 + lane
                                guard position < positions else {
                                    for p in 0..<depth { out[p * 16 + lane] = 0 }
                                    continue
                                }
                                let (oy, ox) = (position / ow, position % ow)
                                var p = 0
                                for ci in 0..<cg {
                                    let plane = ((image * c) + g * cg + ci) * h * wd
                                    for ky in 0..<kh {
                                        let iy = oy * sh - top + ky * dh
                                        for kx in 0..<kw {
                                            let ix = ox * sw - left + kx * dw
                                            let inside = iy >= 0 && iy < h && ix >= 0 && ix < wd
                                            out[p * 16 + lane] = inside ? Float(xValues[plane + iy * wd + ix] - xZero) : 0
                                            p += 1
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                rows[g].withUnsafeBufferPointer { pa in
                    columns.withUnsafeBufferPointer { pb in
                        result.withUnsafeMutableBufferPointer { pc in
                            guard let pa = pa.baseAddress, let pb = pb.baseAddress, let pc = pc.baseAddress else { return }
                            ExactIntegerGemm.multiply(a: pa, rows: mg, depth: depth, b: pb, columns: positions, c: pc, ldc: pp)
                        }
                    }
                }
                for oc in 0..<mg {
                    let channel = g * mg + oc
                    let base = (image * m + channel) * positions
                    if !qlinear {
                        let target = out.rawPointer.assumingMemoryBound(to: Int32.self) + base
                        for p in 0..<positions { target[p] = result[oc * pp + p] }
                        continue
                    }
                    if floatOutput {
                        let target = out.rawPointer.assumingMemoryBound(to: Float.self) + base
                        let sum = addend.map { $0.rawPointer.assumingMemoryBound(to: Float.self) + base }
                        for p in 0..<positions {
                            let real = Double(result[oc * pp + p] &+ bias[channel]) * productScales[channel]
                            target[p] = Float(activation.activate(real + Double(sum?[p] ?? 0)))
                        }
                        continue
                    }
                    let signed = outType == .int8
                    for p in 0..<positions {
                        let accumulator = result[oc * pp + p] &+ bias[channel]
                        let q = activation.isEmpty
                            ? requantize(accumulator, multipliers[channel], yZero, range)
                            : requantize(activation.activate(Double(accumulator) * productScales[channel]) / yScale, yZero, range)
                        if signed {
                            out.rawPointer.storeBytes(of: Int8(truncatingIfNeeded: q), toByteOffset: base + p, as: Int8.self)
                        } else {
                            out.rawPointer.storeBytes(of: UInt8(truncatingIfNeeded: q), toByteOffset: base + p, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }
}
