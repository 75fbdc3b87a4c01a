/// Graph passes that run before execution planning. Each is a function from an inferred
/// graph to an inferred graph; the facts of surviving values are unchanged (a pass
/// changes which nodes compute a value, not its type; the one change of contents is an
/// activation moved ahead of reshapes into its producer, whose in-between values then
/// hold activated elements). A node that absorbs others
/// records their names in `sourceNodes`, so a profile maps kernels back to the
/// original ONNX nodes.
public enum GraphPasses {
    /// The passes the executor runs, in order.
    public static func optimize(_ graph: InferredGraph) -> InferredGraph {
        var g = graph
        g = removeIdentities(g)
        g = foldBatchNormalization(g)
        g = fuseMatMulBias(g)
        g = fuseResidualAdd(g)
        g = fuseActivations(g)
        g = fuseSplitTranspose(g)
        g = moveDataMovementOntoQuantizedValues(g)
        g = fuseQDQConv(g)
        g = fuseQDQMatMul(g)
        g = fuseQDQGemm(g)
        g = fuseQDQBinary(g)
        g = fuseQDQUnary(g)
        g = fuseQLinearGate(g)
        return g
    }
}

extension GraphPasses {
    /// `inferred` with `graph` (the pass's edited copy) in place of its graph, the nodes
    /// at `removed` dropped and those at the keys of `replaced` swapped for their values;
    /// `inferred` itself when the pass removed nothing.
    static func rewritten(_ inferred: InferredGraph, graph: Graph, removed: Set<Int>, replaced: [Int: Node] = [:]) -> InferredGraph {
        guard !removed.isEmpty else { return inferred }
        var graph = graph
        graph.nodes = graph.nodes.enumerated().compactMap { index, node in
            removed.contains(index) ? nil : (replaced[index] ?? node)
        }
        var result = inferred
        result.graph = graph
        return result
    }
}

/// Who reads each value: consumer node indices, and whether a graph output is it.
public struct ValueUses: Sendable {
    public var readers: [String: [Int]] = [:]
    public var graphOutputs: Set<String>

    public init(_ graph: Graph) {
        graphOutputs = Set(graph.outputs.map(\.name))
        for (index, node) in graph.nodes.enumerated() {
            for input in Set(node.inputs) where !input.isEmpty { readers[input, default: []].append(index) }
            for (_, sub) in node.subgraphs {
                for name in GraphValidator.outerReads(of: sub) { readers[name, default: []].append(index) }
            }
        }
    }

    /// The one node that reads `value`, when exactly one does and no graph output is it.
    public func soleReader(of value: String) -> Int? {
        guard !graphOutputs.contains(value), let r = readers[value], r.count == 1 else { return nil }
        return r[0]
    }
}

extension Node {
    /// `sourceNodes` of a node that absorbed `others` (in execution order).
    func absorbing(_ others: [Node]) -> [String] {
        originalNodes + others.flatMap(\.originalNodes)
    }
}
