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
    /// Input value names ("" for an omitted optional input).
    public var inputNames: [String]
    public var outputTypes: [TensorType?]
    /// Output value names ("" for an output the node does not produce).
    public var outputNames: [String]
    /// Elements of the weights this node reads (see `CostModel.isParameter`).
    public var params: Int
    /// Arithmetic work; nil when the op has no formula or its shapes are unknown.
    public var work: OpCost?
    /// Bytes of every input (weights included) and of every output; nil when unknown.
    public var bytesRead: Cost?
    public var bytesWritten: Cost?
    /// Bytes of the node's outputs (its activations).
    public var activationBytes: Cost?
    /// Subgraphs by attribute name (If branches, Loop/Scan bodies), each as its own rows.
    public var subgraphs: [(attribute: String, nodes: [NodeCost])]
    /// An integer product's activation has a zero point other than 0 (a
    /// DequantizeLinear of an activation, QLinearConv/QLinearMatMul's x, ConvInteger/
    /// MatMulInteger's a): runtimes then take other, slower kernels.
    public var sourceZeroPoint = false

    public var macs: Cost? { work?.macs }
    public var flops: Cost? { work?.flops }
    public var intMacs: Cost? { work?.intMacs }

    /// FLOPs per byte moved, when both are known numbers.
    public var intensity: Double? {
        guard let f = flops?.value, let r = bytesRead?.value, let w = bytesWritten?.value, r + w > 0 else { return nil }
        return f / (r + w)
    }

    public var qualifiedOpType: String { domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain).\(opType)" }
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
    public var macs: Cost
    public var flops: Cost
    public var intMacs: Cost
    public var bytesRead: Cost
    public var bytesWritten: Cost
    /// Nodes whose cost is unknown (no formula or unknown shapes); their work is not in the totals.
    public var uncostedNodes: [String]
}

/// Per-op-type aggregate.
public struct OpTypeCost: Sendable {
    public var opType: String
    public var count: Int
    public var macs: Cost
    public var flops: Cost
    public var intMacs: Cost
}

/// The static half of a profile: one row per node, totals, per-op aggregates and the
/// memory plan.
public struct CostTable: Sendable {
    public var analyzed: AnalyzedModel
    public var nodes: [NodeCost]
    public var totals: CostTotals
    public var byOp: [OpTypeCost]
    /// The activation memory plan; nil (with `memoryNote`) when sizes are symbolic.
    public var memory: MemoryPlan?
    public var memoryNote: String?
    /// Activation bytes if every activation had its own buffer; symbolic when dims are.
    public var naiveActivationBytes: Cost
}

/// Builds cost tables from analyzed models.
public enum CostModel {
    public static func table(for analyzed: AnalyzedModel) -> CostTable {
        let graph = analyzed.model.graph
        let rows = rowsFor(analyzed.inferred, outerWeights: [:])
        var counted = Set<String>()
        var params = 0
        var weightBytes = 0
        // Weights read anywhere count, those read only inside If branches or loop bodies too.
        func countParams(_ g: Graph, weights outer: [String: TensorData]) {
            var weights = outer
            for t in g.initializers { weights[t.name] = t }
            for node in g.nodes {
                for input in node.inputs where !input.isEmpty && !counted.contains(input) {
                    guard let w = weights[input], isParameter(w) else { continue }
                    counted.insert(input)
                    params += w.elementCount
                }
                for (_, sub) in node.subgraphs { countParams(sub, weights: weights) }
            }
        }
        countParams(graph, weights: [:])
        func countWeightBytes(_ g: Graph) {
            weightBytes += g.initializers.reduce(0) { $0 + $1.byteCount }
            for node in g.nodes { for (_, sub) in node.subgraphs { countWeightBytes(sub) } }
        }
        countWeightBytes(graph)
        func countAll(_ rows: [NodeCost]) -> Int { rows.reduce(0) { $0 + 1 + $1.subgraphs.reduce(0) { $0 + countAll($1.nodes) } } }
        var totals = CostTotals(nodes: graph.nodes.count, nodesIncludingSubgraphs: countAll(rows), params: params,
                                weightBytes: weightBytes, macs: .zero, flops: .zero, intMacs: .zero,
                                bytesRead: .zero, bytesWritten: .zero, uncostedNodes: [])
        var byOp: [String: OpTypeCost] = [:]
        var order: [String] = []
        for r in rows {
            if byOp[r.qualifiedOpType] == nil {
                order.append(r.qualifiedOpType)
                byOp[r.qualifiedOpType] = OpTypeCost(opType: r.qualifiedOpType, count: 0, macs: .zero, flops: .zero, intMacs: .zero)
            }
            byOp[r.qualifiedOpType]?.count += 1
            guard let work = r.work else { totals.uncostedNodes.append(r.name); continue }
            totals.macs = totals.macs + work.macs
            totals.flops = totals.flops + work.flops
            totals.intMacs = totals.intMacs + work.intMacs
            if var entry = byOp[r.qualifiedOpType] {
                entry.macs = entry.macs + work.macs
                entry.flops = entry.flops + work.flops
                entry.intMacs = entry.intMacs + work.intMacs
                byOp[r.qualifiedOpType] = entry
            }
            totals.bytesRead = totals.bytesRead + (r.bytesRead ?? .zero)
            totals.bytesWritten = totals.bytesWritten + (r.bytesWritten ?? .zero)
        }
        var memory: MemoryPlan?
        var note: String?
        do { memory = try MemoryPlanner.plan(analyzed.inferred) } catch { note = "\(error)" }
        let naive = naiveActivationBytes(analyzed.inferred)
        let ops = order.compactMap { byOp[$0] }
        return CostTable(analyzed: analyzed, nodes: rows, totals: totals, byOp: ops, memory: memory,
                         memoryNote: note, naiveActivationBytes: naive)
    }

    /// Params are the elements of learned weights: floating-point and 8-bit (quantized)
    /// initializers. Integer index and shape tensors (int32/int64) are not params.
    public static func isParameter(_ tensor: TensorData) -> Bool {
        switch tensor.elementType {
        case .int64, .int32, .uint64, .uint32, .int16, .uint16, .bool, .string: return false
        default: return true
        }
    }

    /// Bytes of a tensor of type `t`, as a polynomial; nil when the shape is unknown.
    public static func bytes(_ t: TensorType?) -> Cost? {
        guard let t, let shape = t.shape, let bits = t.elementType.bitWidth else { return nil }
        return Cost(shape.product) * Cost(Double(bits) / 8)
    }

    /// Sum of the sizes of every activation (graph inputs and node outputs whose
    /// contents are not folded constants).
    static func naiveActivationBytes(_ inferred: InferredGraph) -> Cost {
        let folded = MemoryPlanner.foldedValues(inferred)
        var names = inferred.graph.runtimeInputs.map(\.name)
        for node in inferred.graph.nodes { names += node.outputs }
        return names.filter { MemoryPlanner.isActivation($0, folded: folded, inferred: inferred) }
            .reduce(Cost.zero) { $0 + (bytes(inferred.type(of: $1)) ?? .zero) }
    }

    /// Ops that read only their inputs' shapes, not their bytes.
    static let metadataOnly: Set<String> = ["Shape", "Size", "Constant"]
    /// Ops that read from their data input only the elements they write out.
    static let selectsFromInput: Set<String> = ["Gather", "GatherElements", "GatherND", "Slice"]

    /// A QDQ Conv/MatMul/Gemm (both operands dequantized right before it) counts its
    /// MACs as integer MACs; its FLOPs keep only the bias adds.
    static func qdqAdjusted(_ work: OpCost?, node: Node, producerOp: [String: String]) -> OpCost? {
        guard var work, node.isDefaultDomain, quantizableOps.contains(node.opType), node.inputs.count >= 2,
              producerOp[node.inputs[0]] == "DequantizeLinear", producerOp[node.inputs[1]] == "DequantizeLinear" else { return work }
        work.intMacs = work.intMacs + work.macs
        work.flops = work.flops - work.macs * Cost(2)
        work.macs = .zero
        return work
    }

    static func sumOfBytes(_ types: [TensorType?]) -> Cost? {
        types.reduce(Cost?.some(.zero)) { acc, t in acc.flatMap { a in bytes(t).map { a + $0 } } }
    }

    /// Ops whose QDQ form (both operands from DequantizeLinear) runtimes execute in int8.
    static let quantizableOps: Set<String> = ["Conv", "ConvTranspose", "MatMul", "Gemm"]

    static func rowsFor(_ inferred: InferredGraph, outerWeights: [String: TensorData]) -> [NodeCost] {
        var weights = outerWeights
        for t in inferred.graph.initializers { weights[t.name] = t }
        var producerOp: [String: String] = [:]
        for node in inferred.graph.nodes { for o in node.outputs { producerOp[o] = node.opType } }
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
            var subCosts: [String: [OpCost]] = [:]
            for sub in subs {
                let total = sub.nodes.reduce(OpCost.free) { $0 + ($1.work ?? .free) }
                subCosts[sub.attribute, default: []].append(total)
            }
            let inputTypes = inferred.inputTypes(of: node)
            let outputTypes = inferred.outputTypes(of: node)
            let formula = node.isDefaultDomain ? CostFormulas.formula(for: node.opType)
                : CostFormulas.customFormula(domain: node.domain, op: node.opType)
            let context = CostContext(node: node, inputs: inputTypes, outputs: outputTypes, subgraphCosts: subCosts)
            let outputs = zip(node.outputs, outputTypes).filter { !$0.0.isEmpty }.map(\.1)
            let written = sumOfBytes(outputs)
            var present = zip(node.inputs, inputTypes).filter { !$0.0.isEmpty }.map(\.1)
            let read: Cost?
            if metadataOnly.contains(node.opType) {
                read = .zero
            } else if selectsFromInput.contains(node.opType), !present.isEmpty {
                // Only the selected elements of the data input are read: as many as are written.
                present.removeFirst()
                read = sumOfBytes(present).flatMap { a in written.map { a + $0 } }
            } else {
                read = sumOfBytes(present)
            }
            // Which input is the activation's zero point, for the ops that take one.
            let zeroPointInput: Int? = switch node.opType {
            case "DequantizeLinear" where !(isWeight.first ?? true): 2
            case "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger": 2
            default: nil
            }
            let sourceZeroPoint = zeroPointInput.flatMap { i in
                i < node.inputs.count ? weights[node.inputs[i]]?.integerValues()?.contains { $0 != 0 } : nil
            } ?? false
            return NodeCost(name: node.displayName, opType: node.opType, domain: node.domain,
                            inputTypes: inputTypes, inputIsWeight: isWeight, inputNames: node.inputs, outputTypes: outputTypes, outputNames: node.outputs, params: params,
                            work: qdqAdjusted(formula?(context), node: node, producerOp: producerOp), bytesRead: read, bytesWritten: written, activationBytes: written,
                            subgraphs: subs, sourceZeroPoint: sourceZeroPoint)
        }
    }
}
