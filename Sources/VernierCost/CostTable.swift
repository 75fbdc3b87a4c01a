import VernierGraph

/// Static cost of one node.
public struct NodeCost: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    /// Types of every input position (nil: omitted or unknown).
    public var inputTypes: [TensorType?]
    /// Which inputs are weights (initializers), aligned with `inputTypes`.
    public var inputIsWeight: [Bool]
    public var outputTypes: [TensorType?]
    /// Elements of the weights this node reads (see `CostModel.isParameter`).
    public var params: Int
    /// Subgraphs by attribute name (If branches, Loop/Scan bodies), each as its own rows.
    public var subgraphs: [(attribute: String, nodes: [NodeCost])]
}

/// Totals over the top-level graph.
public struct CostTotals: Sendable {
    /// Top-level nodes, as in the file.
    public var nodes: Int
    /// Nodes including those inside subgraphs.
    public var nodesIncludingSubgraphs: Int
    /// Weight elements, each shared initializer counted once.
    public var params: Int
    /// Bytes of all weights (initializers), each counted once.
    public var weightBytes: Int
}

/// The static half of a profile: one row per node plus totals.
public struct CostTable: Sendable {
    public var analyzed: AnalyzedModel
    public var nodes: [NodeCost]
    public var totals: CostTotals
}

/// Builds cost tables from analyzed models.
public enum CostModel {
    public static func table(for analyzed: AnalyzedModel) -> CostTable {
        let graph = analyzed.model.graph
        let rows = rowsFor(analyzed.inferred, outerWeights: [:])
        var counted = Set<String>()
        var params = 0
        var weightBytes = 0
        let weights = graph.initializerIndex
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty && !counted.contains(input) {
                guard let w = weights[input], isParameter(w) else { continue }
                counted.insert(input)
                params += w.elementCount
            }
        }
        for t in graph.initializers { weightBytes += t.byteCount }
        func countAll(_ rows: [NodeCost]) -> Int { rows.reduce(0) { $0 + 1 + $1.subgraphs.reduce(0) { $0 + countAll($1.nodes) } } }
        let totals = CostTotals(nodes: graph.nodes.count, nodesIncludingSubgraphs: countAll(rows), params: params, weightBytes: weightBytes)
        return CostTable(analyzed: analyzed, nodes: rows, totals: totals)
    }

    /// Params are the elements of learned weights: floating-point and 8-bit (quantized)
    /// initializers. Integer index and shape tensors (int32/int64) are not params.
    public static func isParameter(_ tensor: TensorData) -> Bool {
        switch tensor.elementType {
        case .int64, .int32, .uint64, .uint32, .int16, .uint16, .bool, .string: return false
        default: return true
        }
    }

    static func rowsFor(_ inferred: InferredGraph, outerWeights: [String: TensorData]) -> [NodeCost] {
        var weights = outerWeights
        for t in inferred.graph.initializers { weights[t.name] = t }
        return inferred.graph.nodes.map { node in
            let isWeight = node.inputs.map { !$0.isEmpty && weights[$0] != nil }
            var seen = Set<String>()
            var params = 0
            for (input, w) in zip(node.inputs, isWeight) where w && seen.insert(input).inserted {
                if let w = weights[input], isParameter(w) { params += w.elementCount }
            }
            let inferredSubs = inferred.subgraphs[node.displayName] ?? [:]
            let attributeOrder = node.attributes.map(\.name).filter { inferredSubs[$0] != nil }
            let subs = attributeOrder.flatMap { attribute in
                (inferredSubs[attribute] ?? []).map { (attribute: attribute, nodes: rowsFor($0, outerWeights: weights)) }
            }
            return NodeCost(name: node.displayName, opType: node.opType, domain: node.domain,
                            inputTypes: inferred.inputTypes(of: node), inputIsWeight: isWeight,
                            outputTypes: inferred.outputTypes(of: node), params: params, subgraphs: subs)
        }
    }
}
