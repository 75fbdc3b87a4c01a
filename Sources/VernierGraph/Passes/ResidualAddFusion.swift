extension GraphPasses {
    /// Fuses `Add(Conv(...), y)` (or a MatMul's) into the Conv as a sum epilogue
    /// (`fused_sum`, with `y` as an extra last input), as in ResNet blocks and a
    /// transformer's residual connections: the conv accumulates into the residual
    /// instead of writing a tensor that the Add reads back. Needs `y` to have exactly the
    /// Add's output shape (no broadcasting) and the conv's output no other reader. The
    /// fused node takes the Add's place in the order, where both operands exist.
    public static func fuseResidualAdd(_ inferred: InferredGraph) -> InferredGraph {
        var graph = inferred.graph
        let uses = ValueUses(graph)
        var removed = Set<Int>()
        var replaced: [Int: Node] = [:]
        for (ci, conv) in graph.nodes.enumerated()
        where conv.isDefaultDomain && (conv.opType == "Conv" || conv.opType == "MatMul") && !removed.contains(ci)
            && !conv.hasAttribute(FusedAttributes.activation) && !conv.hasAttribute(FusedAttributes.sum) {
            guard let x = conv.outputs.first, let ai = uses.soleReader(of: x), replaced[ai] == nil else { continue }
            let add = graph.nodes[ai]
            guard add.isDefaultDomain, add.opType == "Add", add.inputs.count == 2, add.inputs[0] != add.inputs[1],
                  let y = add.inputs.first(where: { $0 != x }), add.inputs.contains(x),
                  let yType = inferred.type(of: y), let outType = inferred.type(of: add.outputs[0]),
                  yType.isFullyKnown, yType == outType, inferred.type(of: x) == outType else { continue }
            var fused = conv
            fused.inputs = conv.inputs + [y]
            fused.outputs = [add.outputs[0]]
            fused.attributes.append(Attribute(name: FusedAttributes.sum, value: .int(1)))
            fused.sourceNodes = conv.absorbing([add])
            removed.insert(ci)
            replaced[ai] = fused
        }
        return rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
    }
}
