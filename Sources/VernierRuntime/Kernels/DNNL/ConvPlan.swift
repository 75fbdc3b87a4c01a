import CDNNL
import Foundation
import VernierCost
import VernierGraph

/// An operand a plan either knows at plan time (weights, bias: copied or reordered
/// once) or receives on each run (bound to the caller's memory then).
public enum PlanOperand: Sendable {
    case constant(Tensor)
    case runtime
}

/// A 1-D, 2-D or 3-D fp32 convolution or transposed convolution (oneDNN
/// "deconvolution") on oneDNN, planned once for one input shape and run many times;
/// or an int8 convolution (`quantization`: QLinearConv's arithmetic on u8 / s8
/// activations and s8 weights, oneDNN's `jit_uni_int8` kernels).
///
/// Plan time (`init`) creates the primitive with its fused epilogue (post-ops), chooses
/// the layouts, reorders constant weights into the layout the primitive wants and
/// allocates every internal buffer (blocked input/output copies and the scratchpad).
/// Run time only points the edge memories at the caller's tensors and executes: no
/// allocation.
///
/// Layout: the caller's tensors are plain (NCW, NCHW, NCDHW), but the primitive is
/// created with `dnnl_format_tag_any` for source, weights and destination, so oneDNN
/// picks its native blocked layouts (`nChw8c` activations and `OIhw8i8o`-like weights
/// on AVX2, `nChw16c` / `OIhw16i16o` on AVX-512: one channel block fills one vector
/// register, so the JIT kernel vectorises over channels with unit-stride loads and keeps
/// a register tile of outputs, instead of gathering across the W axis as plain NCHW
/// forces it to). `convThroughputIsReported` prints both variants for a 3x3 64->64
/// conv at 56x56: on a 2-core AVX2 machine (oneDNN 2.6.3), blocked `jit:avx2` 116 GFLOP/s
/// against 75 for plain NCHW (`gemm:jit`), 84 against 53 on one thread, reorders
/// included. The price is a reorder at each edge, O(N*C*H*W) work against the conv's
/// O(N*C*H*W*M*kH*kW/group); constant weights are reordered once at plan time, weights
/// that arrive at run time are reordered on each run. When oneDNN's choice already is
/// the plain layout (e.g. some depthwise or 3-channel first layers), no reorder is made.
///
/// A fused residual (`epilogue.addsResidual`) is a oneDNN `sum` post-op: the addend is
/// written into the primitive's destination first (a copy into the output, or a reorder
/// into the blocked destination), then the primitive adds its result and applies the
/// activation (see `FusedEpilogue.appendPostOps`).
public final class ConvPlan: @unchecked Sendable {
    public let transposed: Bool
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let weightsShape: [Int]
    public let geometry: ConvGeometry
    public let epilogue: FusedEpilogue
    public let hasBias: Bool
    /// nil for an fp32 convolution.
    public let quantization: Int8Operands?
    /// Layouts of the caller's input and output tensors.
    public let sourceLayout: TensorLayout
    public let destinationLayout: TensorLayout
    /// Weights / bias bound on each run rather than baked in at plan time.
    public let takesRuntimeWeights: Bool
    public let takesRuntimeBias: Bool
    /// The OpenMP thread count when the primitive was made (oneDNN sizes its work split then).
    public let threadCount: Int
    /// oneDNN's implementation name, e.g. `jit:avx2`.
    public let implementation: String
    /// Whether the input/output are reordered into/out of a blocked layout on each run.
    public let reordersInput: Bool
    public let reordersOutput: Bool
    /// Bytes of activations reordered on each run: the input, the output and a fused
    /// addend, each when its layout is not the primitive's.
    public let relayoutBytes: Int
    /// Bytes of plan-owned memory (reordered weights, blocked edge copies); the
    /// scratchpad is the engine's, shared by every plan.
    public let internalBytes: Int

    public var fusedReLU: Bool { epilogue.activation == .relu }

    private let engine: DNNLEngine
    private let userSource: DNNLMemory
    private let userDestination: DNNLMemory
    private let userWeights: DNNLMemory?
    private let weightsReorder: DNNLPrimitive?
    private let userBias: DNNLMemory?
    /// The addend's plain memory and its reorder into the blocked destination.
    private let userAddend: DNNLMemory?
    private let addendReorder: DNNLPrimitive?
    private let inputReorder: DNNLPrimitive?
    private let primitive: DNNLPrimitive
    private let outputReorder: DNNLPrimitive?
    /// Constant weights used in place (their layout already is the primitive's).
    private let keptWeights: Tensor?
    private let outputBytes: Int

    /// Whether to ask oneDNN for a Winograd kernel: F(2x2, 3x3) (`jit_fp32_wino_2x3`) or,
    /// on AVX-512, F(4x4, 3x3) (`jit_wino_4x3`), which oneDNN picks by shape and thread
    /// count (`implementation` says which). F(2x2, 3x3) does
    /// 2.25x fewer multiplies on an fp32 3x3 stride-1 convolution, and 0.62-0.67 of
    /// the direct kernel's time on ResNet-50's 56x56 and 28x28 ones at 1 thread, with
    /// outputs within 1.5e-6 of ONNX Runtime's (relative to the largest). Its weight
    /// transform runs once at plan time but slowly (0.7 ms for 64x64x3x3, 47 ms for
    /// 512x512x3x3) while the gain shrinks with the map (0.85 at 14x14, 0.91 at 7x7):
    /// the transform costs about 1/(positions x gain) runs, so only maps of at least
    /// 28x28 take it (under 6 runs' gain; `WinogradConvolution`, which prediction
    /// shares), which keeps ResNet-50's planning near its direct-kernel time. Constant
    /// weights only: a run-time weight would be transformed on every run.
    static func takesWinograd(transposed: Bool, int8: Bool, kernel: [Int], geometry: ConvGeometry, inputShape: [Int],
                              outputShape: [Int]) -> Bool {
        !transposed && WinogradConvolution.applies(kernel: kernel, strides: geometry.strides, dilations: geometry.dilations,
                                                   group: geometry.group, outputPositions: outputShape.dropFirst(2).reduce(1, *),
                                                   inputChannels: inputShape.count > 1 ? inputShape[1] : 0,
                                                   outputChannels: outputShape.count > 1 ? outputShape[1] : 0, integer: int8)
    }

    /// A convolution with constant weights and an optional fused ReLU (the common case).
    /// - Parameters:
    ///   - inputShape: `[N, C, spatial...]`.
    ///   - weights: fp32 `[M, C/group, k...]`; copied (reordered), so the caller may
    ///     drop or reuse it afterwards.
    ///   - bias: fp32 `[M]`, or nil.
    public convenience init(inputShape: [Int], weights: Tensor, bias: Tensor? = nil,
                            geometry: ConvGeometry, relu: Bool = false,
                            engine: DNNLEngine? = nil) throws {
        try self.init(transposed: false, inputShape: inputShape, weightsShape: weights.shape,
                      weights: .constant(weights), bias: bias.map { .constant($0) }, geometry: geometry,
                      epilogue: FusedEpilogue(activation: relu ? .relu : nil), engine: engine)
    }

    /// - Parameters:
    ///   - transposed: a ConvTranspose (weights `[C, M/group, k...]`) instead of a Conv
    ///     (weights `[M, C/group, k...]`).
    ///   - bias: nil for none, else `[M]` constant or bound at run.
    ///   - blockedLayouts: false forces plain layouts inside the primitive too; it exists
    ///     only to measure what the blocked layouts buy.
    public init(transposed: Bool, inputShape: [Int], weightsShape: [Int], weights: PlanOperand,
                bias: PlanOperand?, geometry: ConvGeometry, epilogue: FusedEpilogue = .none,
                engine: DNNLEngine? = nil, blockedLayouts: Bool = true,
                sourceLayout: TensorLayout = .plain, destinationLayout: TensorLayout = .plain,
                quantization: Int8Operands? = nil) throws {
        let engine = try engine ?? DNNLEngine.shared()
        let types = try Self.elementTypes(quantization, transposed: transposed, weights: weights, bias: bias)
        if case .constant(let w) = weights, w.elementType != types.weights || w.shape != weightsShape {
            throw DNNLError.shapeMismatch("ConvPlan takes \(types.weights) weights of shape \(weightsShape), "
                                          + "got \(w.elementType) \(w.shape)")
        }
        let computed = transposed ? geometry.transposedOutputShape(input: inputShape, weights: weightsShape)
                                  : geometry.outputShape(input: inputShape, weights: weightsShape)
        guard let outputShape = computed, inputShape.allSatisfy({ $0 >= 1 }) else {
            throw DNNLError.shapeMismatch(
                "input \(inputShape), weights \(weightsShape), strides \(geometry.strides), pads \(geometry.pads), "
                + "dilations \(geometry.dilations), group \(geometry.group)"
                + (transposed ? ", output_padding \(geometry.outputPadding)" : ""))
        }
        let outChannels = outputShape[1]
        if case .constant(let b)? = bias, b.elementType != types.bias || b.shape != [outChannels] {
            throw DNNLError.shapeMismatch("bias \(b.shape) for \(outChannels) output channels")
        }
        self.engine = engine
        self.transposed = transposed
        self.inputShape = inputShape
        self.outputShape = outputShape
        self.weightsShape = weightsShape
        self.geometry = geometry
        self.epilogue = epilogue
        self.hasBias = bias != nil
        self.quantization = quantization
        self.threadCount = ThreadPool.threadCount
        outputBytes = outputShape.reduce(1, *) * (types.destination.bitWidth ?? 32) / 8
        let (sourceType, weightsType, biasType, destinationType) =
            try (dnnlType(types.source), dnnlType(types.weights), dnnlType(types.bias), dnnlType(types.destination))

        // The user-side weights: ONNX's layout described as oneDNN's [(G,) O, I, k...].
        let group = geometry.group
        let kernel = Array(weightsShape[2...])
        let kernelStrides = rowMajorStrides(kernel)
        let kernelVolume = kernel.reduce(1, *)
        let inChannels = inputShape[1]
        let (o, i) = (outChannels / group, inChannels / group)
        let weightDims = group == 1 ? [o, i] + kernel : [group, o, i] + kernel
        let userWeightsDesc: dnnl_memory_desc_t
        if !transposed {
            // [M, C/g, k...] is [g, M/g, C/g, k...] row-major.
            userWeightsDesc = try plainDescriptor(group == 1 ? weightsShape : [group, o, i] + kernel, type: weightsType)
        } else {
            // [C, M/g, k...] is (g, i, o, k...) in memory: o has stride kVol, i has o*kVol.
            let gio = [i * o * kernelVolume, kernelVolume, o * kernelVolume]
            userWeightsDesc = group == 1
                ? try stridedDescriptor([o, i] + kernel, strides: [gio[1], gio[2]] + kernelStrides)
                : try stridedDescriptor([group, o, i] + kernel, strides: gio + kernelStrides)
        }
        // The caller's activations: plain, or already in a channel-blocked layout when
        // the executor keeps consecutive oneDNN ops blocked (then no edge reorder runs
        // when the primitive wants that layout too).
        let userSourceDesc = try layoutDescriptor(inputShape, sourceLayout, type: sourceType)
        let userDestinationDesc = try layoutDescriptor(outputShape, destinationLayout, type: destinationType)
        self.sourceLayout = sourceLayout
        self.destinationLayout = destinationLayout

        // The primitive's descriptors: any layout (see the type's comment), except that
        // an activation that already is channel-blocked is first offered as it is: left
        // to choose, oneDNN's depthwise convolutions (brdgmm) take channels-last, and the
        // reorders into and out of it cost more than the convolution (a third of the
        // OCR detector's run). When only oneDNN's reference kernel takes the offer, the
        // layouts are left to oneDNN after all.
        func isBlocked(_ layout: TensorLayout) -> Bool { if case .channelBlocked = layout { return true }; return false }
        let anySource = blockedLayouts ? try descriptor(inputShape, tag: dnnl_format_tag_any, type: sourceType) : userSourceDesc
        let anyWeights = blockedLayouts ? try descriptor(weightDims, tag: dnnl_format_tag_any, type: weightsType) : userWeightsDesc
        let anyDestination = blockedLayouts
            ? try descriptor(outputShape, tag: dnnl_format_tag_any, type: destinationType) : userDestinationDesc
        let offersSource = blockedLayouts && isBlocked(sourceLayout)
        let offersDestination = blockedLayouts && isBlocked(destinationLayout)
        let biasDesc = try plainDescriptor([outChannels], type: biasType)

        // ONNX dilation 1 is oneDNN dilation 0. oneDNN checks
        // (dst - extent + padL + padR) / stride + 1 == src for a deconvolution, with floor
        // division: ConvTranspose's output_padding (< stride) fits with ONNX's end pads;
        // larger output paddings are taken out of the right padding in whole strides.
        let n = geometry.spatialRank
        let strides = geometry.strides.map { dnnl_dim_t($0) }
        let dilations = geometry.dilations.map { dnnl_dim_t($0 - 1) }
        let padBegin = geometry.pads[0..<n].map { dnnl_dim_t($0) }
        let padEnd = (0..<n).map { axis in
            dnnl_dim_t(geometry.pads[n + axis]
                       - (transposed ? geometry.strides[axis] * (geometry.outputPadding[axis] / geometry.strides[axis]) : 0))
        }

        let postOps = DNNLPostOps(epilogue: epilogue, sum: epilogue.addsResidual,
                                  requantization: quantization?.requantization)
        // oneDNN 2.6 lists its brgemm-based fp32 convolutions first on AVX-512 machines,
        // but on a Xeon with AVX-512 and AMX they measured slower than its older jit
        // ones (MobileNetV2 15.1 -> 9.1 ms, ResNet-50 77 -> 58 ms at 1 thread) and ask
        // for scratchpads of up to hundreds of MB. int8 keeps them (AMX).
        let avoided = quantization == nil ? ["brg"] : []
        let withBias = bias != nil
        var isConstant: Bool { if case .constant = weights { return true }; return false }
        let winograd = blockedLayouts && isConstant
            && Self.takesWinograd(transposed: transposed, int8: quantization != nil, kernel: kernel, geometry: geometry,
                                  inputShape: inputShape, outputShape: outputShape)
        func primitiveDescriptor(source: dnnl_memory_desc_t, destination: dnnl_memory_desc_t,
                                 algorithm: dnnl_alg_kind_t = dnnl_convolution_direct) throws -> dnnl_primitive_desc_t {
            var (source, weights, destination, bias) = (source, anyWeights, destination, biasDesc)
            if transposed {
                var opDesc = dnnl_deconvolution_desc_t()
                try withUnsafeMutablePointer(to: &bias) { biasPointer in
                    try dnnlCheck(
                        dnnl_dilated_deconvolution_forward_desc_init(
                            &opDesc, dnnl_forward_inference, dnnl_deconvolution_direct,
                            &source, &weights, withBias ? biasPointer : nil, &destination,
                            strides, dilations, padBegin, padEnd),
                        "dnnl_dilated_deconvolution_forward_desc_init")
                }
                return try withUnsafePointer(to: &opDesc) {
                    try makePrimitiveDescriptor($0, postOps: postOps, engine: engine, what: "deconvolution", avoiding: avoided)
                }
            }
            var opDesc = dnnl_convolution_desc_t()
            try withUnsafeMutablePointer(to: &bias) { biasPointer in
                try dnnlCheck(
                    dnnl_dilated_convolution_forward_desc_init(
                        &opDesc, dnnl_forward_inference, algorithm,
                        &source, &weights, withBias ? biasPointer : nil, &destination,
                        strides, dilations, padBegin, padEnd),
                    "dnnl_dilated_convolution_forward_desc_init")
            }
            return try withUnsafePointer(to: &opDesc) {
                try makePrimitiveDescriptor($0, postOps: postOps, engine: engine, what: "convolution", avoiding: avoided)
            }
        }
        let offeredSource = offersSource ? userSourceDesc : anySource
        let offeredDestination = offersDestination ? userDestinationDesc : anyDestination
        var winogradPD: dnnl_primitive_desc_t?
        if winograd, let w = try? primitiveDescriptor(source: offeredSource, destination: offeredDestination,
                                                       algorithm: dnnl_convolution_winograd) {
            // Only a jit Winograd kernel is worth it; a reference one is let go.
            if implementationName(w).hasPrefix("ref") { dnnl_primitive_desc_destroy(w) } else { winogradPD = w }
        }
        var pd = try winogradPD ?? primitiveDescriptor(source: offeredSource, destination: offeredDestination)
        if (offersSource || offersDestination) && implementationName(pd).hasPrefix("ref") {
            dnnl_primitive_desc_destroy(pd)
            pd = try primitiveDescriptor(source: anySource, destination: anyDestination)
        }
        defer { dnnl_primitive_desc_destroy(pd) }

        let sourceDesc = try queryDescriptor(pd, dnnl_query_src_md)
        let weightsDesc = try queryDescriptor(pd, dnnl_query_weights_md)
        let destinationDesc = try queryDescriptor(pd, dnnl_query_dst_md)

        var arguments: [(Int32, DNNLMemory)] = []
        var internalBytes = 0
        switch weights {
        case .constant(let w):
            // Reordered once, now, into plan-owned memory; used in place when the
            // primitive wants the caller's layout anyway.
            let user = try DNNLMemory(unbound: userWeightsDesc, engine: engine)
            try user.bind(w.rawPointer)
            if descriptorsEqual(weightsDesc, userWeightsDesc) {
                keptWeights = w
                arguments.append((DNNL_ARG_WEIGHTS, user))
            } else {
                let owned = try DNNLMemory.reordered(from: user, into: weightsDesc, engine: engine)
                keptWeights = nil
                arguments.append((DNNL_ARG_WEIGHTS, owned))
                internalBytes += owned.byteCount
            }
            userWeights = nil
            weightsReorder = nil
        case .runtime:
            let user = try DNNLMemory(unbound: userWeightsDesc, engine: engine)
            let edge = try DNNLEdge(user: user, primitiveLayout: weightsDesc, isOutput: false, engine: engine)
            userWeights = user
            weightsReorder = edge.reorder
            keptWeights = nil
            arguments.append((DNNL_ARG_WEIGHTS, edge.primitiveSide))
            internalBytes += edge.ownedBytes
        }
        switch bias {
        case .constant(let b)?:
            let user = try DNNLMemory(unbound: biasDesc, engine: engine)
            try user.bind(b.rawPointer)
            let owned = try DNNLMemory(owning: biasDesc, engine: engine)
            try makeReorder(from: user, to: owned, engine: engine).execute(on: engine)
            arguments.append((DNNL_ARG_BIAS, owned))
            internalBytes += owned.byteCount
            userBias = nil
        case .runtime?:
            let user = try DNNLMemory(unbound: biasDesc, engine: engine)
            arguments.append((DNNL_ARG_BIAS, user))
            userBias = user
        case nil:
            userBias = nil
        }
        try engine.wait()
        // Reordered weights are the plan's own copy; the file's pages need not stay resident.
        if case .constant(let w) = weights, keptWeights == nil { w.releaseResidentPages() }
        takesRuntimeWeights = userWeights != nil
        takesRuntimeBias = userBias != nil

        if let scratchpad = try scratchpadMemory(pd, engine: engine) {
            arguments.append((DNNL_ARG_SCRATCHPAD, scratchpad))
        }

        // Edges: the caller's plain tensors, bound on each run; blocked copies when the
        // primitive chose another layout.
        userSource = try DNNLMemory(unbound: userSourceDesc, engine: engine)
        userDestination = try DNNLMemory(unbound: userDestinationDesc, engine: engine)
        let inputEdge = try DNNLEdge(user: userSource, primitiveLayout: sourceDesc, isOutput: false, engine: engine)
        let outputEdge = try DNNLEdge(user: userDestination, primitiveLayout: destinationDesc, isOutput: true, engine: engine)
        inputReorder = inputEdge.reorder
        outputReorder = outputEdge.reorder
        if epilogue.addsResidual, outputEdge.reorder != nil {
            let addend = try DNNLMemory(unbound: userDestinationDesc, engine: engine)
            addendReorder = try makeReorder(from: addend, to: outputEdge.primitiveSide, engine: engine)
            userAddend = addend
        } else {
            addendReorder = nil
            userAddend = nil
        }
        arguments.append((DNNL_ARG_SRC, inputEdge.primitiveSide))
        arguments.append((DNNL_ARG_DST, outputEdge.primitiveSide))
        internalBytes += inputEdge.ownedBytes + outputEdge.ownedBytes
        primitive = try DNNLPrimitive(descriptor: pd, arguments: arguments)
        implementation = primitive.implementation
        reordersInput = inputReorder != nil
        reordersOutput = outputReorder != nil
        let inputBytes = inputShape.reduce(1, *) * (types.source.bitWidth ?? 32) / 8
        relayoutBytes = (reordersInput ? inputBytes : 0) + (reordersOutput ? outputBytes : 0) + (addendReorder != nil ? outputBytes : 0)
        self.internalBytes = internalBytes
    }

    /// True when the plan holds its own copy of constant weights (reordered), so the
    /// caller's tensor is no longer needed.
    public var ownsWeights: Bool { keptWeights == nil && !takesRuntimeWeights }

    /// Multiply-adds of one run: conv N * M * O... * (C/group) * k...; transposed
    /// N * C * D... * (M/group) * k... (every input element meets every tap).
    public var macs: Int {
        transposed ? inputShape.reduce(1, *) * weightsShape[1...].reduce(1, *)
                   : outputShape.reduce(1, *) * weightsShape[1...].reduce(1, *)
    }

    /// Runs a plan with constant weights and bias and no residual, and waits.
    public func run(input: Tensor, output: Tensor) throws {
        try run(input: input, weights: nil, bias: nil, addend: nil, output: output)
    }

    /// Runs the plan and waits. `weights` / `bias` are read only when the plan takes them
    /// at run time; `addend` only when the epilogue adds a residual (same shape as the
    /// output; it may be the output's own memory). No allocation on this path.
    public func run(input: Tensor, weights: Tensor?, bias: Tensor?, addend: Tensor?, output: Tensor) throws {
        try engine.exclusive {
            guard input.shape == inputShape, output.shape == outputShape,
                  input.layout == sourceLayout, output.layout == destinationLayout,
                  input.elementType == (quantization?.sourceType ?? .float),
                  output.elementType == (quantization?.destinationType ?? .float) else {
                throw DNNLError.shapeMismatch("ConvPlan for \(inputShape) -> \(outputShape) run with "
                                              + "\(input.shape) -> \(output.shape)")
            }
            if let userWeights {
                guard let weights, weights.shape == weightsShape, weights.elementType == .float else {
                    throw DNNLError.shapeMismatch("ConvPlan needs fp32 weights \(weightsShape) at run time")
                }
                try userWeights.bind(weights.rawPointer)
            }
            if let userBias {
                guard let bias, bias.shape == [outputShape[1]], bias.elementType == .float else {
                    throw DNNLError.shapeMismatch("ConvPlan needs an fp32 bias [\(outputShape[1])] at run time")
                }
                try userBias.bind(bias.rawPointer)
            }
            try userSource.bind(input.rawPointer)
            try userDestination.bind(output.rawPointer)
            if epilogue.addsResidual {
                guard let addend, addend.shape == outputShape, addend.elementType == output.elementType else {
                    throw DNNLError.shapeMismatch("ConvPlan needs an addend \(outputShape) of the output's type at run time")
                }
                if let userAddend, let addendReorder {
                    try userAddend.bind(addend.rawPointer)
                    try addendReorder.execute(on: engine)
                } else if addend.rawPointer != output.rawPointer {
                    output.rawPointer.copyMemory(from: addend.rawPointer, byteCount: outputBytes)
                }
            }
            try weightsReorder?.execute(on: engine)
            try inputReorder?.execute(on: engine)
            try primitive.execute(on: engine)
            try outputReorder?.execute(on: engine)
            try engine.wait()
        }
    }

    /// The element types of source, weights, bias and destination: fp32 throughout, or
    /// QLinearConv's (u8 / s8 activations, s8 weights) for constant operands of a
    /// convolution (not transposed), with the bias in the product's units as fp32 (the
    /// int32 bias, exact up to 2^24, or halved with its channel's weights).
    private static func elementTypes(_ quantization: Int8Operands?, transposed: Bool, weights: PlanOperand,
                                     bias: PlanOperand?) throws
        -> (source: ElementType, weights: ElementType, bias: ElementType, destination: ElementType) {
        guard let quantization else { return (.float, .float, .float, .float) }
        try quantization.validate("convolution")
        if transposed { throw DNNLError.shapeMismatch("int8 transposed convolution") }
        if case .runtime = weights { throw DNNLError.shapeMismatch("int8 ConvPlan needs constant weights") }
        if case .runtime? = bias { throw DNNLError.shapeMismatch("int8 ConvPlan needs a constant bias") }
        return (quantization.sourceType, .int8, .float, quantization.destinationType)
    }
}
