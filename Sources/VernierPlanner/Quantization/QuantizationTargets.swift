import VernierGraph

/// A Conv, Gemm or MatMul whose weight can be quantized (or stored as float16).
public struct QuantizationTarget: Sendable, Equatable {
    /// Index of the node in the graph.
    public var node: Int
    public var nodeName: String
    public var opType: String
    /// The input slot holding the stored float weight.
    public var weightInput: Int
    public var weightName: String
    /// The weight's output-channel axis (Conv: 0; Gemm: 0 with transB, else 1; MatMul:
    /// the last); nil when the weight has no such axis (a rank-1 MatMul operand).
    public var weightAxis: Int?
    /// The float activation the op reads (its data input).
    public var activation: String
}

/// A Conv, Gemm or MatMul left as it is, and why.
public struct SkippedNode: Sendable, Equatable {
    public var nodeName: String
    public var opType: String
    public var reason: String
}

/// Which nodes of a model have weights to quantize.
public struct QuantizationTargets: Sendable {
    public var targets: [QuantizationTarget]
    public var skipped: [SkippedNode]
    /// Node counts by op type of every other node (they stay in float).
    public var otherOps: [String: Int]

    /// The distinct activations the targets read, in graph order.
    public var activations: [String] {
        var seen = Set<String>()
        return targets.map(\.activation).filter { seen.insert($0).inserted }
    }

    /// The Conv, Gemm and MatMul nodes of the top-level graph whose weight is a float32
    /// initializer and whose data input is a float32 activation. Subgraphs (If, Loop)
    /// are not searched.
    public static func find(in analyzed: AnalyzedModel) -> QuantizationTargets {
        let graph = analyzed.model.graph
        let stored = graph.initializerIndex
        var targets: [QuantizationTarget] = []
        var skipped: [SkippedNode] = []
        var others: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            guard node.isDefaultDomain, ["Conv", "Gemm", "MatMul"].contains(node.opType) else {
                others[node.qualifiedOpType, default: 0] += 1
                continue
            }
            func skip(_ reason: String) { skipped.append(SkippedNode(nodeName: node.displayName, opType: node.opType, reason: reason)) }
            guard let data = node.input(0), let weightName = node.input(1) else { skip("an input is missing"); continue }
            if stored[data] != nil {
                skip(stored[weightName] != nil ? "both operands are stored constants (folded at load time)"
                     : "the stored operand is the first (A) one; only a stored second operand is quantized")
                continue
            }
            guard let weight = stored[weightName] else {
                let producer = graph.nodes.first { $0.outputs.contains(weightName) }?.opType
                skip(producer == "DequantizeLinear" || producer == "Cast"
                     ? "already quantized or converted: its weight comes from \(producer ?? "")"
                     : "no stored weight: both operands are computed at run time (e.g. attention scores)")
                continue
            }
            guard weight.elementType == .float else { skip("the weight is \(weight.elementType), not float32"); continue }
            guard analyzed.inferred.type(of: data)?.elementType == .float else {
                skip("the data input is not a known float32 activation")
                continue
            }
            let axis: Int?
            switch node.opType {
            case "Conv":
                guard weight.dims.count >= 3 else { skip("the weight has rank \(weight.dims.count), not a convolution kernel"); continue }
                axis = 0
            case "Gemm":
                guard weight.dims.count == 2 else { skip("the weight has rank \(weight.dims.count), not 2"); continue }
                let transB = (try? node.int("transB", default: 0)) ?? 0
                axis = transB != 0 ? 0 : 1
            default:
                axis = weight.dims.count >= 2 ? weight.dims.count - 1 : nil
            }
            targets.append(QuantizationTarget(node: index, nodeName: node.displayName, opType: node.opType, weightInput: 1,
                                              weightName: weightName, weightAxis: axis, activation: data))
        }
        return QuantizationTargets(targets: targets, skipped: skipped, otherOps: others)
    }
}
