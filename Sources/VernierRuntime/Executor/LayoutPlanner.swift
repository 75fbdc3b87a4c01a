import VernierGraph

/// Decides which activations live in oneDNN's channel-blocked layout (`nChw8c` on AVX2,
/// `nChw16c` on AVX-512) instead of plain NCHW, so consecutive convolutions hand blocked
/// tensors to each other without a reorder at every edge.
///
/// Values are tied into groups that must share one layout: the input and output of an
/// element-wise op, of a pooling window, of a channel-broadcast Mul/Add, of an inference
/// BatchNormalization, the inputs and output of a channel Concat, a fused residual addend
/// and its Conv's output. A group is blocked when every value in it is a 4-D activation
/// whose channel count fills whole blocks or pads the last one by at most half, none is
/// read by an op without a blocked kernel (Softmax, Reshape, ...), none is a graph input,
/// output or constant, and the group touches a Conv (otherwise there is nothing to gain).
/// Global pools read either layout and write plain.
struct LayoutPlanner {
    let graph: Graph
    let facts: [String: ValueFacts]
    let constants: Set<String>
    let block: Int

    /// Float element-wise ops of one tensor input (other inputs are scalars, e.g. Clip's
    /// bounds): the output has the input's layout.
    static let unaryOps: Set<String> = [
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu",
        "Softplus", "Softsign", "Neg", "Abs", "Exp", "Sqrt", "Mish", "Gelu", "Erf", "Reciprocal", "ThresholdedRelu",
    ]
    /// Binary ops whose operands either have the output's shape or are per-channel vectors.
    static let binaryOps: Set<String> = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"]
    /// ONNX Runtime's `com.microsoft` QLinearAdd / QLinearMul (`fuseQDQBinary` makes them).
    static let quantizedBinaryOps: Set<String> = ["QLinearAdd", "QLinearMul"]
    /// ONNX Runtime's `com.microsoft` QLinearSigmoid (`fuseQDQUnary` makes it).
    static let quantizedUnaryOps: Set<String> = ["QLinearSigmoid"]
    static let windowPools: Set<String> = ["MaxPool", "AveragePool"]
    static let globalPools: Set<String> = ["GlobalAveragePool", "GlobalMaxPool"]

    /// The blocked values.
    func blockedValues() -> Set<String> {
        var groups = groupedValues { node, inputs, outputs, groups in
            let op = node.opType
            if op == "Conv", let x = node.input(0), let y = node.outputs.first, rank(x) == 4 {
                groups.touchesConv.formUnion([x, y])
                // A fused residual addend shares the output's layout.
                let hasSum = node.hasFusedSum
                if hasSum, let addend = node.inputs.last { groups.tie(addend, y) }
                // Weights and bias (constants, or plain tensors computed at run time).
                let parameters = node.inputs.dropFirst().dropLast(hasSum ? 1 : 0)
                groups.plainOnly.formUnion(parameters.filter { !$0.isEmpty })
            } else if Self.unaryOps.contains(op), let x = node.input(0), let y = outputs.first, outputs.count == 1,
                      !(op == "Reciprocal" && padsChannels(y)) {
                groups.tie(x, y)
                groups.plainOnly.formUnion(node.inputs.dropFirst().filter { !$0.isEmpty })
            } else if Self.binaryOps.contains(op), let y = outputs.first, outputs.count == 1,
                      let outShape = shape(y), outShape.count == 4, inputs.count >= 2,
                      !(op == "Div" && padsChannels(y) && inputs.allSatisfy({ shape($0) == outShape })) {
                var tied = false
                for x in inputs {
                    if shape(x) == outShape { groups.tie(x, y); tied = true; continue }
                    // A per-channel vector is read plain by the blocked broadcast kernel;
                    // any other broadcast operand keeps the output plain too.
                    groups.plainOnly.insert(x)
                    let perChannel = isChannelVector(x, of: outShape) && ["Add", "Sub", "Mul", "Div"].contains(op) && inputs.count == 2
                    if !perChannel { groups.plainOnly.insert(y) }
                }
                if !tied { groups.plainOnly.insert(y) }
            } else if Self.windowPools.contains(op), let x = node.input(0), let y = node.outputs.first,
                      node.outputs.count == 1 || node.outputs.dropFirst().allSatisfy(\.isEmpty),
                      rank(x) == 4, (try? node.int("storage_order", default: 0)) ?? 0 == 0 {
                groups.tie(x, y)
            } else if op == "BatchNormalization", let x = node.input(0), let y = node.outputs.first, rank(x) == 4,
                      node.outputs.dropFirst().allSatisfy(\.isEmpty), (try? node.int("training_mode", default: 0)) ?? 1 == 0 {
                groups.tie(x, y)
                groups.plainOnly.formUnion(node.inputs.dropFirst().filter { !$0.isEmpty })
            } else if ["Resize", "Upsample"].contains(op), let x = node.input(0), let y = node.outputs.first,
                      let xs = shape(x), let ys = shape(y), xs.count == 4, ys.count == 4, xs[0] == ys[0], xs[1] == ys[1],
                      (try? node.string("mode", default: "nearest")) == "nearest" {
                // Nearest-neighbour over H and W copies whole channel blocks.
                groups.tie(x, y)
                groups.plainOnly.formUnion(node.inputs.dropFirst().filter { !$0.isEmpty })
            } else if Self.globalPools.contains(op), let y = node.outputs.first {
                groups.plainOnly.insert(y)
            } else if op == "Concat", let y = outputs.first, rank(y) == 4,
                      let axis = try? node.int("axis"), axis == 1 || axis == -3, !inputs.contains(where: padsChannels) {
                for x in inputs { groups.tie(x, y) }
            } else {
                groups.plainOnly.formUnion(inputs)
                groups.plainOnly.formUnion(outputs)
            }
        }
        return groups.members(qualifying: qualifies)
    }

    /// The activations kept channels-last (NHWC) between int8 convolutions.
    ///
    /// oneDNN's int8 convolutions run channels-last; a plain tensor between two of them
    /// costs a reorder on each side, which took as long as the convolutions themselves in
    /// MobileNetV2's 8-bit blocks. Groups are tied as for the blocked layout, by the
    /// ops that are indifferent to the order of elements: element-wise ops on operands
    /// of the output's shape (QLinearAdd / QLinearMul too), and QuantizeLinear /
    /// DequantizeLinear with one scale for the tensor. A QLinearAdd / QLinearMul of a map
    /// and a per-channel vector (a squeeze-and-excitation scale) ties the map and its
    /// output, and a float global pool reads a channels-last map (its 1x1 result is the
    /// same memory in either layout): EfficientNet-B0 int8 otherwise kept every map of
    /// its blocks plain and reordered 4.8 MB per run in 34 convolutions. A group is
    /// channels-last when it touches a QLinearConv (whose weights are int8 constants) and
    /// every value in it is a 4-D activation of known shape that no other op reads and
    /// that is not a graph input, output or constant.
    func channelsLastValues() -> Set<String> {
        var groups = groupedValues { node, inputs, outputs, groups in
            let op = node.opType
            let perTensor = { (i: Int) in node.input(i).flatMap { self.shape($0)?.reduce(1, *) } == 1 }
            guard outputs.count == 1, let y = outputs.first else {
                groups.plainOnly.formUnion(inputs)
                groups.plainOnly.formUnion(outputs)
                return
            }
            if op == "QLinearConv", let x = node.input(0), rank(x) == 4, node.inputs.count > 3,
               constants.contains(node.inputs[3]), facts[node.inputs[3]]?.type?.elementType == .int8 {
                groups.touchesConv.formUnion([x, y])
                // A fused residual addend (fp32 output) shares the output's layout.
                let hasSum = node.hasFusedSum
                if hasSum, let addend = node.inputs.last { groups.tie(addend, y) }
                groups.plainOnly.formUnion(node.inputs.dropFirst().dropLast(hasSum ? 1 : 0).filter { !$0.isEmpty })
            } else if op == "QuantizeLinear" || op == "DequantizeLinear", let x = node.input(0),
                      perTensor(1), !node.hasAttribute("block_size") {
                groups.tie(x, y)
                groups.plainOnly.formUnion(inputs.dropFirst())
            } else if Self.unaryOps.contains(op), let x = node.input(0) {
                groups.tie(x, y)
                groups.plainOnly.formUnion(inputs.dropFirst())
            } else if Self.binaryOps.contains(op), let outShape = shape(y), inputs.allSatisfy({ shape($0) == outShape }) {
                for x in inputs { groups.tie(x, y) }
            } else if Self.quantizedBinaryOps.contains(op), node.domain == "com.microsoft", node.inputs.count > 6,
                      let outShape = shape(y), outShape.count == 4,
                      [node.inputs[0], node.inputs[3]].allSatisfy({ shape($0) == outShape || isChannelVector($0, of: outShape) }),
                      shape(node.inputs[0]) == outShape || shape(node.inputs[3]) == outShape {
                // A per-channel vector [N, C, 1, 1] is one value per channel in either layout.
                for x in [node.inputs[0], node.inputs[3]] {
                    if shape(x) == outShape { groups.tie(x, y) } else { groups.plainOnly.insert(x) }
                }
                groups.plainOnly.formUnion([1, 2, 4, 5, 6, 7].compactMap { node.input($0) })
            } else if Self.globalPools.contains(op), let x = node.input(0), facts[x]?.type?.elementType == .float {
                groups.plainOnly.insert(y)
            } else if Self.quantizedUnaryOps.contains(op), node.domain == "com.microsoft", let x = node.input(0) {
                groups.tie(x, y)
                groups.plainOnly.formUnion(inputs.dropFirst())
            } else {
                groups.plainOnly.formUnion(inputs)
                groups.plainOnly.formUnion(outputs)
            }
        }
        return groups.members { shape($0).map { $0.count == 4 && $0.allSatisfy { $0 > 0 } } ?? false }
    }

    /// Walks the graph: graph inputs, outputs, constants and values read by subgraphs
    /// are plain; a node outside the default domain (but QLinearAdd / QLinearMul /
    /// QLinearSigmoid) or
    /// with subgraphs keeps its values plain; every other node is handed to `visit` (with its non-empty inputs and
    /// outputs) to tie values and mark them.
    private func groupedValues(_ visit: (Node, [String], [String], inout LayoutGroups) -> Void) -> LayoutGroups {
        var groups = LayoutGroups(plainOnly: Set(graph.outputs.map(\.name)).union(graph.runtimeInputs.map(\.name)).union(constants))
        for node in graph.nodes {
            let inputs = node.inputs.filter { !$0.isEmpty }
            let outputs = node.outputs.filter { !$0.isEmpty }
            groups.values.formUnion(inputs)
            groups.values.formUnion(outputs)
            for (_, sub) in node.subgraphs { groups.plainOnly.formUnion(GraphValidator.outerReads(of: sub)) }
            let custom = node.domain == "com.microsoft"
                && (Self.quantizedBinaryOps.contains(node.opType) || Self.quantizedUnaryOps.contains(node.opType))
            guard node.isDefaultDomain || custom, node.subgraphs.isEmpty else {
                groups.plainOnly.formUnion(inputs)
                groups.plainOnly.formUnion(outputs)
                continue
            }
            visit(node, inputs, outputs, &groups)
        }
        return groups
    }

    func shape(_ v: String) -> [Int]? { facts[v]?.type?.concreteDims }

    func rank(_ v: String) -> Int? { facts[v]?.type?.shape?.count }

    /// A 4-D fp32 activation whose channels fill their blocks (`TensorLayout.blockFits`).
    func qualifies(_ v: String) -> Bool {
        guard facts[v]?.type?.elementType == .float, let s = shape(v), s.count == 4, s.allSatisfy({ $0 > 0 }),
              TensorLayout.blockFits(channels: s[1], block: block) else { return false }
        return true
    }

    /// Whether `v`, blocked, would carry padding channels (and so must not meet an op
    /// that turns a zero into a NaN or an infinity, or a Concat that would leave gaps).
    func padsChannels(_ v: String) -> Bool {
        shape(v).map { TensorLayout.channelBlocked(block).pads($0) } ?? false
    }

    /// Per-channel shapes that broadcast against `[N, C, H, W]`: [N or 1, C, 1, 1], [C, 1, 1].
    func isChannelVector(_ v: String, of full: [Int]) -> Bool {
        guard let s = shape(v) else { return false }
        return (s.count == 4 && (s[0] == full[0] || s[0] == 1) && s[1] == full[1] && s[2] == 1 && s[3] == 1)
            || s == [full[1], 1, 1]
    }
}

/// Values tied into groups that must share one layout (union-find), the values that must
/// stay plain, and those a convolution reads or writes.
private struct LayoutGroups {
    private var parent: [String: String] = [:]
    var plainOnly: Set<String>
    var touchesConv = Set<String>()
    var values = Set<String>()

    init(plainOnly: Set<String>) { self.plainOnly = plainOnly }

    mutating func find(_ v: String) -> String {
        var root = v
        while let p = parent[root], p != root { root = p }
        var walk = v
        while let p = parent[walk], p != root { parent[walk] = root; walk = p }
        return root
    }

    mutating func tie(_ a: String, _ b: String) {
        let (ra, rb) = (find(a), find(b))
        if ra != rb { parent[ra] = rb }
    }

    /// The values of the groups that touch a convolution and whose every member
    /// qualifies and need not stay plain.
    mutating func members(qualifying qualifies: (String) -> Bool) -> Set<String> {
        var roots: [String: String] = [:]
        var groupOK: [String: Bool] = [:]
        var groupHasConv: [String: Bool] = [:]
        for v in values {
            let root = find(v)
            roots[v] = root
            groupOK[root] = (groupOK[root] ?? true) && !plainOnly.contains(v) && qualifies(v)
            if touchesConv.contains(v) { groupHasConv[root] = true }
        }
        return Set(values.filter { v in roots[v].map { groupOK[$0] == true && groupHasConv[$0] == true } ?? false })
    }
}
