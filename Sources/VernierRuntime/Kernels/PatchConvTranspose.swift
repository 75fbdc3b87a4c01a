/// ConvTranspose whose kernel equals its stride (2-D, one group, no padding, dilation or
/// output padding), as in the upsampling heads of U-Net- and DBNet-style models: every
/// input pixel writes its own `kh x kw` block of the output, so the op is one matrix
/// product `[H*W, IC] x [IC, OC*kh*kw]` (the NCHW input read transposed through strides,
/// the weights in their stored `[IC, OC, kh, kw]` layout) and a scatter of the blocks.
///
/// oneDNN 2.6's deconvolution spent 26.8 ms on the OCR detector's 24 -> 1 channel
/// 2x2 stride-2 head at 320x320 -> 640x640 (9.8M multiply-adds, about 11 MB moved) and
/// 15.6 ms on its 24 -> 24 layer at 160x160; a product and a scatter need a pass over
/// the input and two over the output.
final class PatchConvTransposeKernel: Kernel {
    private let plan: MatMulPlan
    private let outputShape: [Int]
    private let kh: Int, kw: Int
    /// The product's rows: [N, H*W, OC*kh*kw].
    private let blocks: Tensor
    private let expandedBias: Tensor?
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
        return try PatchConvTransposeKernel(input: input, weights: weights, bias: bias, biasIndex: biasIndex,
                                            activation: epilogue.activation, output: output)
    }

    private init(input: [Int], weights: Tensor, bias: Tensor?, biasIndex: Int?, activation: FusedEpilogue.Activation?,
                 output: [Int]) throws {
        let (n, ic, h, w) = (input[0], input[1], input[2], input[3])
        let (oc, kh, kw) = (weights.shape[1], weights.shape[2], weights.shape[3])
        let columns = oc * kh * kw
        self.kh = kh
        self.kw = kw
        outputShape = output
        blocks = Tensor(shape: [n, h * w, columns])
        if let bias {
            let values = bias.scalars(as: Float.self)
            expandedBias = Tensor(shape: [columns], values: (0..<columns).map { values[$0 / (kh * kw)] })
        } else {
            expandedBias = nil
        }
        plan = try asKernelErrors("oneDNN matmul") {
            try MatMulPlan(a: [n, ic, h * w], b: [ic, columns], transA: true, constantB: weights.reshaped([ic, columns]),
                           bias: bias != nil, postOps: DNNLPostOps(epilogue: FusedEpilogue(activation: activation)))
        }
        // The bias lives on expanded; the weights too once the plan copied them.
        packedInputs = (plan.ownsB ? [1] : []) + (biasIndex.map { [$0] } ?? [])
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.elementType == .float, x.layout == .plain,
              x.shape == [outputShape[0], plan.aShape[1], outputShape[2] / kh, outputShape[3] / kw] else {
            throw KernelError.invalid("ConvTranspose planned for \(plan.aShape), run with \(x.shape)")
        }
        let output = try outputs.allocate(0, .float, outputShape)
        try asKernelErrors("oneDNN matmul") {
            try plan.run(a: x, b: nil, bias: expandedBias, output: blocks)
        }
        // Output row i*kh + a of channel o is input row i's blocks, row a of each.
        let (n, oc, oh, ow) = (outputShape[0], outputShape[1], outputShape[2], outputShape[3])
        let (h, w) = (oh / kh, ow / kw)
        let columns = oc * kh * kw
        let (kh, kw) = (self.kh, self.kw)
        let source = UnsafePointer(blocks.rawPointer.assumingMemoryBound(to: Float.self))
        let destination = output.rawPointer.assumingMemoryBound(to: Float.self)
        ThreadPool.parallelFor(n * h, minimumPerThread: 8) { rows in
            for row in rows {
                let (b, i) = (row / h, row % h)
                let blockRow = source + (b * h * w + i * w) * columns
                for o in 0..<oc {
                    for a in 0..<kh {
                        let out = destination + ((b * oc + o) * oh + i * kh + a) * ow
                        let first = blockRow + (o * kh + a) * kw
                        for j in 0..<w {
                            let from = first + j * columns, to = out + j * kw
                            for c in 0..<kw { to[c] = from[c] }
                        }
                    }
                }
            }
        }
    }
}
