import VernierGraph

/// Kernels of the Conv family (same file name as the shape rules and cost formulas).
enum ConvKernels {
    static let all: [String: KernelFactory] = [
        "Conv": { ctx in
            if ctx.node.hasAttribute(FusedAttributes.splitTranspose) { return try SplitTransposeConvKernel(ctx) }
            return try ConvKernel(ctx, transposed: false)
        },
        "ConvTranspose": { ctx in
            if let patches = try PatchConvTransposeKernel.make(ctx) { return patches }
            return try ConvKernel(ctx, transposed: true)
        },
    ]
}

/// Conv and ConvTranspose (fp32, 1-D to 3-D) on oneDNN through `ConvPlan`, with the
/// node's fused epilogue. A plan is specialised to an input shape: made at compile time
/// when the input shape is known and the weights (and bias) are constants, otherwise on
/// the first run with a new shape, then kept (a few shapes at most). Weights that are
/// not constants are bound, and reordered if the primitive wants, on every run.
final class ConvKernel: Kernel {
    let transposed: Bool
    let attributes: ConvAttributes
    let epilogue: FusedEpilogue
    /// Input index of the bias (2) when the node has one.
    let biasIndex: Int?
    /// Input index of the fused residual addend (the node's last input).
    let addendIndex: Int?
    /// Constant weights and bias until a plan made at plan time has packed them (then
    /// released: `packedInputs`).
    private var constantWeights: Tensor?
    private var constantBias: Tensor?
    private let weightsShape: [Int]?
    private(set) var packedInputs: [Int] = []
    /// Layouts of the activations as planned (`LayoutPlanner`): input, output (and the
    /// fused addend, which shares the output's).
    let inputLayout: TensorLayout
    let outputLayout: TensorLayout
    /// Most recently made first; at most `capacity`.
    private var plans: [ConvPlan] = []
    var relayoutBytes: Int { plans.first?.relayoutBytes ?? 0 }
    var implementation: String? { plans.first?.implementation }
    private static let capacity = 4
    /// The plan when the convolution runs as one matrix product (`WindowGemmConvPlan`),
    /// made at plan time; `plans` stays empty then.
    private(set) var windowPlan: WindowGemmConvPlan?
    /// The plan when a few-channel 1-D convolution runs as one matrix product
    /// (`SignalWindowConvPlan`), made at plan time; `plans` stays empty then.
    private(set) var signalPlan: SignalWindowConvPlan?

    init(_ ctx: KernelContext, transposed: Bool) throws {
        let op = transposed ? "ConvTranspose" : "Conv"
        self.transposed = transposed
        attributes = try ConvAttributes(node: ctx.node)
        epilogue = try FusedEpilogue(node: ctx.node)
        let count = ctx.node.inputs.count
        let regular = count - (epilogue.addsResidual ? 1 : 0)
        guard (2...3).contains(regular) else {
            throw KernelError.invalid("\(op) takes 2 or 3 inputs\(epilogue.addsResidual ? " and a fused addend" : ""), got \(count)")
        }
        biasIndex = regular == 3 && !ctx.node.inputs[2].isEmpty ? 2 : nil
        addendIndex = epilogue.addsResidual ? count - 1 : nil
        for (index, type) in ctx.inputTypes.enumerated() where index < count {
            if let type, type.elementType != .float {
                throw KernelError.unsupported("\(op) input \(index) of type \(type.elementType) (fp32 only)")
            }
        }
        inputLayout = transposed ? .plain : ctx.inputLayout(0)
        outputLayout = transposed ? .plain : ctx.outputLayout(0)
        constantWeights = ctx.constant(1)
        constantBias = biasIndex.flatMap { ctx.constant($0) }
        weightsShape = constantWeights?.shape
        if let shape = ctx.knownInputShape(0), shape.allSatisfy({ $0 >= 1 }), let weights = constantWeights,
           biasIndex == nil || constantBias != nil {
            // Convolutions that run as one matrix product instead of oneDNN's convolution.
            if !transposed, let geometry = try? attributes.convGeometry(input: shape, weights: weights.shape) {
                if WindowGemmConvPlan.takes(input: shape, weights: weights.shape, geometry: geometry,
                                            inputLayout: inputLayout, outputLayout: outputLayout) {
                    windowPlan = try asKernelErrors("oneDNN matmul") {
                        try WindowGemmConvPlan(input: shape, weights: weights, bias: constantBias, geometry: geometry,
                                               epilogue: epilogue, layout: inputLayout)
                    }
                    handConstantsToThePlan()
                    return
                }
                if SignalWindowConvPlan.takes(input: shape, weights: weights.shape, geometry: geometry, inputLayout: inputLayout,
                                              outputLayout: outputLayout, epilogue: epilogue, block: preferredChannelBlock) {
                    signalPlan = try asKernelErrors("oneDNN matmul") {
                        try SignalWindowConvPlan(input: shape, weights: weights, bias: constantBias, geometry: geometry,
                                                 epilogue: epilogue, block: preferredChannelBlock)
                    }
                    handConstantsToThePlan()
                    return
                }
            }
            let plan = try makePlan(input: shape, weights: weights.shape)
            plans.append(plan)
            // The plan's shapes are the graph's (a compiled graph refuses other input
            // shapes), so packed weights are never needed again.
            if plan.ownsWeights { handConstantsToThePlan() }
        }
    }

    /// The plan holds its own copy of the weights (and bias): they arrive as nil at run
    /// time and this kernel lets go of them.
    private func handConstantsToThePlan() {
        packedInputs = [1] + (biasIndex.map { [$0] } ?? [])
        constantWeights = nil
        constantBias = nil
    }

    private func makePlan(input: [Int], weights: [Int]) throws -> ConvPlan {
        guard packedInputs.isEmpty else {
            throw KernelError.invalid("weights were packed for input \(plans.first?.inputShape ?? []); input \(input) needs a new plan")
        }
        let geometry = transposed ? try attributes.transposedGeometry(input: input, weights: weights)
                                  : try attributes.convGeometry(input: input, weights: weights)
        // Transposed convolutions keep plain layouts inside the primitive: oneDNN 2.6's
        // blocked deconvolution (jit:avx2) took 112 ms for the 24 -> 1 channel, 2x2
        // stride-2 head of the DBNet-style OCR detector at 320x320 -> 640x640 where its
        // plain gemm:jit path takes 19-24 ms, and 13 ms against 11 for 24 -> 24 channels.
        return try asKernelErrors(transposed ? "oneDNN deconvolution" : "oneDNN convolution") {
            try ConvPlan(transposed: transposed, inputShape: input, weightsShape: weights,
                         weights: constantWeights.map { .constant($0) } ?? .runtime,
                         bias: biasIndex == nil ? nil : (constantBias.map { .constant($0) } ?? .runtime),
                         geometry: geometry, epilogue: epilogue, blockedLayouts: !transposed,
                         sourceLayout: inputLayout, destinationLayout: outputLayout)
        }
    }

    /// The plan for these shapes and the current thread count (made and cached on a miss).
    private func plan(input: [Int], weights: [Int]) throws -> ConvPlan {
        let threads = ThreadPool.threadCount
        if let index = plans.firstIndex(where: {
            $0.inputShape == input && $0.weightsShape == weights && $0.threadCount == threads
        }) {
            return plans[index]
        }
        let plan = try makePlan(input: input, weights: weights)
        if plans.count >= Self.capacity { plans.removeLast() }
        plans.insert(plan, at: 0)
        return plan
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        // Packed weights and bias arrive as nil: the plan holds them.
        let packed = !packedInputs.isEmpty
        let w = packed ? nil : try requiredInput(inputs, 1)
        let bias = packed ? nil : try biasIndex.map { try requiredInput(inputs, $0) }
        guard let wShape = w?.shape ?? weightsShape else { throw KernelError.invalid("required input 1 is missing") }
        let addend = try addendIndex.map { try requiredInput(inputs, $0) }
        guard x.layout == inputLayout, addend?.layout ?? outputLayout == outputLayout else {
            throw KernelError.invalid("input in layout \(x.layout), planned \(inputLayout)")
        }
        guard x.elementType == .float, w?.elementType ?? .float == .float, bias?.elementType ?? .float == .float,
              addend?.elementType ?? .float == .float else {
            throw KernelError.unsupported("\(transposed ? "ConvTranspose" : "Conv") of \(x.elementType) (fp32 only)")
        }
        if x.elementCount == 0 {
            // An empty batch: an empty output of the right shape, nothing to compute.
            let geometry = transposed ? try attributes.transposedGeometry(input: x.shape, weights: wShape)
                                      : try attributes.convGeometry(input: x.shape, weights: wShape)
            let shape = transposed ? geometry.transposedOutputShape(input: x.shape, weights: wShape)
                                   : geometry.outputShape(input: x.shape, weights: wShape)
            guard let shape, x.shape[0] == 0 else {
                throw KernelError.unsupported("convolution of an input \(x.shape) with no elements")
            }
            _ = try outputs.allocate(0, .float, shape)
            return
        }
        if let windowPlan {
            let output = try outputs.allocate(0, .float, windowPlan.outputShape)
            try asKernelErrors("oneDNN matmul") { try windowPlan.run(input: x, addend: addend, output: output) }
            return
        }
        if let signalPlan {
            let output = try outputs.allocate(0, .float, signalPlan.outputShape)
            try asKernelErrors("oneDNN matmul") { try signalPlan.run(input: x, output: output) }
            return
        }
        let plan = try plan(input: x.shape, weights: wShape)
        let output = try outputs.allocate(0, .float, plan.outputShape)
        if let addend, addend.shape != plan.outputShape {
            throw KernelError.invalid("fused addend \(addend.shape) differs from the output \(plan.outputShape)")
        }
        try asKernelErrors("oneDNN convolution") {
            try plan.run(input: x, weights: w, bias: bias, addend: addend, output: output)
        }
    }
}

/// A Conv whose result a YOLO-style head splits into anchors and moves channels last
/// (`GraphPasses.fuseSplitTranspose`, `fused_split_transpose = A`): the convolution
/// writes its own channel-blocked buffer (plain when its channels would not fill their
/// blocks, `TensorLayout.blockFits`, the layout planner's rule), and one pass copies each
/// anchor's K channels of every cell into the output `[N, A, H, W, K]`, reading the
/// blocked result in runs of up to a block.
final class SplitTransposeConvKernel: Kernel {
    private let conv: ConvKernel
    private let anchors: Int
    /// The convolution's result, in `internalLayout`, reused on every run.
    private let internalSlots: OutputSlots
    private let internalLayout: TensorLayout
    /// The row pieces of one anchor, rebuilt on every run in the same storage.
    private var parts: [RowPart] = []

    var packedInputs: [Int] { conv.packedInputs }

    init(_ ctx: KernelContext) throws {
        anchors = try ctx.node.int(FusedAttributes.splitTranspose)
        guard anchors >= 1 else { throw KernelError.invalid("\(FusedAttributes.splitTranspose) must be at least 1, got \(anchors)") }
        let declared = ctx.inputTypes.count > 1 ? ctx.inputTypes[1]?.shape?.first?.intValue : nil
        let channels = ctx.constant(1)?.shape.first ?? declared ?? 0
        let block = preferredChannelBlock
        internalLayout = TensorLayout.blockFits(channels: channels, block: block) ? .channelBlocked(block) : .plain
        var inner = ctx
        inner.outputLayouts = [internalLayout]
        conv = try ConvKernel(inner, transposed: false)
        internalSlots = OutputSlots(count: 1, maxBytes: Int.max)
        internalSlots.layouts = [internalLayout]
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        internalSlots.reset()
        try conv.run(inputs, internalSlots)
        guard let y = internalSlots.results[0], y.rank == 4, y.shape[1] % anchors == 0 else {
            throw KernelError.invalid("\(FusedAttributes.splitTranspose) \(anchors) does not divide the conv's channels")
        }
        // Keep the buffer for the next run (`allocate` reuses a bound slot).
        if internalSlots.slots[0].buffer == nil {
            internalSlots.slots[0] = OutputSlots.Slot(buffer: y.buffer, offset: y.byteOffset, capacity: y.buffer.byteCount - y.byteOffset)
        }
        let (n, c, h, w) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
        let k = c / anchors, cells = h * w
        let out = try outputs.allocate(0, .float, [n, anchors, h, w, k])
        // Element (image, channel, cell) of the result sits at
        // image * imageStride + (channel / lanes) * cells * lanes + cell * lanes + channel % lanes:
        // one anchor's K channels of a cell are runs of at most a block, each contiguous
        // in the result and in the output. So every (image, anchor) is a row copy over
        // the cells (`copyRows`): source rows `lanes` floats apart, output rows K.
        let lanes: Int
        if case .channelBlocked(let b) = y.layout { lanes = b } else { lanes = 1 }
        let imageStride = y.layout.storageShape(y.shape).dropFirst().reduce(1, *)
        let float = MemoryLayout<Float>.size
        for image in 0..<n {
            for anchor in 0..<anchors {
                let source = y.rawPointer + image * imageStride * float
                let target = out.rawPointer + (image * anchors + anchor) * cells * k * float
                parts.removeAll(keepingCapacity: true)
                var channel = anchor * k
                while channel < (anchor + 1) * k {
                    let lane = channel % lanes
                    let run = min(lanes - lane, (anchor + 1) * k - channel)
                    parts.append(RowPart(from: source + ((channel / lanes) * cells * lanes + lane) * float, sourceStride: lanes * float,
                                         to: target + (channel - anchor * k) * float, destinationStride: k * float,
                                         bytes: run * float))
                    channel += run
                }
                copyRows(parts, rows: cells)
            }
        }
    }
}
