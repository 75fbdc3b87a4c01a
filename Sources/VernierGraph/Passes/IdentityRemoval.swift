extension GraphPasses {
    /// Removes Identity and inference-mode Dropout (mask output unused): their readers
    /// read the input instead. A node whose output is a graph output stays (the output
    /// must keep its name).
    public static func removeIdentities(_ inferred: InferredGraph) -> InferredGraph {
        var graph = inferred.graph
        let graphOutputs = Set(graph.outputs.map(\.name))
        var renamed: [String: String] = [:]
        var kept: [Node] = []
        for var node in graph.nodes {
            node.inputs = node.inputs.map { renamed[$0] ?? $0 }
            let removable = node.isDefaultDomain && node.subgraphs.isEmpty
                && (node.opType == "Identity" || (node.opType == "Dropout" && node.outputs.dropFirst().allSatisfy(\.isEmpty)))
            if removable, let input = node.input(0), let output = node.outputs.first, !output.isEmpty,
               !graphOutputs.contains(output) {
                renamed[output] = input
                continue
            }
            kept.append(node)
        }
        // Subgraphs may read a removed value from the enclosing graph.
        if !renamed.isEmpty {
            kept = kept.map { renameOuterReads($0, renamed) }
        }
        graph.nodes = kept
        var result = inferred
        result.graph = graph
        return result
    }

    /// The node with subgraph reads of renamed values redirected.
    static func renameOuterReads(_ node: Node, _ renamed: [String: String]) -> Node {
        guard !node.subgraphs.isEmpty else { return node }
        var node = node
        for i in node.attributes.indices {
            switch node.attributes[i].value {
            case .graph(let g): node.attributes[i].value = .graph(renameReads(in: g, renamed))
            case .graphs(let gs): node.attributes[i].value = .graphs(gs.map { renameReads(in: $0, renamed) })
            default: break
            }
        }
        return node
    }

    static func renameReads(in graph: Graph, _ renamed: [String: String]) -> Graph {
        var graph = graph
        var defined = Set(graph.inputs.map(\.name)).union(graph.initializers.map(\.name))
        for n in graph.nodes.indices {
            graph.nodes[n].inputs = graph.nodes[n].inputs.map { defined.contains($0) ? $0 : (renamed[$0] ?? $0) }
            graph.nodes[n] = renameOuterReads(graph.nodes[n], renamed.filter { !defined.contains($0.key) })
            defined.formUnion(graph.nodes[n].outputs)
        }
        return graph
    }
}
