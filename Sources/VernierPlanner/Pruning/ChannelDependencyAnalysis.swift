import VernierGraph

/// Finds the channel groups of a model (the DepGraph idea on the ONNX graph): which
/// channels must be removed together, which stored tensors they slice, and which groups
/// cannot be pruned and why.
///
/// Channels are followed through the top-level graph in node order. A Conv, Gemm or
/// MatMul with a stored weight starts a group for its output channels; ops that keep
/// channels (BatchNormalization, activations, pooling, depthwise Conv, Transpose, ...)
/// pass the layout on; element-wise ops with two channel inputs (a residual Add) merge
/// their groups; Concat lays its inputs' groups side by side; Flatten and Reshape
/// into a Gemm/MatMul spread each channel over its H*W features. Whatever the rules do
/// not follow blocks the groups that reach it, with a reason naming the node.
public enum ChannelDependencyAnalysis {
    public static func analyze(_ analyzed: AnalyzedModel) -> ChannelDependencies {
        var builder = DependencyBuilder(graph: analyzed.model.graph, inferred: analyzed.inferred)
        for index in analyzed.model.graph.nodes.indices { builder.visit(index) }
        builder.finish()
        return builder.result
    }
}

/// Stored constants of a graph: initializers, Constant nodes' `value`, and Identity
/// nodes that forward one of them (exporters share identical tensors that way).
struct StoredConstants {
    /// A node input slot.
    struct Use: Hashable {
        var node: Int
        var input: Int
    }

    var tensors: [String: TensorData] = [:]
    /// The initializer or Constant output a name stands for (itself, or an Identity's source).
    var root: [String: String] = [:]
    /// Constant node index by output name, for rewriting.
    var constantNodes: [String: Int] = [:]
    /// Every node input that reads a root, directly or through an Identity.
    var uses: [String: [Use]] = [:]
    /// Roots also read where no slot can be rewritten (inside a subgraph, as a graph output).
    var pinned: Set<String> = []

    init(_ graph: Graph) {
        for t in graph.initializers {
            tensors[t.name] = t
            root[t.name] = t.name
        }
        var identities = Set<Int>()
        for (i, node) in graph.nodes.enumerated() where node.isDefaultDomain {
            guard let out = node.outputs.first else { continue }
            if node.opType == "Constant", case .tensor(let t)? = node.attribute("value") {
                var named = t
                named.name = out
                tensors[out] = named
                root[out] = out
                constantNodes[out] = i
            } else if node.opType == "Identity", let source = node.input(0), let r = root[source], let t = tensors[source] {
                var named = t
                named.name = out
                tensors[out] = named
                root[out] = r
                identities.insert(i)
            }
        }
        for (i, node) in graph.nodes.enumerated() where !identities.contains(i) {
            for (slot, input) in node.inputs.enumerated() {
                if let r = root[input] { uses[r, default: []].append(Use(node: i, input: slot)) }
            }
            for (_, sub) in node.subgraphs {
                for name in GraphValidator.outerReads(of: sub) { if let r = root[name] { pinned.insert(r) } }
            }
        }
        for output in graph.outputs { if let r = root[output.name] { pinned.insert(r) } }
    }

    subscript(name: String) -> TensorData? { tensors[name] }
}

private struct DependencyBuilder {
    let graph: Graph
    let inferred: InferredGraph
    let constants: StoredConstants
    /// Values read inside a subgraph, with the owning node's name.
    let subgraphReads: [String: String]
    /// The node that computes each value.
    let producers: [String: Int]

    /// The node being visited.
    var currentNode = 0
    var parent: [Int] = []
    var groups: [ChannelGroup] = []
    var layouts: [String: ChannelLayout] = [:]
    var shapeRewrites: [ShapeConstantRewrite] = []
    var groupAttributeRewrites: [GroupAttributeRewrite] = []

    init(graph: Graph, inferred: InferredGraph) {
        self.graph = graph
        self.inferred = inferred
        constants = StoredConstants(graph)
        var reads: [String: String] = [:]
        for node in graph.nodes {
            for (_, sub) in node.subgraphs {
                for name in GraphValidator.outerReads(of: sub) { reads[name] = node.displayName }
            }
        }
        subgraphReads = reads
        var made: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for o in node.outputs where !o.isEmpty { made[o] = i } }
        producers = made
    }

    // MARK: groups (union-find)

    mutating func newGroup(channels: Int, producer: String?, blocker: String? = nil) -> Int {
        let id = groups.count
        groups.append(ChannelGroup(name: producer ?? "(fixed \(id))", channels: channels,
                                   producers: producer.map { [$0] } ?? [], nodes: producer.map { [$0] } ?? [],
                                   slices: [], blockers: blocker.map { [$0] } ?? []))
        parent.append(id)
        return id
    }

    mutating func find(_ g: Int) -> Int {
        var root = g
        while parent[root] != root { root = parent[root] }
        var x = g
        while parent[x] != root { let next = parent[x]; parent[x] = root; x = next }
        return root
    }

    /// Merges two groups; the one created first stays the root, so names follow graph order.
    mutating func union(_ a: Int, _ b: Int) {
        var ra = find(a), rb = find(b)
        if ra == rb { return }
        if rb < ra { swap(&ra, &rb) }
        parent[rb] = ra
        let other = groups[rb]
        groups[ra].producers += other.producers
        for n in other.nodes where !groups[ra].nodes.contains(n) { groups[ra].nodes.append(n) }
        groups[ra].slices += other.slices
        groups[ra].blockers += other.blockers
        if groups[ra].producers.isEmpty == false, groups[ra].name.hasPrefix("(fixed"), let first = groups[ra].producers.first {
            groups[ra].name = first
        }
    }

    mutating func block(_ layout: ChannelLayout?, _ reason: String) {
        guard let layout else { return }
        for s in layout.segments {
            let r = find(s.group)
            if !groups[r].blockers.contains(reason) { groups[r].blockers.append(reason) }
        }
    }

    mutating func touch(_ layout: ChannelLayout?, _ node: Node) {
        guard let layout else { return }
        for s in layout.segments {
            let r = find(s.group)
            if !groups[r].nodes.contains(node.displayName) { groups[r].nodes.append(node.displayName) }
        }
    }

    /// Records that `tensor` is sliced along `axis` by every segment of `layout`; blocks
    /// the groups when the tensor is not stored, does not fit, or is shared.
    mutating func slice(_ tensor: String, axis: Int, by layout: ChannelLayout, scores: Bool, node: Node) {
        guard let t = constants[tensor] else {
            block(layout, "node '\(node.displayName)' (\(node.opType)) reads '\(tensor)', which is computed, not a stored tensor")
            return
        }
        guard axis < t.dims.count, t.dims[axis] == layout.length else {
            block(layout, "node '\(node.displayName)' (\(node.opType)): '\(tensor)' has shape \(t.dims), not \(layout.length) along axis \(axis)")
            return
        }
        guard t.elementType.bitWidth.map({ $0 >= 8 && $0 % 8 == 0 }) == true else {
            block(layout, "node '\(node.displayName)' (\(node.opType)): '\(tensor)' is \(t.elementType), which cannot be sliced")
            return
        }
        guard let slot = node.inputs.firstIndex(of: tensor) else { return }
        var offset = 0
        for s in layout.segments {
            let r = find(s.group)
            groups[r].slices.append(CoupledSlice(tensor: tensor, node: currentNode, input: slot, axis: axis, offset: offset, span: s.span, scoresImportance: scores))
            offset += s.count * s.span
        }
    }

    // MARK: shapes

    func type(_ name: String) -> TensorType? {
        if let t = inferred.type(of: name) { return t }
        return constants[name]?.type
    }

    func rank(_ name: String) -> Int? { type(name)?.rank }

    func layout(_ name: String?) -> ChannelLayout? {
        guard let name, !name.isEmpty else { return nil }
        return layouts[name]
    }

    func knownInts(_ name: String?) -> [Int]? {
        guard let name, !name.isEmpty else { return nil }
        if let c = inferred.facts[name]?.constant?.knownInts { return c }
        return constants[name]?.integerValues()
    }

    /// `axis` in 0..<rank (negative counts from the end), nil when out of range.
    func normalized(_ axis: Int, rank: Int) -> Int? {
        let a = axis < 0 ? axis + rank : axis
        return (0..<rank).contains(a) ? a : nil
    }

    // MARK: nodes

    mutating func visit(_ index: Int) {
        let node = graph.nodes[index]
        currentNode = index
        let tracked = node.inputs.enumerated().compactMap { i, name in layout(name).map { (i, $0) } }
        let isProducer = ["Conv", "ConvTranspose", "Gemm", "MatMul"].contains(node.opType) && node.isDefaultDomain
        if tracked.isEmpty && !isProducer { return }
        for (_, l) in tracked { touch(l, node) }
        guard node.isDefaultDomain, node.subgraphs.isEmpty else {
            blockAll(tracked, node, "is not followed by the channel analysis")
            return
        }
        switch node.opType {
        case "Conv": conv(node, index: index)
        case "ConvTranspose": convTranspose(node)
        case "Gemm": gemm(node)
        case "MatMul": matMul(node)
        case "BatchNormalization", "InstanceNormalization": batchNorm(node, tracked)
        case "LayerNormalization": layerNorm(node, tracked)
        case _ where Self.passThrough.contains(node.opType): passFirstInput(node, tracked)
        case _ where Self.channelFirstPools.contains(node.opType): pool(node, tracked)
        case _ where Self.broadcasting.contains(node.opType): broadcast(node, tracked)
        case "Concat": concat(node, tracked)
        case "Flatten": flatten(node, tracked)
        case "Reshape": reshape(node, tracked)
        case "Transpose": transpose(node, tracked)
        case "Squeeze", "Unsqueeze": squeeze(node, tracked)
        case _ where node.opType.hasPrefix("Reduce") || node.opType == "ArgMax" || node.opType == "ArgMin": reduce(node, tracked)
        case "Pad": pad(node, tracked)
        case "Slice": slice(node, tracked)
        case "Split": split(node, tracked)
        case "Resize", "Upsample": resize(node, tracked)
        case "Shape", "Size": return   // read the shape only; computed at run time
        default: blockAll(tracked, node, "is not followed by the channel analysis")
        }
    }

    mutating func blockAll(_ tracked: [(Int, ChannelLayout)], _ node: Node, _ why: String) {
        for (_, l) in tracked { block(l, "node '\(node.displayName)' (\(node.qualifiedOpType)) \(why)") }
    }

    /// Ops whose first output has the first input's shape and channel meaning.
    static let passThrough: Set<String> = [
        "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Elu", "Selu", "Celu",
        "Softplus", "Softsign", "Gelu", "Mish", "Erf", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal",
        "Sign", "Floor", "Ceil", "Round", "Identity", "Dropout", "Cast", "Not", "Sin", "Cos", "ThresholdedRelu",
        "Shrink", "Softmax", "LogSoftmax", "IsNaN", "IsInf",
    ]
    static let channelFirstPools: Set<String> = [
        "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
    ]
    static let broadcasting: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Where", "Equal", "Greater",
        "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Mod",
    ]

    mutating func output(_ node: Node, _ i: Int = 0, _ layout: ChannelLayout?) {
        guard i < node.outputs.count, !node.outputs[i].isEmpty, let layout else { return }
        layouts[node.outputs[i]] = layout
    }

    mutating func passFirstInput(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        for (i, l) in tracked where i != 0 { block(l, "node '\(node.displayName)' (\(node.opType)) uses it as input \(i)") }
        guard let l = tracked.first(where: { $0.0 == 0 })?.1 else { return }
        // Dropout's mask has the data's shape too.
        for o in node.outputs.indices where o == 0 || node.opType == "Dropout" { output(node, o, l) }
    }

    mutating func pool(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let l = tracked.first(where: { $0.0 == 0 })?.1, l.axis == 1 else {
            return blockAll(tracked, node, "pools a tensor whose channels are not on axis 1")
        }
        output(node, 0, l)
    }

    // MARK: producers

    /// A fresh group for a producer's output channels, with its weight (and bias) slices.
    mutating func produce(_ node: Node, channels: Int, slices: [(tensor: String, axis: Int, scores: Bool)],
                          outputAxis: Int, blocker: String? = nil) {
        let g = newGroup(channels: channels, producer: node.displayName, blocker: blocker)
        let l = ChannelLayout(axis: outputAxis, segments: [.init(group: g, count: channels, span: 1)])
        for s in slices { slice(s.tensor, axis: s.axis, by: l, scores: s.scores, node: node) }
        output(node, 0, l)
    }

    mutating func conv(_ node: Node, index: Int) {
        let x = layout(node.input(0))
        guard let wName = node.input(1), let w = constants[wName], w.dims.count >= 3 else {
            block(x, "node '\(node.displayName)' (Conv): its weight is computed, not a stored tensor")
            if let channels = type(node.outputs[0])?.shape?[safe: 1]?.intValue {
                produce(node, channels: channels, slices: [], outputAxis: 1,
                        blocker: "node '\(node.displayName)' (Conv): its weight is computed, not a stored tensor")
            }
            return
        }
        let groupCount = (try? node.int("group", default: 1)) ?? 1
        let inChannels = w.dims[1] * groupCount
        let outChannels = w.dims[0]
        let bias = node.input(2)
        if groupCount == 1 {
            if let x {
                if x.axis == 1 && x.segments.allSatisfy({ $0.span == 1 }) {
                    slice(wName, axis: 1, by: x, scores: true, node: node)
                } else {
                    block(x, "node '\(node.displayName)' (Conv) reads channels that are not on axis 1")
                }
            }
            var slices: [(String, Int, Bool)] = [(wName, 0, true)]
            if let bias { slices.append((bias, 0, false)) }
            produce(node, channels: outChannels, slices: slices, outputAxis: 1)
        } else if groupCount == inChannels && w.dims[1] == 1 && outChannels == inChannels {
            // Depthwise: channel c in gives channel c out, so the group passes through.
            guard let x else { return }
            guard x.axis == 1 && x.segments.allSatisfy({ $0.span == 1 }) else {
                return block(x, "node '\(node.displayName)' (Conv) reads channels that are not on axis 1")
            }
            slice(wName, axis: 0, by: x, scores: true, node: node)
            if let bias { slice(bias, axis: 0, by: x, scores: false, node: node) }
            groupAttributeRewrites.append(GroupAttributeRewrite(node: index, layout: x))
            output(node, 0, x)
        } else {
            let reason = "node '\(node.displayName)' (Conv) has group=\(groupCount) with \(inChannels) input channels "
                + "(only group 1 and depthwise convolutions are followed)"
            block(x, reason)
            produce(node, channels: outChannels, slices: [], outputAxis: 1, blocker: reason)
        }
    }

    mutating func convTranspose(_ node: Node) {
        let x = layout(node.input(0))
        let groupCount = (try? node.int("group", default: 1)) ?? 1
        guard let wName = node.input(1), let w = constants[wName], w.dims.count >= 3, groupCount == 1 else {
            let reason = "node '\(node.displayName)' (ConvTranspose) has a computed weight or group ≠ 1"
            block(x, reason)
            if let channels = type(node.outputs[0])?.shape?[safe: 1]?.intValue {
                produce(node, channels: channels, slices: [], outputAxis: 1, blocker: reason)
            }
            return
        }
        if let x {
            if x.axis == 1 && x.segments.allSatisfy({ $0.span == 1 }) {
                slice(wName, axis: 0, by: x, scores: true, node: node)
            } else {
                block(x, "node '\(node.displayName)' (ConvTranspose) reads channels that are not on axis 1")
            }
        }
        var slices: [(String, Int, Bool)] = [(wName, 1, true)]
        if let bias = node.input(2) { slices.append((bias, 0, false)) }
        produce(node, channels: w.dims[1], slices: slices, outputAxis: 1)
    }

    mutating func gemm(_ node: Node) {
        let a = layout(node.input(0))
        let transA = ((try? node.int("transA", default: 0)) ?? 0) != 0
        let transB = ((try? node.int("transB", default: 0)) ?? 0) != 0
        block(layout(node.input(1)), "node '\(node.displayName)' (Gemm) multiplies two computed tensors")
        block(layout(node.input(2)), "node '\(node.displayName)' (Gemm) adds a computed bias")
        guard let bName = node.input(1), let b = constants[bName], b.dims.count == 2 else {
            block(a, "node '\(node.displayName)' (Gemm): its weight is computed, not a stored tensor")
            return
        }
        if let a {
            if a.axis == (transA ? 0 : 1) {
                slice(bName, axis: transB ? 1 : 0, by: a, scores: true, node: node)
            } else {
                block(a, "node '\(node.displayName)' (Gemm) reads channels along its rows")
            }
        }
        let n = transB ? b.dims[0] : b.dims[1]
        var slices: [(String, Int, Bool)] = [(bName, transB ? 0 : 1, true)]
        var blocker: String?
        if let c = node.input(2) {
            if let ct = constants[c] {
                if ct.dims.last == n && n > 1 { slices.append((c, ct.dims.count - 1, false)) }
            } else {
                blocker = "node '\(node.displayName)' (Gemm): its bias '\(c)' is computed, not a stored tensor"
            }
        }
        produce(node, channels: n, slices: slices, outputAxis: 1, blocker: blocker)
    }

    mutating func matMul(_ node: Node) {
        let a = layout(node.input(0))
        guard let bName = node.input(1), let b = constants[bName], b.dims.count == 2,
              let outRank = rank(node.outputs[0]), let aRank = rank(node.inputs[0]) else {
            return batchedMatMul(node)
        }
        if let a {
            if a.axis == aRank - 1 {
                slice(bName, axis: 0, by: a, scores: true, node: node)
            } else {
                block(a, "node '\(node.displayName)' (MatMul) reads channels along a row axis")
            }
        }
        produce(node, channels: b.dims[1], slices: [(bName, 1, true)], outputAxis: outRank - 1)
    }

    /// A MatMul of two computed tensors (attention's Q·Kᵀ and P·V): groups on a batch
    /// axis (the heads) pass through and join; channels in the multiplied dims block.
    mutating func batchedMatMul(_ node: Node) {
        let tracked = [0, 1].compactMap { i in layout(node.input(i)).map { (i, $0) } }
        guard !tracked.isEmpty else { return }
        guard let outRank = rank(node.outputs[0]) else { return blockAll(tracked, node, "has an output of unknown rank") }
        var reference: ChannelLayout?
        for (i, l) in tracked {
            guard let r = rank(node.inputs[i]), r >= 3, l.axis < r - 2 else {
                return blockAll(tracked, node, "multiplies two computed tensors along their channels")
            }
            let moved = l.movedTo(axis: l.axis + outRank - r)
            if let ref = reference {
                guard ref.axis == moved.axis, ref.hasSameStructure(as: moved) else {
                    return blockAll(tracked, node, "multiplies tensors whose channels do not line up")
                }
                for (p, q) in zip(ref.segments, moved.segments) { union(p.group, q.group) }
            } else {
                reference = moved
            }
        }
        guard let reference else { return }
        for i in [0, 1] where !tracked.contains(where: { $0.0 == i }) {
            guard let name = node.input(i), let shape = type(name)?.shape else { return blockAll(tracked, node, "has an input of unknown shape") }
            let axis = reference.axis - (outRank - shape.count)
            if axis >= 0 && shape[axis] != .value(1) {
                return blockAll(tracked, node, "multiplies the channels with '\(name)', which no group produces")
            }
        }
        output(node, 0, reference)
    }

    // MARK: channel-keeping ops

    mutating func batchNorm(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1, x.axis == 1 else {
            return blockAll(tracked, node, "normalizes channels that are not on axis 1")
        }
        let count = node.opType == "BatchNormalization" ? 5 : 3
        for i in 1..<min(count, node.inputs.count) {
            guard let name = node.input(i) else { continue }
            slice(name, axis: 0, by: x, scores: i == 1, node: node)
        }
        if node.outputs.count > 1 && node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            block(x, "node '\(node.displayName)' (BatchNormalization) is in training mode")
        }
        output(node, 0, x)
    }

    mutating func layerNorm(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1,
              let r = rank(node.inputs[0]), let axis = normalized((try? node.int("axis", default: -1)) ?? -1, rank: r),
              axis == r - 1, x.axis == r - 1 else {
            return blockAll(tracked, node, "normalizes over more than the channel axis")
        }
        for i in 1..<min(3, node.inputs.count) {
            guard let name = node.input(i) else { continue }
            slice(name, axis: 0, by: x, scores: i == 1, node: node)
        }
        output(node, 0, x)
    }

    /// Element-wise ops with broadcasting: channel inputs merge their groups; a stored
    /// per-channel tensor (a PRelu slope, a layer scale) is sliced; size-1 dims broadcast.
    mutating func broadcast(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let outRank = rank(node.outputs[0]) else { return blockAll(tracked, node, "has an output of unknown rank") }
        var reference: ChannelLayout?
        for (i, l) in tracked {
            guard let r = rank(node.inputs[i]) else { return blockAll(tracked, node, "has an input of unknown rank") }
            let moved = l.movedTo(axis: l.axis + outRank - r)
            if let ref = reference {
                guard ref.axis == moved.axis, ref.hasSameStructure(as: moved) else {
                    return blockAll(tracked, node, "combines tensors whose channels do not line up")
                }
                for (p, q) in zip(ref.segments, moved.segments) { union(p.group, q.group) }
            } else {
                reference = moved
            }
        }
        guard let reference else { return }
        let trackedIndices = Set(tracked.map(\.0))
        for (i, name) in node.inputs.enumerated() where !name.isEmpty && !trackedIndices.contains(i) {
            if node.opType == "Where" && i == 0 && type(name)?.elementType == .bool && type(name)?.shape?.isEmpty == true { continue }
            guard let shape = type(name)?.shape else {
                return block(reference, "node '\(node.displayName)' (\(node.opType)) combines channels with '\(name)' of unknown shape")
            }
            let axis = reference.axis - (outRank - shape.count)
            if axis < 0 || shape[axis] == .value(1) { continue }
            if constants[name] != nil {
                slice(name, axis: axis, by: reference, scores: false, node: node)
            } else {
                block(reference, "node '\(node.displayName)' (\(node.opType)) combines the channels with '\(name)', which no group produces")
            }
        }
        for o in node.outputs.indices { output(node, o, reference) }
    }

    mutating func concat(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let outRank = rank(node.outputs[0]),
              let axis = normalized((try? node.int("axis")) ?? 0, rank: outRank) else {
            return blockAll(tracked, node, "has an unknown axis or rank")
        }
        guard tracked.allSatisfy({ $0.1.axis == axis }) else {
            // Concatenated along another axis: every input's channels line up.
            return broadcast(node, tracked)
        }
        var segments: [ChannelLayout.Segment] = []
        for (i, name) in node.inputs.enumerated() where !name.isEmpty {
            if let l = layouts[name] {
                segments += l.segments
            } else {
                guard let count = type(name)?.shape?[safe: axis]?.intValue else {
                    return blockAll(tracked, node, "concatenates '\(name)', whose size along the axis is unknown")
                }
                if count == 0 { continue }
                // Channels nothing produces (a graph input): fixed, and so are the groups they meet.
                let g = newGroup(channels: count, producer: nil,
                                 blocker: "node '\(node.displayName)' (Concat) input \(i) '\(name)' has channels no group produces")
                segments.append(.init(group: g, count: count, span: 1))
            }
        }
        output(node, 0, ChannelLayout(axis: axis, segments: segments))
    }

    // MARK: shape ops

    mutating func flatten(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, let shape = type(node.inputs[0])?.shape,
              let axis = normalized((try? node.int("axis", default: 1)) ?? 1, rank: shape.count + 1) else {
            return blockAll(tracked, node, "has an input of unknown shape")
        }
        let between = shape[axis..<x.axis].knownElementCount
        let trailing = shape[(x.axis + 1)...].knownElementCount
        guard x.axis >= axis, between == 1, let trailing else {
            return blockAll(tracked, node, "merges the channels with other dims in a way the analysis cannot follow")
        }
        output(node, 0, x.movedTo(axis: 1).repeated(by: trailing))
    }

    mutating func reshape(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1,
              let inShape = type(node.inputs[0])?.shape, let outShape = type(node.outputs[0])?.shape else {
            return blockAll(tracked, node, "has a shape the analysis cannot read")
        }
        let leading = Array(inShape[..<x.axis]).product
        let trailing = Array(inShape[(x.axis + 1)...]).product
        let length = Dim.value(x.length)
        var found: (axis: Int, layout: ChannelLayout)?
        for j in outShape.indices where Array(outShape[..<j]).product == leading {
            if outShape[j] == length && Array(outShape[(j + 1)...]).product == trailing {
                found = (j, x.movedTo(axis: j))
            } else if let t = trailing.intValue, outShape[j] == length * trailing, Array(outShape[(j + 1)...]).product == .value(1) {
                found = (j, x.movedTo(axis: j).repeated(by: t))
            }
            if found != nil { break }
        }
        if found == nil, x.segments.count == 1, x.segments[0].span == 1 {
            // Attention's head split: [..., H*D, ...] -> [..., H, D, ...]. The group's unit
            // becomes a head: D consecutive channels removed together.
            for j in outShape.indices.dropLast() where Array(outShape[..<j]).product == leading {
                guard let d = outShape[j + 1].intValue, d > 1, let h = outShape[j].intValue, h * d == x.length,
                      Array(outShape[(j + 2)...]).product == trailing else { continue }
                let g = find(x.segments[0].group)
                coarsen(g, by: d)
                found = (j, ChannelLayout(axis: j, segments: [.init(group: g, count: h, span: 1)]))
                break
            }
        }
        guard let (j, out) = found else {
            return blockAll(tracked, node, "splits or merges the channel axis in a way the analysis cannot follow")
        }
        // The target shape must adapt: -1 does; 0 copies the input's dim, right only where
        // the channels already were; a stored number is rewritten, also when a Concat of
        // constants and run-time dims computes the shape (as exporters of attention do).
        guard let shapeName = node.input(1), let element = targetElement(shapeName, j) else {
            return blockAll(tracked, node, "has a target shape the analysis cannot read")
        }
        switch element {
        case -1: break
        case 0 where j == x.axis && out.segments == x.segments: break
        default:
            guard let source = storedElement(shapeName, position: j, reader: currentNode, slot: 1) else {
                return blockAll(tracked, node, "has a computed target shape that fixes the channel count")
            }
            shapeRewrites.append(ShapeConstantRewrite(tensor: source.tensor, node: source.node, input: source.input,
                                                      position: source.position, layout: out))
        }
        output(node, 0, out)
    }

    /// Element `position` of a shape value, when known.
    func targetElement(_ name: String, _ position: Int) -> Int? {
        if let c = inferred.facts[name]?.constant, position < c.count { return c.dims[position].intValue }
        return constants[name]?.integerValues()?[safe: position]
    }

    /// The stored constant that spells element `position` of the shape value `name` (read
    /// by node `reader` at input `slot`): the value itself, or an input of the Concat
    /// that builds it.
    func storedElement(_ name: String, position: Int, reader: Int, slot: Int) -> (tensor: String, node: Int, input: Int, position: Int)? {
        if constants[name] != nil { return (name, reader, slot, position) }
        guard let p = producers[name], graph.nodes[p].opType == "Concat", graph.nodes[p].isDefaultDomain,
              ((try? graph.nodes[p].int("axis")) ?? -1) == 0 else { return nil }
        var start = 0
        for (i, input) in graph.nodes[p].inputs.enumerated() {
            guard let count = type(input)?.shape?.first?.intValue, type(input)?.rank == 1 else { return nil }
            if position < start + count { return storedElement(input, position: position - start, reader: p, slot: i) }
            start += count
        }
        return nil
    }

    /// Makes `g`'s unit `d` consecutive channels (an attention head): every slice and
    /// every layout that holds the group is rescaled.
    mutating func coarsen(_ g: Int, by d: Int) {
        let r = find(g)
        groups[r].channels /= d
        for i in groups[r].slices.indices { groups[r].slices[i].span *= d }
        func rescale(_ l: ChannelLayout, _ find: (Int) -> Int) -> ChannelLayout {
            var l = l
            for s in l.segments.indices where find(l.segments[s].group) == r {
                l.segments[s].count /= d
                l.segments[s].span *= d
            }
            return l
        }
        var roots: [Int: Int] = [:]
        for i in parent.indices { roots[i] = find(i) }
        let lookup = { (i: Int) in roots[i] ?? i }
        layouts = layouts.mapValues { rescale($0, lookup) }
        for i in shapeRewrites.indices { shapeRewrites[i].layout = rescale(shapeRewrites[i].layout, lookup) }
        for i in groupAttributeRewrites.indices { groupAttributeRewrites[i].layout = rescale(groupAttributeRewrites[i].layout, lookup) }
    }

    mutating func transpose(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, let r = rank(node.inputs[0]) else {
            return blockAll(tracked, node, "has an input of unknown rank")
        }
        let perm = ((try? node.ints("perm")) ?? nil) ?? Array((0..<r).reversed())
        guard let j = perm.firstIndex(of: x.axis) else { return blockAll(tracked, node, "has a bad perm") }
        output(node, 0, x.movedTo(axis: j))
    }

    mutating func squeeze(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, let inRank = rank(node.inputs[0]),
              let outRank = rank(node.outputs[0]) else {
            return blockAll(tracked, node, "has an input of unknown rank")
        }
        let given = ((try? node.ints("axes")) ?? nil) ?? knownInts(node.input(1))
        if node.opType == "Squeeze" {
            var axes: [Int]
            if let given {
                axes = given.compactMap { normalized($0, rank: inRank) }
            } else {
                axes = type(node.inputs[0])?.shape?.indices.filter { type(node.inputs[0])?.shape?[$0] == .value(1) } ?? []
            }
            guard !axes.contains(x.axis) else { return blockAll(tracked, node, "removes the channel axis") }
            output(node, 0, x.movedTo(axis: x.axis - axes.filter { $0 < x.axis }.count))
        } else {
            guard let given else { return blockAll(tracked, node, "has unknown axes") }
            let inserted = Set(given.compactMap { normalized($0, rank: outRank) })
            let kept = (0..<outRank).filter { !inserted.contains($0) }
            guard x.axis < kept.count else { return blockAll(tracked, node, "has bad axes") }
            output(node, 0, x.movedTo(axis: kept[x.axis]))
        }
    }

    mutating func reduce(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, let r = rank(node.inputs[0]) else {
            return blockAll(tracked, node, "has an input of unknown rank")
        }
        let keep = ((try? node.int("keepdims", default: 1)) ?? 1) != 0
        var axes: [Int]?
        if node.opType == "ArgMax" || node.opType == "ArgMin" {
            axes = [(try? node.int("axis", default: 0)) ?? 0]
        } else {
            axes = ((try? node.ints("axes")) ?? nil) ?? knownInts(node.input(1))
        }
        let normalizedAxes = (axes ?? []).compactMap { normalized($0, rank: r) }
        // Reducing over the channels (or everything) leaves no channel axis: nothing to follow.
        if normalizedAxes.isEmpty || normalizedAxes.contains(x.axis) { return }
        output(node, 0, x.movedTo(axis: keep ? x.axis : x.axis - normalizedAxes.filter { $0 < x.axis }.count))
    }

    mutating func pad(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1, let r = rank(node.inputs[0]),
              let pads = ((try? node.ints("pads")) ?? nil) ?? knownInts(node.input(1)) else {
            return blockAll(tracked, node, "has pads the analysis cannot read")
        }
        var channelPadded = false
        if let axes = knownInts(node.input(3)) {
            for (k, a) in axes.enumerated() where normalized(a, rank: r) == x.axis {
                channelPadded = pads[safe: k] != 0 || pads[safe: k + axes.count] != 0
            }
        } else if node.input(3) == nil {
            channelPadded = pads.count != 2 * r || pads[x.axis] != 0 || pads[x.axis + r] != 0
        } else {
            channelPadded = true
        }
        guard !channelPadded else { return blockAll(tracked, node, "pads the channel axis") }
        output(node, 0, x)
    }

    mutating func slice(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1, let r = rank(node.inputs[0]) else {
            return blockAll(tracked, node, "slices with computed bounds")
        }
        var axes: [Int]?
        if let a = (try? node.ints("axes")) ?? nil {
            axes = a
        } else if let starts = (try? node.ints("starts")) ?? nil {
            axes = Array(0..<starts.count)
        } else if node.input(3) != nil {
            axes = knownInts(node.input(3))
        } else if let starts = knownInts(node.input(1)) {
            axes = Array(0..<starts.count)
        }
        guard let axes else { return blockAll(tracked, node, "slices along axes the analysis cannot read") }
        guard !axes.compactMap({ normalized($0, rank: r) }).contains(x.axis) else {
            return blockAll(tracked, node, "slices the channel axis")
        }
        output(node, 0, x)
    }

    mutating func split(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1, let r = rank(node.inputs[0]),
              let axis = normalized((try? node.int("axis", default: 0)) ?? 0, rank: r) else {
            return blockAll(tracked, node, "has an input of unknown rank")
        }
        guard axis != x.axis else { return blockAll(tracked, node, "splits the channel axis") }
        for o in node.outputs.indices { output(node, o, x) }
    }

    mutating func resize(_ node: Node, _ tracked: [(Int, ChannelLayout)]) {
        guard let x = tracked.first(where: { $0.0 == 0 })?.1, tracked.count == 1,
              let inShape = type(node.inputs[0])?.shape, let outShape = type(node.outputs[0])?.shape,
              x.axis < outShape.count, inShape[x.axis] == outShape[x.axis] else {
            return blockAll(tracked, node, "may change the channel count")
        }
        // `sizes` spells the channel count, which would go stale.
        let sizesIndex = node.opType == "Resize" ? 3 : -1
        if sizesIndex > 0 && node.input(sizesIndex) != nil {
            return blockAll(tracked, node, "takes target sizes that spell the channel count")
        }
        output(node, 0, x)
    }

    // MARK: end

    mutating func finish() {
        for output in graph.outputs {
            block(layouts[output.name], "'\(output.name)' is a graph output, whose shape must not change")
        }
        for (value, owner) in subgraphReads {
            block(layouts[value], "'\(value)' is read inside a subgraph of node '\(owner)'")
        }
        // Resolve every layout's groups to their roots.
        for (name, l) in layouts {
            var resolved = l
            for i in resolved.segments.indices { resolved.segments[i].group = find(resolved.segments[i].group) }
            layouts[name] = resolved
        }
        for i in shapeRewrites.indices {
            for s in shapeRewrites[i].layout.segments.indices {
                shapeRewrites[i].layout.segments[s].group = find(shapeRewrites[i].layout.segments[s].group)
            }
        }
        for i in groupAttributeRewrites.indices {
            for s in groupAttributeRewrites[i].layout.segments.indices {
                groupAttributeRewrites[i].layout.segments[s].group = find(groupAttributeRewrites[i].layout.segments[s].group)
            }
        }
    }

    var result: ChannelDependencies {
        // Merged groups point at their root; keep the slots (layouts index them) but empty them.
        var all = groups
        for i in all.indices where parent[i] != i {
            all[i].producers = []
            all[i].slices = []
        }
        return ChannelDependencies(allGroups: all, layouts: layouts, shapeRewrites: shapeRewrites,
                                   groupAttributeRewrites: groupAttributeRewrites)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

extension ArraySlice where Element == Dim {
    var knownElementCount: Int? { Array(self).knownElementCount }
}
