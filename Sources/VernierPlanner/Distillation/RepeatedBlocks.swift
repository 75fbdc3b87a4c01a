import VernierGraph

/// A residual block: the nodes between a value (`entry`) and the Add that adds it back,
/// plus the shape-preserving ops right after the Add (a ReLU, a post-norm LayerNorm).
/// Its output (`exit`) has the entry's type, so removing the block lets the entry flow on.
public struct ResidualBlock: Sendable, Equatable {
    public var entry: String
    public var exit: String
    /// The residual Add's node name; the block is called by it.
    public var addNode: String
    /// Node indices of the block, ascending.
    public var nodes: [Int]
    /// The op types of the block's nodes in order: blocks of one kind share it.
    public var signature: String
}

/// A block the depth reduction treats as one: a residual block, or a transformer layer
/// (consecutive residual blocks whose kinds repeat with that period, e.g. attention + MLP).
public struct DepthUnit: Sendable, Equatable {
    public var blocks: [ResidualBlock]
    public var entry: String { blocks.first?.entry ?? "" }
    public var exit: String { blocks.last?.exit ?? "" }
    /// The residual Adds' names joined with " + ".
    public var name: String { blocks.map(\.addNode).joined(separator: " + ") }
    public var nodes: [Int] { blocks.flatMap(\.nodes) }
}

/// A chain of units, each starting where the previous one ends (a ResNet stage after its
/// downsampling block, a transformer's encoder).
public struct BlockStage: Sendable, Equatable {
    public var units: [DepthUnit]
    /// Whether a block that changes the shape (a residual block with a projection
    /// shortcut) opens the stage; it stays, so every unit of the stage may go.
    public var opensWithTransition: Bool
}

/// Finds the residual blocks of a graph and groups them into stages of repeated units.
public enum RepeatedBlocks {
    /// Ops that may follow a residual Add inside its block: they keep the shape and read
    /// nothing but the block's value (and stored parameters).
    static let trailingOps: Set<String> = [
        "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Gelu", "Elu", "Selu",
        "LayerNormalization", "BatchNormalization", "Identity", "Dropout",
    ]

    /// The stages of `analyzed`'s top-level graph, in graph order.
    public static func stages(in analyzed: AnalyzedModel) -> [BlockStage] {
        let graph = analyzed.model.graph
        let index = GraphIndex(graph)
        var blocks: [ResidualBlock] = []
        for (i, node) in graph.nodes.enumerated() where node.isDefaultDomain && node.opType == "Add" && node.inputs.count == 2 {
            let a = node.inputs[0], b = node.inputs[1]
            guard !a.isEmpty, !b.isEmpty, a != b, !index.isConstant(a), !index.isConstant(b) else { continue }
            if let block = residualBlock(add: i, entry: a, branch: b, graph: graph, index: index, inferred: analyzed.inferred)
                ?? residualBlock(add: i, entry: b, branch: a, graph: graph, index: index, inferred: analyzed.inferred) {
                blocks.append(block)
            }
        }
        // A block nested inside another (a residual inside a residual) is not a unit of its own.
        let sets = blocks.map { Set($0.nodes) }
        blocks = blocks.enumerated().filter { i, _ in
            !sets.indices.contains { j in j != i && sets[i].isStrictSubset(of: sets[j]) }
        }.map(\.element)

        // Chains: each block starting where the previous one ends.
        var chains: [[ResidualBlock]] = []
        for block in blocks.sorted(by: { ($0.nodes.last ?? 0) < ($1.nodes.last ?? 0) }) {
            if let c = chains.indices.last(where: { chains[$0].last?.exit == block.entry }) {
                chains[c].append(block)
            } else {
                chains.append([block])
            }
        }
        return chains.map { chain in
            BlockStage(units: units(of: chain), opensWithTransition: opensWithTransition(chain[0].entry, graph: graph, index: index, blocks: blocks))
        }
    }

    /// Units of a chain: blocks grouped by the shortest period with which their kinds repeat.
    static func units(of chain: [ResidualBlock]) -> [DepthUnit] {
        let n = chain.count
        let period = (1...max(1, n)).first { p in
            n % p == 0 && (0..<(n - p)).allSatisfy { chain[$0].signature == chain[$0 + p].signature }
        } ?? 1
        // A chain with no repeating pattern is taken block by block.
        let step = period == n && n > 1 ? 1 : period
        return stride(from: 0, to: n, by: step).map { DepthUnit(blocks: Array(chain[$0..<min(n, $0 + step)])) }
    }

    /// Whether the value a chain starts from comes (through trailing ops) from an Add that
    /// is no block of its own, whose two sides are both computed by Conv/Gemm/MatMul layers
    /// from a common value: a block with a projection shortcut that opens the stage.
    static func opensWithTransition(_ entry: String, graph: Graph, index: GraphIndex, blocks: [ResidualBlock]) -> Bool {
        var value = entry
        while let p = index.producer[value] {
            let node = graph.nodes[p]
            if node.opType == "Add" {
                let sides = node.inputs.filter { !index.isConstant($0) }
                guard sides.count == 2, !blocks.contains(where: { $0.addNode == node.displayName }) else { return false }
                // Both sides computed by layers (not, say, two embedding lookups) from one value.
                let ancestors = sides.map { index.ancestors(of: $0, graph: graph) }
                let computed = ancestors.allSatisfy { set in set.contains { ["Conv", "Gemm", "MatMul"].contains(graph.nodes[$0].opType) } }
                return computed && !ancestors[0].isDisjoint(with: ancestors[1])
            }
            guard trailingOps.contains(node.opType), let input = node.input(0) else { return false }
            value = input
        }
        return false
    }

    static func residualBlock(add: Int, entry: String, branch: String, graph: Graph, index: GraphIndex,
                              inferred: InferredGraph) -> ResidualBlock? {
        let addNode = graph.nodes[add]
        guard let start = index.producer[branch], let entryType = inferred.type(of: entry), entryType.shape != nil,
              inferred.type(of: addNode.outputs[0]) == entryType else { return nil }
        let descendants = index.descendants(of: entry, graph: graph)
        guard descendants.contains(start) else { return nil }
        // The branch: the entry's descendants that the Add's other input depends on.
        var body: Set<Int> = [add]
        var stack = [start]
        while let n = stack.popLast() {
            guard descendants.contains(n), body.insert(n).inserted else { continue }
            for input in graph.nodes[n].inputs where !input.isEmpty {
                if let p = index.producer[input] { stack.append(p) }
            }
        }
        var exit = addNode.outputs[0]
        while !index.graphOutputs.contains(exit), let readers = index.consumers[exit], readers.count == 1 {
            let next = graph.nodes[readers[0]]
            let live = next.outputs.filter { !$0.isEmpty }
            guard next.isDefaultDomain, trailingOps.contains(next.opType), live.count == 1, next.input(0) == exit,
                  next.inputs.dropFirst().allSatisfy({ $0.isEmpty || index.isConstant($0) }),
                  inferred.type(of: live[0]) == entryType else { break }
            body.insert(readers[0])
            exit = live[0]
        }
        // Nothing inside may be read from outside, except the exit.
        for n in body {
            for output in graph.nodes[n].outputs where !output.isEmpty && output != exit {
                if index.graphOutputs.contains(output) { return nil }
                if let readers = index.consumers[output], !readers.allSatisfy(body.contains) { return nil }
            }
        }
        let nodes = body.sorted()
        return ResidualBlock(entry: entry, exit: exit, addNode: addNode.displayName, nodes: nodes,
                             signature: nodes.map { graph.nodes[$0].opType }.joined(separator: ","))
    }
}

/// Producers, consumers and constants of a graph's values.
struct GraphIndex {
    var producer: [String: Int] = [:]
    var consumers: [String: [Int]] = [:]
    var constants: Set<String>
    var graphOutputs: Set<String>

    init(_ graph: Graph) {
        constants = Set(graph.initializers.map(\.name))
        graphOutputs = Set(graph.outputs.map(\.name))
        for (i, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = i }
            for input in Set(node.inputs) where !input.isEmpty { consumers[input, default: []].append(i) }
            // Exporters share identical weights (LayerNorm's ones, zero biases) through Identity.
            if node.opType == "Constant" || (node.opType == "Identity" && node.input(0).map(constants.contains) == true),
               let output = node.outputs.first {
                constants.insert(output)
            }
        }
    }

    func isConstant(_ name: String) -> Bool { constants.contains(name) }

    /// Nodes that read `value`, directly or through other nodes.
    func descendants(of value: String, graph: Graph) -> Set<Int> {
        var seen = Set<Int>()
        var stack = consumers[value] ?? []
        while let n = stack.popLast() {
            guard seen.insert(n).inserted else { continue }
            for output in graph.nodes[n].outputs where !output.isEmpty { stack += consumers[output] ?? [] }
        }
        return seen
    }

    /// Nodes `value` depends on, including its producer.
    func ancestors(of value: String, graph: Graph) -> Set<Int> {
        var seen = Set<Int>()
        var stack = producer[value].map { [$0] } ?? []
        while let n = stack.popLast() {
            guard seen.insert(n).inserted else { continue }
            for input in graph.nodes[n].inputs where !input.isEmpty {
                if let p = producer[input] { stack.append(p) }
            }
        }
        return seen
    }
}
