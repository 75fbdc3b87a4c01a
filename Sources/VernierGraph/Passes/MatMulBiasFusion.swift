extension GraphPasses {
    /// Fuses `Add(MatMul(x, W), b)` into the MatMul as a bias (`fused_bias`, with `b` as
    /// a third input), as in every Linear layer a transformer exports: oneDNN adds the
    /// bias while it writes the product, instead of a second pass over the result. `W`
    /// must be a 2-D initializer `[K, N]`, `b` an fp32 initializer of N values (shape
    /// `[N]`, or `[1, ..., N]`), the Add must not broadcast beyond the product's shape,
    /// and the product must have no other reader.
    public static func fuseMatMulBias(_ inferred: InferredGraph) -> InferredGraph {
        var graph = inferred.graph
        let uses = ValueUses(graph)
        let initializers = graph.initializerIndex
        var removed = Set<Int>()
        var replaced: [Int: Node] = [:]
        for (mi, matmul) in graph.nodes.enumerated()
        where matmul.isDefaultDomain && matmul.opType == "MatMul" && matmul.inputs.count == 2 && matmul.attributes.isEmpty {
            guard let x = matmul.outputs.first, let ai = uses.soleReader(of: x), replaced[ai] == nil,
                  let weight = initializers[matmul.inputs[1]], weight.dims.count == 2 else { continue }
            let add = graph.nodes[ai]
            let n = weight.dims[1]
            guard add.isDefaultDomain, add.opType == "Add", add.inputs.count == 2, add.outputs.count == 1,
                  let b = add.inputs.first(where: { $0 != x }), add.inputs.contains(x),
                  let bias = initializers[b], bias.elementType == .float, bias.dims.last == n,
                  bias.dims.dropLast().allSatisfy({ $0 == 1 }),
                  let productType = inferred.type(of: x), productType.isFullyKnown,
                  inferred.type(of: add.outputs[0]) == productType else { continue }
            var fused = matmul
            fused.inputs = matmul.inputs + [b]
            fused.outputs = add.outputs
            fused.attributes.append(Attribute(name: FusedAttributes.bias, value: .int(1)))
            fused.sourceNodes = matmul.absorbing([add])
            removed.insert(ai)
            replaced[mi] = fused
        }
        return rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
    }
}
