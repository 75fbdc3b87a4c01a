/// ConvTranspose whose kernel equals its stride (2-D, one group, no padding, dilation or
/// output padding), as in the upsampling heads of U-Net- and DBNet-style models: every
/// input pixel writes its own `kh x kw` block of the output, so output row `i*kh + a`
/// of channel `o` is, column block by column block, `sum over ic of W[ic, o, a, c] *
/// x[ic, i, j]` at column `j*kw + c`.
///
/// The kernel computes exactly that, one output row at a time, in registers: 32 input
/// columns at once (8 accumulators for `kw` = 2, enough to cover the FMA latency), then
/// the `kw` results interleaved into the row. The input rows of one `i` (IC x W floats)
/// are first copied together: in the NCHW input they sit a plane apart, often a
/// multiple of 4 KiB, so they would all compete for one L1 set (measured on the 24 ->
/// 24 head alone: 11.9 ms strided, 3.8 ms copied, 3.1 ms with 32 columns). Each output
/// element is written once.
///
/// History, on the OCR detector's heads (1 thread): oneDNN 2.6's deconvolution took 26.8
/// ms on the 24 -> 1 channel 2x2 stride-2 head at 320x320 -> 640x640 and 15.6 ms on the
/// 24 -> 24 layer at 160x160; a oneDNN product `[H*W, IC] x [IC, OC*kh*kw]` followed
/// by a scatter of its blocks took 3.8 and 8.8 ms (the scatter gathered 2-float pairs
/// 384 bytes apart, and the product's 9.8 MB went through memory twice).
final class PatchConvTransposeKernel: Kernel {
    private let outputShape: [Int]
    private let inputChannels: Int
    private let kh: Int, kw: Int
    /// Weights as [OC][kh][IC][kw]: for one output row, the inner loop over IC reads
    /// `kw` consecutive values.
    private let packed: [Float]
    /// One value per output channel (zeros without a bias).
    private let bias: [Float]
    private let activation: FusedEpilogue.Activation?
    let packedInputs: [Int]

    /// The kernel when the node qualifies (shapes known, constant weights and bias, plain
    /// layouts, no fused residual); nil otherwise.
    static func make(_ ctx: KernelContext) throws -> PatchConvTransposeKernel? {
        let attributes = try ConvAttributes(node: ctx.node)
        let epilogue = try FusedEpilogue(node: ctx.node)
        let biasIndex = ctx.node.inputs.count > 2 && !ctx.node.inputs[2].isEmpty ? 2 : nil
        guard !epilogue.addsResidual, attributes.group == 1, ctx.inputLayout(0) == .plain, ctx.outputLayout(0) == .plain,
              ctx.node.inputs.count <= 3, let input = ctx.knownInputShape(0), input.count == 4, input.allSatisfy({ $0 >= 1 }),
              let weights = ctx.constant(1), weights.elementType == .float, weights.shape.count == 4,
              weights.shape[0] == input[1], ctx.inputTypes.first??.elementType == .float
        else { return nil }
        let bias = biasIndex.flatMap { ctx.constant($0) }
        if biasIndex != nil, bias?.elementType != .float || bias?.elementCount != weights.shape[1] { return nil }
        let geometry = try attributes.transposedGeometry(input: input, weights: weights.shape)
        let (kh, kw) = (weights.shape[2], weights.shape[3])
        guard geometry.strides == [kh, kw], geometry.dilations == [1, 1], geometry.pads.allSatisfy({ $0 == 0 }),
              geometry.outputPadding.allSatisfy({ $0 == 0 }),
              let output = geometry.transposedOutputShape(input: input, weights: weights.shape),
              output == [input[0], weights.shape[1], input[2] * kh, input[3] * kw]
        else { return nil }
        return PatchConvTransposeKernel(weights: weights, bias: bias, biasIndex: biasIndex, activation: epilogue.activation,
                                        output: output)
    }

    private init(weights: Tensor, bias: Tensor?, biasIndex: Int?, activation: FusedEpilogue.Activation?, output: [Int]) {
        let (ic, oc, kh, kw) = (weights.shape[0], weights.shape[1], weights.shape[2], weights.shape[3])
        let stored = weights.scalars(as: Float.self)
        var packed = [Float](repeating: 0, count: stored.count)
        for i in 0..<ic {
            for o in 0..<oc {
                for a in 0..<kh {
                    for c in 0..<kw { packed[((o * kh + a) * ic + i) * kw + c] = stored[((i * oc + o) * kh + a) * kw + c] }
                }
            }
        }
        self.packed = packed
        self.bias = bias?.scalars(as: Float.self) ?? [Float](repeating: 0, count: oc)
        self.activation = activation
        inputChannels = ic
        self.kh = kh
        self.kw = kw
        outputShape = output
        // Both live on repacked copies.
        packedInputs = [1] + (biasIndex.map { [$0] } ?? [])
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let (n, oc, oh, ow) = (outputShape[0], outputShape[1], outputShape[2], outputShape[3])
        let (kh, kw, ic) = (self.kh, self.kw, inputChannels)
        let (h, w) = (oh / kh, ow / kw)
        guard x.elementType == .float, x.layout == .plain, x.shape == [n, ic, h, w] else {
            throw KernelError.invalid("ConvTranspose planned for [\(n), \(ic), \(h), \(w)], run with \(x.shape)")
        }
        let output = try outputs.allocate(0, .float, outputShape)
        let source = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
        let destination = output.rawPointer.assumingMemoryBound(to: Float.self)
        let activate = activation.map(ActivationRows.init)
        packed.withUnsafeBufferPointer { packedWeights in
            bias.withUnsafeBufferPointer { biases in
                guard let weights = packedWeights.baseAddress, let biases = biases.baseAddress else { return }
                // One task per input row: its IC x W floats are read for every output channel.
                ThreadPool.parallelFor(n * h, minimumPerThread: max(1, 4096 / max(1, oc * kh * ow))) { rows in
                    let gathered = UnsafeMutablePointer<Float>.allocate(capacity: ic * w)
                    defer { gathered.deallocate() }
                    for row in rows {
                        let (b, i) = (row / h, row % h)
                        for ch in 0..<ic { (gathered + ch * w).update(from: source + ((b * ic + ch) * h + i) * w, count: w) }
                        for o in 0..<oc {
                            for a in 0..<kh {
                                let out = destination + ((b * oc + o) * oh + i * kh + a) * ow
                                Self.outputRow(out, input: gathered, width: w, channels: ic,
                                               weights: weights + (o * kh + a) * ic * kw, kw: kw, bias: biases[o])
                                activate?.apply(out, ow)
                            }
                        }
                    }
                }
            }
        }
    }

    /// `even[0], odd[0], even[1], odd[1], ...` at `target` (16 floats, unaligned).
    @inline(__always)
    private static func storeInterleaved(_ even: SIMD8<Float>, _ odd: SIMD8<Float>, _ target: UnsafeMutableRawPointer) {
        var pair = SIMD16<Float>()
        pair.evenHalf = even
        pair.oddHalf = odd
        target.storeBytes(of: pair, as: SIMD16<Float>.self)
    }

    /// One output row: `out[j*kw + c] = bias + sum over ch of weights[ch*kw + c] *
    /// input[ch*width + j]`, for j in 0..<width (the input rows gathered back to back).
    @inline(__always)
    private static func outputRow(_ out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, width: Int,
                                  channels: Int, weights: UnsafePointer<Float>, kw: Int, bias: Float) {
        typealias V = SIMD8<Float>
        var j = 0
        if kw == 2 {
            while j + 32 <= width {
                var e0 = V(repeating: bias), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0
                var p = input + j
                for ch in 0..<channels {
                    let x0 = ElementLoops.load(p), x1 = ElementLoops.load(p + 8)
                    let x2 = ElementLoops.load(p + 16), x3 = ElementLoops.load(p + 24)
                    let w0 = V(repeating: weights[2 * ch]), w1 = V(repeating: weights[2 * ch + 1])
                    e0 = e0.addingProduct(x0, w0); e1 = e1.addingProduct(x1, w0)
                    e2 = e2.addingProduct(x2, w0); e3 = e3.addingProduct(x3, w0)
                    o0 = o0.addingProduct(x0, w1); o1 = o1.addingProduct(x1, w1)
                    o2 = o2.addingProduct(x2, w1); o3 = o3.addingProduct(x3, w1)
                    p += width
                }
                let target = UnsafeMutableRawPointer(out + 2 * j)
                Self.storeInterleaved(e0, o0, target)
                Self.storeInterleaved(e1, o1, target + 64)
                Self.storeInterleaved(e2, o2, target + 128)
                Self.storeInterleaved(e3, o3, target + 192)
                j += 32
            }
        }
        // Other block widths, and what is left of a row: 8 columns at a time, one
        // kernel column after another.
        while j + 8 <= width {
            for c in 0..<kw {
                var sum = V(repeating: bias)
                var p = input + j
                for ch in 0..<channels {
                    sum = sum.addingProduct(ElementLoops.load(p), V(repeating: weights[ch * kw + c]))
                    p += width
                }
                for lane in 0..<8 { out[(j + lane) * kw + c] = sum[lane] }
            }
            j += 8
        }
        while j < width {
            for c in 0..<kw {
                var sum = bias
                for ch in 0..<channels { sum += weights[ch * kw + c] * input[ch * width + j] }
                out[j * kw + c] = sum
            }
            j += 1
        }
    }
}

/// A fused activation applied in place to rows of floats with the element-wise kernels'
/// vector ops.
struct ActivationRows {
    let apply: (UnsafeMutablePointer<Float>, Int) -> Void

    init(_ activation: FusedEpilogue.Activation) {
        func using<Op: FloatMap>(_ op: Op) -> (UnsafeMutablePointer<Float>, Int) -> Void {
            { row, count in ElementLoops.map(UnsafePointer(row), row, count, op) }
        }
        switch activation {
        case .relu: apply = using(ReluOp())
        case .leakyRelu(let alpha): apply = using(LeakyReluOp(alpha: alpha))
        case .clip(let lo, let hi): apply = using(ClipOp(lo: lo, hi: hi))
        case .sigmoid: apply = using(SigmoidOp())
        case .hardSigmoid(let alpha, let beta): apply = using(HardSigmoidOp(alpha: alpha, beta: beta))
        case .hardSwish: apply = using(HardSwishOp())
        case .silu: apply = using(SiluRowOp())
        case .tanh: apply = using(TanhOp())
        case .gelu: apply = using(GeluOp())
        }
    }
}

/// `x * sigmoid(x)`.
private struct SiluRowOp: FloatMap {
    func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x * VectorMath.sigmoid(x) }
}
