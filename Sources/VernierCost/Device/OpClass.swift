import VernierGraph

/// The kinds of kernel whose efficiency (achieved share of the roofline) differs: a
/// depthwise convolution and a dense one do the same arithmetic per output but reach
/// very different rates, so prediction keeps one efficiency curve per class.
public enum OpClass: String, CaseIterable, Codable, Sendable {
    /// Dense or grouped convolution (Conv, FusedConv, ConvInteger, QLinearConv).
    case conv
    /// Convolution with one input channel per group.
    case depthwiseConv = "depthwise_conv"
    case convTranspose = "conv_transpose"
    /// Gemm, MatMul and their fused and integer forms; attention.
    case matmul
    /// Per-element arithmetic and activations (Add, Relu, Sigmoid, Cast, Where...).
    case elementwise
    /// BatchNormalization, LayerNormalization, InstanceNorm, Softmax and the like:
    /// reductions over one axis then an element-wise pass.
    case normalization
    /// MaxPool, AveragePool, their global forms.
    case pooling
    /// ReduceMean, ArgMax and other reductions.
    case reduce
    /// Copies and gathers: Transpose, Concat, Slice, Gather, Pad, Resize, Reshape, Split.
    case dataMovement = "data_movement"
    /// LSTM, GRU, RNN.
    case recurrent
    /// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, and element-wise ops on
    /// int8 values (QLinearAdd; a QDQ group around an Add, `OpClass.ofGroup`): their time
    /// is the conversions'.
    case quantization
    /// Control flow and whatever fits none of the above.
    case other

    /// The class of a kernel whose first (anchor) op is `opType`. `weightShape` and
    /// `inputChannels` (when known) tell a depthwise convolution from a dense one:
    /// weight `[M, C/group, ...]` with `C/group == 1` and more than one input channel.
    public static func classify(opType: String, weightShape: [Int]? = nil, inputChannels: Int? = nil) -> OpClass {
        let op = bare(opType)
        if convOps.contains(op) {
            if let w = weightShape, w.count >= 3, w[1] == 1, let c = inputChannels, c > 1 { return .depthwiseConv }
            return .conv
        }
        if op == "ConvTranspose" { return .convTranspose }
        if matmulOps.contains(op) { return .matmul }
        if normalizationOps.contains(op) { return .normalization }
        if poolingOps.contains(op) { return .pooling }
        if op.hasPrefix("Reduce") || ["ArgMax", "ArgMin", "TopK", "CumSum"].contains(op) { return .reduce }
        if dataMovementOps.contains(op) { return .dataMovement }
        if ["LSTM", "GRU", "RNN"].contains(op) { return .recurrent }
        if conversionOps.contains(op) || quantizedElementwiseOps.contains(op) { return .quantization }
        if ["If", "Loop", "Scan"].contains(op) { return .other }
        return .elementwise
    }

    /// The index of the op whose work a fused kernel's time follows: the first that is
    /// not a QuantizeLinear or DequantizeLinear, since a QDQ group (DequantizeLinear x3
    /// + Conv + QuantizeLinear) runs its main op on integers and the Q/DQ nodes only
    /// describe the scales; the first op when all are Q/DQ. Nil for no ops.
    public static func mainOpIndex(_ opTypes: [String]) -> Int? {
        guard !opTypes.isEmpty else { return nil }
        return opTypes.firstIndex { !conversionOps.contains(bare($0)) } ?? 0
    }

    /// The class of a fused kernel whose main op has class `anchorClass`: an element-wise
    /// op fused with QuantizeLinear or DequantizeLinear nodes (a QDQ group around an Add
    /// or a Mul) runs on int8 values and spends its time converting them, at a rate far
    /// from float element-wise ops'. On the accuracy script's profiles (b9feb8c, one
    /// thread, kernels of 100-400 KB) BERT int8's DequantizeLinear+Add+QuantizeLinear
    /// groups ran at 0.28 of the memory roof and MobileNetV3's float Muls at 1.76 from
    /// cache; one element-wise curve over both predicted the float ones 3x too slow.
    public static func ofGroup(anchorClass: OpClass, opTypes: [String]) -> OpClass {
        guard anchorClass == .elementwise, opTypes.contains(where: { classify(opType: $0) == .quantization }) else {
            return anchorClass
        }
        return .quantization
    }

    /// The op type without its domain prefix.
    static func bare(_ opType: String) -> String { opType.split(separator: ".").last.map(String.init) ?? opType }

    /// The class of a kernel from the anchor node's cost entry: its op type and input
    /// types (data first, weight second for convolutions).
    public static func classify(_ anchor: NodeCost) -> OpClass {
        func dims(_ index: Int) -> [Int]? {
            guard index < anchor.inputTypes.count, let type = anchor.inputTypes[index] else { return nil }
            return type.concreteDims
        }
        let weightIndex = anchor.opType == "QLinearConv" ? 3 : 1
        let channels = dims(0).flatMap { $0.count >= 2 ? $0[1] : nil }
        return classify(opType: anchor.opType, weightShape: dims(weightIndex), inputChannels: channels)
    }

    /// Conversions between float and int8 values.
    static let conversionOps: Set<String> = ["QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"]
    /// ONNX Runtime's element-wise ops on int8 values (com.microsoft).
    static let quantizedElementwiseOps: Set<String> = [
        "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QLinearWhere", "QGelu",
    ]
    static let convOps: Set<String> = ["Conv", "FusedConv", "NhwcConv", "NchwcConv", "ConvInteger", "QLinearConv", "NhwcFusedConv"]
    static let matmulOps: Set<String> = [
        "Gemm", "MatMul", "FusedGemm", "FusedMatMul", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul", "Attention", "MultiHeadAttention", "QGemm", "Einsum",
    ]
    static let normalizationOps: Set<String> = [
        "BatchNormalization", "LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
        "InstanceNormalization", "GroupNormalization", "LpNormalization", "MeanVarianceNormalization",
        "Softmax", "LogSoftmax", "Hardmax", "LRN", "EmbedLayerNormalization",
    ]
    static let poolingOps: Set<String> = [
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool", "MaxRoiPool",
        "QLinearAveragePool", "QLinearGlobalAveragePool", "NchwcMaxPool", "NchwcAveragePool",
    ]
    static let dataMovementOps: Set<String> = [
        "Transpose", "Concat", "Slice", "Gather", "GatherElements", "GatherND", "Pad", "Resize", "Upsample",
        "Reshape", "Split", "Squeeze", "Unsqueeze", "Flatten", "Expand", "Tile", "DepthToSpace", "SpaceToDepth",
        "ScatterND", "ScatterElements", "Identity", "Shape", "Size", "ConstantOfShape", "Range", "OneHot",
        "ReorderInput", "ReorderOutput", "Compress", "NonZero", "Trilu", "QLinearConcat",
    ]
}
