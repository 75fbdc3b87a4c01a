import CDNNL

/// A 2-D fp32 convolution on oneDNN, planned once and run many times.
///
/// Plan time (`init`) creates the primitive, chooses the layouts, reorders the weights
/// into the layout the primitive wants and allocates every internal buffer (blocked
/// input/output copies and the scratchpad). Run time (`run(input:output:)`) only points
/// the edge memories at the caller's tensors and executes: no allocation.
///
/// Layout: the caller's input and output are plain NCHW, but the primitive is created
/// with `dnnl_format_tag_any` for source, weights and destination, so oneDNN picks its
/// native blocked layouts (`nChw8c` activations and `OIhw8i8o`-like weights on AVX2,
/// `nChw16c` / `OIhw16i16o` on AVX-512: one channel block fills one vector register, so
/// the JIT kernel vectorises over channels with unit-stride loads and keeps a register
/// tile of outputs, instead of gathering across the W axis as plain NCHW forces it to).
/// `convThroughputIsReported` prints both variants for a 3x3 64->64 conv at 56x56: on a
/// 2-core AVX2 machine (oneDNN 2.6.3), blocked `jit:avx2` 116 GFLOP/s against 75 for
/// plain NCHW (`gemm:jit`), 84 against 53 on one thread, reorders included. The price
/// is a reorder at each edge,
/// O(N*C*H*W) work against the conv's O(N*C*H*W*M*kH*kW/group), and the weights reorder
/// is paid once at plan time. When the executor keeps consecutive oneDNN ops in the
/// blocked layout, the edge reorders between them disappear. When oneDNN's choice
/// already is plain NCHW (e.g. some depthwise or 3-channel first layers), no reorder
/// is made.
public final class ConvPlan: @unchecked Sendable {
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let weightsShape: [Int]
    public let geometry: ConvGeometry
    public let fusedReLU: Bool
    /// oneDNN's implementation name, e.g. `jit:avx512_core`.
    public let implementation: String
    /// Whether the input/output are reordered into/out of a blocked layout on each run.
    public let reordersInput: Bool
    public let reordersOutput: Bool
    /// Bytes of plan-owned memory (reordered weights, blocked activations, scratchpad).
    public let internalBytes: Int

    private let engine: DNNLEngine
    private let userSource: DNNLMemory
    private let userDestination: DNNLMemory
    private let inputReorder: DNNLPrimitive?
    private let conv: DNNLPrimitive
    private let outputReorder: DNNLPrimitive?

    /// - Parameters:
    ///   - inputShape: `[N, C, H, W]`.
    ///   - weights: fp32 `[M, C/group, kH, kW]`; copied (reordered), so the caller may
    ///     drop or reuse it afterwards.
    ///   - bias: fp32 `[M]`, or nil.
    ///   - relu: fuse a ReLU after the conv (a oneDNN post-op).
    public convenience init(inputShape: [Int], weights: Tensor, bias: Tensor? = nil,
                            geometry: ConvGeometry, relu: Bool = false,
                            engine: DNNLEngine? = nil) throws {
        try self.init(inputShape: inputShape, weights: weights, bias: bias, geometry: geometry,
                      relu: relu, engine: engine, blockedLayouts: true)
    }

    /// `blockedLayouts: false` forces plain NCHW/OIHW inside the primitive too; it exists
    /// only to measure what the blocked layouts buy.
    init(inputShape: [Int], weights: Tensor, bias: Tensor?, geometry: ConvGeometry,
         relu: Bool, engine: DNNLEngine?, blockedLayouts: Bool) throws {
        let engine = try engine ?? DNNLEngine.shared()
        guard weights.elementType == .float, bias?.elementType ?? .float == .float else {
            throw DNNLError.shapeMismatch("ConvPlan takes fp32 weights and bias")
        }
        guard let outputShape = geometry.outputShape(input: inputShape, weights: weights.shape) else {
            throw DNNLError.shapeMismatch(
                "input \(inputShape), weights \(weights.shape), strides \(geometry.strides), "
                + "pads \(geometry.pads), dilations \(geometry.dilations), group \(geometry.group)")
        }
        let outChannels = weights.shape[0]
        if let bias, bias.shape != [outChannels] {
            throw DNNLError.shapeMismatch("bias \(bias.shape) for \(outChannels) output channels")
        }
        self.engine = engine
        self.inputShape = inputShape
        self.outputShape = outputShape
        self.weightsShape = weights.shape
        self.geometry = geometry
        self.fusedReLU = relu

        // The user-side descriptors: plain NCHW, OIHW (or GOIHW with groups), X.
        let group = geometry.group
        let kernel = Array(weights.shape[2...])
        let userWeightDims = group == 1
            ? weights.shape
            : [group, outChannels / group, weights.shape[1]] + kernel
        let userWeightsDesc = try plainDescriptor(userWeightDims)
        let userSourceDesc = try plainDescriptor(inputShape)
        let userDestinationDesc = try plainDescriptor(outputShape)

        // The primitive's descriptors: any layout (see the type's comment).
        var anySource = blockedLayouts ? try descriptor(inputShape, tag: dnnl_format_tag_any) : userSourceDesc
        var anyWeights = blockedLayouts ? try descriptor(userWeightDims, tag: dnnl_format_tag_any) : userWeightsDesc
        var anyDestination = blockedLayouts ? try descriptor(outputShape, tag: dnnl_format_tag_any) : userDestinationDesc
        var biasDesc = try plainDescriptor([outChannels])

        // ONNX dilation 1 is oneDNN dilation 0; ONNX pads are [top, left, bottom, right].
        let strides = geometry.strides.map { dnnl_dim_t($0) }
        let dilations = geometry.dilations.map { dnnl_dim_t($0 - 1) }
        let padBegin = geometry.pads[0..<2].map { dnnl_dim_t($0) }
        let padEnd = geometry.pads[2..<4].map { dnnl_dim_t($0) }

        var opDesc = dnnl_convolution_desc_t()
        try withUnsafeMutablePointer(to: &biasDesc) { biasPointer in
            try dnnlCheck(
                dnnl_dilated_convolution_forward_desc_init(
                    &opDesc, dnnl_forward_inference, dnnl_convolution_direct,
                    &anySource, &anyWeights, bias == nil ? nil : biasPointer, &anyDestination,
                    strides, dilations, padBegin, padEnd),
                "dnnl_dilated_convolution_forward_desc_init")
        }

        let pd = try withUnsafePointer(to: &opDesc) {
            try makePrimitiveDescriptor($0, relu: relu, engine: engine, what: "convolution")
        }
        defer { dnnl_primitive_desc_destroy(pd) }

        let sourceDesc = try queryDescriptor(pd, dnnl_query_src_md)
        let weightsDesc = try queryDescriptor(pd, dnnl_query_weights_md)
        let destinationDesc = try queryDescriptor(pd, dnnl_query_dst_md)

        // Weights: reordered once, now, into plan-owned memory.
        let userWeights = try DNNLMemory(unbound: userWeightsDesc, engine: engine)
        try userWeights.bind(weights.rawPointer)
        let planWeights = try DNNLMemory(owning: weightsDesc, engine: engine)
        try makeReorder(from: userWeights, to: planWeights, engine: engine).execute(on: engine)

        var arguments: [(Int32, DNNLMemory)] = [(DNNL_ARG_WEIGHTS, planWeights)]
        var internalBytes = planWeights.byteCount
        if let bias {
            let userBias = try DNNLMemory(unbound: biasDesc, engine: engine)
            try userBias.bind(bias.rawPointer)
            let planBias = try DNNLMemory(owning: biasDesc, engine: engine)
            try makeReorder(from: userBias, to: planBias, engine: engine).execute(on: engine)
            arguments.append((DNNL_ARG_BIAS, planBias))
            internalBytes += planBias.byteCount
        }
        try engine.wait()

        if let scratchpad = try scratchpadMemory(pd, engine: engine) {
            arguments.append((DNNL_ARG_SCRATCHPAD, scratchpad))
            internalBytes += scratchpad.byteCount
        }

        // Edges: the caller's NCHW tensors, bound on each run; blocked copies when the
        // primitive chose another layout.
        userSource = try DNNLMemory(unbound: userSourceDesc, engine: engine)
        userDestination = try DNNLMemory(unbound: userDestinationDesc, engine: engine)
        let inputEdge = try DNNLEdge(user: userSource, primitiveLayout: sourceDesc, isOutput: false, engine: engine)
        let outputEdge = try DNNLEdge(user: userDestination, primitiveLayout: destinationDesc, isOutput: true, engine: engine)
        inputReorder = inputEdge.reorder
        outputReorder = outputEdge.reorder
        arguments.append((DNNL_ARG_SRC, inputEdge.primitiveSide))
        arguments.append((DNNL_ARG_DST, outputEdge.primitiveSide))
        internalBytes += inputEdge.ownedBytes + outputEdge.ownedBytes
        conv = try DNNLPrimitive(descriptor: pd, arguments: arguments)
        implementation = conv.implementation
        reordersInput = inputReorder != nil
        reordersOutput = outputReorder != nil
        self.internalBytes = internalBytes
    }

    /// Multiply-adds of one run: N * M * OH * OW * (C/group) * kH * kW.
    public var macs: Int {
        outputShape.reduce(1, *) * weightsShape[1...].reduce(1, *)
    }

    /// Runs the conv from `input` (`inputShape`, NCHW) into `output` (`outputShape`,
    /// NCHW) and waits for it. No allocation on this path.
    public func run(input: Tensor, output: Tensor) throws {
        guard input.shape == inputShape, output.shape == outputShape,
              input.elementType == .float, output.elementType == .float else {
            throw DNNLError.shapeMismatch("ConvPlan for \(inputShape) -> \(outputShape) run with "
                                          + "\(input.shape) -> \(output.shape)")
        }
        try userSource.bind(input.rawPointer)
        try userDestination.bind(output.rawPointer)
        try inputReorder?.execute(on: engine)
        try conv.execute(on: engine)
        try outputReorder?.execute(on: engine)
        try engine.wait()
    }
}
