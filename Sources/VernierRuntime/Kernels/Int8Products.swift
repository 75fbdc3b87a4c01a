import CDNNL
import VernierGraph

/// QLinearConv on oneDNN's int8 convolution (`jit_uni_int8` on AVX2, VNNI where the CPU
/// has it): u8 / s8 activations, s8 weights with zero point 0 (per tensor or per output
/// channel), s32 bias, one input and one output scale and zero point, all constants,
/// plus the activation the graph passes fused (`fused_activation`, applied to the real
/// values before requantization). These are the convolutions a QDQ model's
/// `DequantizeLinear -> Conv -> QuantizeLinear` patterns become (`GraphPasses.fuseQDQConv`).
/// (This file: the int8 products on oneDNN, QLinearConv, QLinearMatMul and QGemm.)
///
/// Without y_scale and y_zero_point (Vernier's internal form for a quantized conv whose
/// result stays fp32) it writes the real values in fp32, with a fused residual sum
/// (addend last) and activation.
///
/// Any other form (u8 weights, weight zero points, runtime scales, unknown shapes) runs
/// on the exact reference `IntegerConvKernel`: `make` returns nil for those.
///
/// Without VNNI, oneDNN multiplies u8 by s8 in pairs summed in int16 with saturation
/// (`vpmaddubsw`): with full-range weights a pair whose sum leaves int16 is clipped. So
/// there the weights may be narrowed first (`Int8Weights.narrowed`).
final class Int8ConvKernel: Kernel {
    private let plan: ConvPlan
    var relayoutBytes: Int { plan.relayoutBytes }
    var implementation: String? { plan.implementation }
    private let outputType: ElementType
    /// Input index of a fused residual addend (fp32 output only).
    private let addendIndex: Int?
    let packedInputs: [Int]

    /// The int8 kernel for `ctx`'s QLinearConv, or nil when its form needs the reference.
    static func make(_ ctx: KernelContext) throws -> Int8ConvKernel? {
        let node = ctx.node
        let bias = node.inputs.count > 8 && !node.inputs[8].isEmpty
        let requantizes = node.inputs.count > 6 && !node.inputs[6].isEmpty
        guard let inputShape = ctx.knownInputShape(0), (3...5).contains(inputShape.count),
              inputShape.allSatisfy({ $0 >= 1 }), let operands = try Int8Operands.Inputs(ctx, channelAxis: 0),
              operands.weights.rank == inputShape.count
        else { return nil }
        let weights = operands.weights
        // The output's scale and zero point, or fp32 output (scale 1, zero point 0).
        var output: (type: ElementType, scale: Float, zero: Int32) = (.float, 1, 0)
        if requantizes {
            guard let yScale = Int8Operands.Inputs.scalar(ctx.constant(6)), yScale > 0, yScale.isFinite, let yZero = ctx.constant(7),
                  yZero.elementCount == 1, yZero.elementType == .uint8 || yZero.elementType == .int8 else { return nil }
            output = (yZero.elementType, yScale, try quantizedElements(yZero, what: "y_zero_point")[0])
        }
        let storedBias = bias ? ctx.constant(8) : nil
        if bias, storedBias?.elementType != .int32 || storedBias?.elementCount != weights.shape[0] { return nil }
        let epilogue = try FusedEpilogue(node: node)
        guard !epilogue.addsResidual || !requantizes else { return nil }
        let geometry = try ConvAttributes(node: node).convGeometry(input: inputShape, weights: weights.shape)
        let biasTensor = storedBias.map { operands.biasInKernelUnits($0, channels: weights.shape[0]) }
        let quantization = operands.requantized(to: output.type, scale: output.scale, zeroPoint: output.zero)
        let plan: ConvPlan
        do {
            plan = try ConvPlan(transposed: false, inputShape: inputShape, weightsShape: weights.shape,
                                weights: .constant(operands.kernelWeights), bias: biasTensor.map { .constant($0) }, geometry: geometry,
                                epilogue: epilogue, sourceLayout: ctx.inputLayout(0),
                                destinationLayout: ctx.outputLayout(0), quantization: quantization)
        } catch is DNNLError {
            // oneDNN has no int8 implementation of this form: the reference runs it.
            return nil
        }
        return Int8ConvKernel(plan: plan, outputType: output.type, addendIndex: epilogue.addsResidual ? node.inputs.count - 1 : nil,
                              packed: plan.ownsWeights ? [3] + (bias ? [8] : []) : [])
    }

    private init(plan: ConvPlan, outputType: ElementType, addendIndex: Int?, packed: [Int]) {
        self.plan = plan
        self.outputType = outputType
        self.addendIndex = addendIndex
        packedInputs = packed
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.shape == plan.inputShape else {
            throw KernelError.invalid("QLinearConv planned for input \(plan.inputShape), got \(x.shape)")
        }
        let addend = try addendIndex.map { try requiredInput(inputs, $0) }
        if let addend, addend.layout != plan.destinationLayout {
            throw KernelError.invalid("fused addend in layout \(addend.layout), planned \(plan.destinationLayout)")
        }
        let output = try outputs.allocate(0, outputType, plan.outputShape)
        try asKernelErrors("oneDNN int8 convolution") {
            try plan.run(input: x, weights: nil, bias: nil, addend: addend, output: output)
        }
    }
}

/// QLinearMatMul and `com.microsoft.QGemm` on oneDNN's int8 matmul: a u8 / s8 left
/// operand `[..., M, K]` with one scale and zero point, a constant s8 right operand
/// `[K, N]` (QGemm with transB: `[N, K]`) with zero point 0 (one scale, or one per output
/// column), all constants: the Linear layers of a quantized transformer
/// (`GraphPasses.fuseQDQMatMul`, `fuseQDQGemm`). QLinearMatMul writes u8 / s8 with one
/// output scale and zero point, its left operand's leading dims folded into the rows of
/// one product. QGemm (2-D, alpha 1, no transA) adds a constant int32 bias C of N values
/// in the product's units and writes u8 / s8, or fp32 when it has no y_scale. Other forms
/// (products of two activations, u8 weights, weight zero points) run on the exact
/// kernels. Saturation without VNNI as for `Int8ConvKernel`.
final class Int8MatMulKernel: Kernel {
    private let plan: MatMulPlan
    private let outputType: ElementType
    private let columns: Int
    /// QGemm's C in the kernel's product units, as fp32.
    private let bias: Tensor?
    let packedInputs: [Int]

    /// The int8 kernel for `ctx`'s QLinearMatMul, or nil when its form needs the reference.
    static func make(_ ctx: KernelContext) throws -> Int8MatMulKernel? {
        guard let shape = ctx.knownInputShape(0), shape.count >= 2, shape.allSatisfy({ $0 >= 1 }), ctx.node.attributes.isEmpty,
              let operands = try Int8Operands.Inputs(ctx, channelAxis: 1),
              operands.weights.rank == 2, operands.weights.shape[0] == shape.last,
              let output = try requantizedOutput(ctx, scale: 6, zeroPoint: 7)
        else { return nil }
        let rows = shape.dropLast().reduce(1, *)
        return try make(operands, a: [rows, shape[shape.count - 1]], transB: false, bias: nil, output: output)
    }

    /// The int8 kernel for `ctx`'s QGemm, or nil when its form needs the reference.
    static func makeGemm(_ ctx: KernelContext) throws -> Int8MatMulKernel? {
        let node = ctx.node
        guard let shape = ctx.knownInputShape(0), shape.count == 2, shape.allSatisfy({ $0 >= 1 }),
              try node.int("transA", default: 0) == 0, try node.float("alpha", default: 1) == 1 else { return nil }
        let transB = try node.int("transB", default: 0) != 0
        guard let operands = try Int8Operands.Inputs(ctx, channelAxis: transB ? 0 : 1), operands.weights.rank == 2,
              operands.weights.shape[transB ? 1 : 0] == shape[1] else { return nil }
        let n = operands.weights.shape[transB ? 0 : 1]
        var bias: Tensor?
        if node.input(6) != nil {
            guard let c = ctx.constant(6), c.elementType == .int32, c.elementCount == n || c.elementCount == 1 else { return nil }
            bias = operands.biasInKernelUnits(c, channels: n)
        }
        var output: (type: ElementType, scale: Float, zero: Int32) = (.float, 1, 0)
        if node.input(7) != nil {
            guard let requantized = try requantizedOutput(ctx, scale: 7, zeroPoint: 8) else { return nil }
            output = requantized
        }
        return try make(operands, a: shape, transB: transB, bias: bias, output: output)
    }

    /// The output's constant scale and 8-bit zero point at inputs `scale` and `zeroPoint`.
    private static func requantizedOutput(_ ctx: KernelContext, scale: Int, zeroPoint: Int) throws
        -> (type: ElementType, scale: Float, zero: Int32)? {
        guard let yScale = Int8Operands.Inputs.scalar(ctx.constant(scale)), yScale > 0, yScale.isFinite,
              let yZero = ctx.constant(zeroPoint), yZero.elementCount == 1,
              yZero.elementType == .uint8 || yZero.elementType == .int8 else { return nil }
        return (yZero.elementType, yScale, try quantizedElements(yZero, what: "y_zero_point")[0])
    }

    private static func make(_ operands: Int8Operands.Inputs, a: [Int], transB: Bool, bias: Tensor?,
                             output: (type: ElementType, scale: Float, zero: Int32)) throws -> Int8MatMulKernel? {
        let weights = operands.weights
        let plan: MatMulPlan
        do {
            plan = try MatMulPlan(a: a, b: weights.shape, transB: transB, constantB: operands.kernelWeights, bias: bias != nil,
                                  split: false,
                                  quantization: operands.requantized(to: output.type, scale: output.scale, zeroPoint: output.zero))
        } catch is DNNLError {
            return nil
        }
        // QLinearMatMul's B is input 3 as QGemm's is; QGemm's C is input 6.
        let packed = plan.ownsB ? [3] + (bias != nil ? [6] : []) : []
        return Int8MatMulKernel(plan: plan, outputType: output.type, columns: plan.outputShape[plan.outputShape.count - 1],
                                bias: bias, packed: packed)
    }

    private init(plan: MatMulPlan, outputType: ElementType, columns: Int, bias: Tensor?, packed: [Int]) {
        self.plan = plan
        self.outputType = outputType
        self.columns = columns
        self.bias = bias
        packedInputs = packed
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.rank >= 2, x.shape.last == plan.aShape.last, x.elementCount == plan.aShape.reduce(1, *) else {
            throw KernelError.invalid("int8 matmul planned for \(plan.aShape), got \(x.shape)")
        }
        let output = try outputs.allocate(0, outputType, Array(x.shape.dropLast()) + [columns])
        try asKernelErrors("oneDNN int8 matmul") { try plan.run(a: x, b: nil, bias: bias, output: output) }
    }
}

extension Int8Operands {
    /// The inputs QLinearConv, QLinearMatMul and QGemm share (0-5): an 8-bit source with one
    /// constant scale and zero point, constant s8 weights with zero points 0 and one
    /// scale in all or one per channel along `channelAxis`; the weights narrowed for
    /// this CPU (`Int8Weights.narrowed`). Nil for any other form (the exact kernels run it).
    struct Inputs {
        let sourceType: ElementType
        let sourceScale: Float
        let sourceZeroPoint: Int32
        /// As stored, with their scales.
        let weights: Tensor
        let storedScales: [Float]
        /// As the kernel multiplies them, with their scales.
        let kernelWeights: Tensor
        let kernelScales: [Float]

        init?(_ ctx: KernelContext, channelAxis: Int) throws {
            guard let sourceType = ctx.inputTypes.first??.elementType, sourceType == .uint8 || sourceType == .int8,
                  let xScale = Self.scalar(ctx.constant(1)), xScale > 0, xScale.isFinite,
                  let xZero = ctx.constant(2), xZero.elementCount == 1,
                  let weights = ctx.constant(3), weights.elementType == .int8, weights.rank > channelAxis,
                  let wScale = ctx.constant(4), wScale.elementType == .float,
                  wScale.elementCount == 1 || wScale.elementCount == weights.shape[channelAxis],
                  let wZero = ctx.constant(5), wZero.elementType == .int8, wZero.scalars(as: Int8.self).allSatisfy({ $0 == 0 })
            else { return nil }
            let zero = try quantizedElements(xZero, what: "the source zero point")[0]
            let scales = wScale.scalars(as: Float.self)
            let (narrowed, narrowedScales) = Int8Weights.narrowed(weights, scales: scales, channelAxis: channelAxis,
                                                                  sourceZeroPoint: zero)
            guard narrowedScales.allSatisfy({ xScale * $0 > 0 && (xScale * $0).isFinite }) else { return nil }
            (self.sourceType, sourceScale, sourceZeroPoint) = (sourceType, xScale, zero)
            (self.weights, storedScales, kernelWeights, kernelScales) = (weights, scales, narrowed, narrowedScales)
        }

        /// An int32 bias (one value, or one per channel) in the units of the kernel's
        /// product (x_scale times the kernel's weight scale), as fp32 so a halved channel's
        /// (see `Int8Weights.narrowed`) stays exact.
        func biasInKernelUnits(_ bias: Tensor, channels: Int) -> Tensor {
            let stored = bias.scalars(as: Int32.self)
            let (old, new) = (storedScales, kernelScales)
            let values = (0..<channels).map { c in
                Float(stored[stored.count == 1 ? 0 : c]) * old[old.count == 1 ? 0 : c] / new[new.count == 1 ? 0 : c]
            }
            return Tensor(shape: [channels], values: values)
        }

        /// The one fp32 value of a constant scale.
        static func scalar(_ t: Tensor?) -> Float? {
            guard let t, t.elementType == .float, t.elementCount == 1 else { return nil }
            return t.scalars(as: Float.self)[0]
        }

        /// The int8 arithmetic from these inputs to an output of `type` (u8 / s8 with its
        /// scale and zero point, or fp32 with scale 1 and zero point 0).
        func requantized(to type: ElementType, scale: Float, zeroPoint: Int32) -> Int8Operands {
            Int8Operands(sourceType: sourceType, destinationType: type,
                         requantization: DNNLPostOps.Requantization(
                             sourceZeroPoint: sourceZeroPoint, productScales: kernelScales.map { sourceScale * $0 },
                             outputScale: scale, outputZeroPoint: zeroPoint))
        }
    }
}

/// Weights as oneDNN's int8 kernels can take them on this CPU.
enum Int8Weights {
    /// Whether the CPU has VNNI (AVX512-VNNI or AVX-VNNI): its `vpdpbusd` adds u8 x s8
    /// products straight into int32, so no pair of them saturates.
    static let accumulateExactly: Bool = {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        return isa & dnnl_cpu_isa_avx512_core_vnni.rawValue == dnnl_cpu_isa_avx512_core_vnni.rawValue
            || isa & dnnl_cpu_isa_avx2_vnni.rawValue == dnnl_cpu_isa_avx2_vnni.rawValue
    }()

    /// Without VNNI, pairs of u8 x s8 products are summed in int16 with saturation
    /// (`vpmaddubsw`): 255 x 127 x 2 = 64770 leaves it, and quantizers use the full int8
    /// range (per channel, the largest weight is +-127). Whether pairs do saturate depends
    /// on the activations' raw values: after a ReLU (zero point 0) most are small, while
    /// with a zero point inside the range they sit around it. So when the source zero
    /// point is not 0, a channel with a weight beyond +-64 is halved (rounded to even) and
    /// its scale doubled: 255 x 64 x 2 = 32640 fits, at the cost of one bit of weight
    /// precision in that channel (ONNX Runtime's `reduce_range` advice for such CPUs).
    ///
    /// Measured against the QDQ graph computed exactly (ONNX Runtime without graph
    /// optimizations), max |diff| / max |ref|: `vernier quantize`'s ResNet-, YOLO- and
    /// MobileNetV2-style models of `Models/` 7.4 / 12.5 / 6.1% with no narrowing, 3.4 /
    /// 4.5 / 3.1% narrowing every conv, 0.8 / 4.5 / 3.6% with this rule; ONNX Runtime's
    /// quantized ResNet-18 / MobileNetV2 / ResNet-50 1.25 / 4.1 / 1.2% with none or this
    /// rule, 3.8 / 9.6 / 4.8% narrowing every conv.
    ///
    /// Returns the weights and one scale per channel (or the given ones when nothing
    /// changes). `channelAxis`: 0 for convolution weights [M, ...], 1 for matmul weights
    /// [K, N]. A bias in the product's units must be rescaled by old over new scale.
    static func narrowed(_ weights: Tensor, scales: [Float], channelAxis: Int, sourceZeroPoint: Int32) -> (Tensor, [Float]) {
        guard !accumulateExactly, sourceZeroPoint != 0, weights.rank >= 2 else { return (weights, scales) }
        // Walked as [outer, channels, inner] rows with no index arithmetic per element:
        // BERT-base's 85M weights took 580 ms with a division and a modulo for each.
        let channels = weights.shape[channelAxis]
        let inner = weights.shape[(channelAxis + 1)...].reduce(1, *)
        let outer = weights.shape[..<channelAxis].reduce(1, *)
        let source = UnsafePointer(weights.rawPointer.assumingMemoryBound(to: Int8.self))
        var wide = [Bool](repeating: false, count: channels)
        var magnitude = [Int16](repeating: 0, count: inner == 1 ? channels : 0)
        for o in 0..<outer {
            let block = source + o * channels * inner
            if inner == 1 {
                // Matmul weights [K, N]: a row holds one weight of every channel.
                magnitude.withUnsafeMutableBufferPointer { m in
                    for c in 0..<channels { m[c] = max(m[c], abs(Int16(block[c]))) }
                }
                continue
            }
            for c in 0..<channels where !wide[c] {
                let row = block + c * inner
                var beyond = false
                for i in 0..<inner { beyond = beyond || row[i] > 64 || row[i] < -64 }
                wide[c] = beyond
            }
        }
        for (c, m) in magnitude.enumerated() where m > 64 { wide[c] = true }
        guard wide.contains(true) else { return (weights, scales) }
        // v / 2 rounded half to even: k = floor(v / 2), plus 1 when v is odd and k odd.
        @inline(__always) func half(_ v: Int8) -> Int8 { let k = v >> 1; return k &+ (k & v & 1) }
        // Per column of matmul weights, all ones where it is halved.
        let masks = wide.map { $0 ? Int8(-1) : 0 }
        let result = Tensor(elementType: .int8, shape: weights.shape)
        let target = result.rawPointer.assumingMemoryBound(to: Int8.self)
        for o in 0..<outer {
            let offset = o * channels * inner
            if inner == 1 {
                masks.withUnsafeBufferPointer { m in
                    guard let mask = m.baseAddress else { return }
                    let (from, to) = (UnsafeRawPointer(source + offset), UnsafeMutableRawPointer(target + offset))
                    var c = 0
                    // 16 at a time (the scalar loop reloaded the mask pointer per element).
                    while c + 16 <= channels {
                        let v = from.loadUnaligned(fromByteOffset: c, as: SIMD16<Int8>.self)
                        let w = UnsafeRawPointer(mask).loadUnaligned(fromByteOffset: c, as: SIMD16<Int8>.self)
                        let k = v &>> 1
                        let halved = k &+ (k & v & 1)
                        to.storeBytes(of: (halved & w) | (v & ~w), toByteOffset: c, as: SIMD16<Int8>.self)
                        c += 16
                    }
                    for c in c..<channels {
                        let v = source[offset + c]
                        target[offset + c] = (half(v) & mask[c]) | (v & ~mask[c])
                    }
                }
                continue
            }
            for c in 0..<channels {
                let row = offset + c * inner
                if wide[c] {
                    for i in 0..<inner { target[row + i] = half(source[row + i]) }
                } else {
                    (target + row).update(from: source + row, count: inner)
                }
            }
        }
        let perChannel = (0..<channels).map { c in scales[scales.count == 1 ? 0 : c] * (wide[c] ? 2 : 1) }
        return (result, perChannel)
    }
}

/// Runs a kernel that reads and writes plain tensors where the layout planner chose
/// channels-last for input 0 and output 0: the rare QLinearConv that oneDNN turns down
/// after the planner counted on it (the plan is made before the kernels).
final class ChannelsLastAdapter: Kernel {
    private let inner: Kernel
    private let inputLayout: TensorLayout
    private let outputLayout: TensorLayout

    init(_ inner: Kernel, input: TensorLayout, output: TensorLayout) {
        self.inner = inner
        inputLayout = input
        outputLayout = output
    }

    var packedInputs: [Int] { inner.packedInputs }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        var adapted = inputs
        if inputLayout == .channelsLast, let x = inputs.first ?? nil {
            var plain = Tensor(elementType: x.elementType, shape: x.shape)
            try permuteChannels(x, into: &plain, toChannelsLast: false)
            adapted[0] = plain
        }
        let own = OutputSlots(count: outputs.count, maxBytes: outputs.maxBytes)
        try inner.run(adapted, own)
        for index in 0..<outputs.count {
            guard let result = own.results[index] else { continue }
            if index == 0, outputLayout == .channelsLast {
                var y = try outputs.allocate(0, result.elementType, result.shape)
                try permuteChannels(result, into: &y, toChannelsLast: true)
            } else {
                outputs.set(index, result)
            }
        }
    }
}

/// Copies `[N, C, S]` (S = the spatial dims flattened) between plain and channels-last
/// order, for 1- and 4-byte elements.
func permuteChannels(_ source: Tensor, into destination: inout Tensor, toChannelsLast: Bool) throws {
    guard source.rank >= 3, source.shape == destination.shape, source.elementType == destination.elementType,
          let bits = source.elementType.bitWidth, bits == 8 || bits == 32 else {
        throw KernelError.unsupported("channels-last copy of \(source.elementType) \(source.shape)")
    }
    let (n, c) = (source.shape[0], source.shape[1])
    let s = source.shape.dropFirst(2).reduce(1, *)
    func copy<T>(_: T.Type) {
        let from = source.rawPointer.assumingMemoryBound(to: T.self)
        let to = destination.rawPointer.assumingMemoryBound(to: T.self)
        for image in 0..<n {
            let base = image * c * s
            for channel in 0..<c {
                for position in 0..<s {
                    let plain = base + channel * s + position, last = base + position * c + channel
                    if toChannelsLast { to[last] = from[plain] } else { to[plain] = from[last] }
                }
            }
        }
    }
    if bits == 8 { copy(UInt8.self) } else { copy(UInt32.self) }
    destination.layout = toChannelsLast ? .channelsLast : .plain
}
