import VernierGraph

/// The static costs of one kernel: a node, or a group of nodes the executor runs as one
/// (a Conv with its folded BatchNormalization and fused Relu). Profiles join these with
/// measured latency; predictions with predicted latency.
public struct KernelCosts: Sendable {
    public var name: String
    public var opType: String
    /// The op types of the fused nodes joined with `+`.
    public var fusedOpTypes: String
    /// The original ONNX nodes, in execution order.
    public var fused: [String]
    /// Activations read from outside the group (weights left out) and values produced
    /// for the rest of the graph.
    public var inputTypes: [TensorType?]
    public var outputTypes: [TensorType?]
    public var params: Int
    public var macs: Double
    public var flops: Double
    public var intMacs: Double
    /// Bytes read from outside (weights included) and written for others; values passed
    /// between fused nodes are left out.
    public var bytesRead: Double
    public var bytesWritten: Double
    /// False when a fused node has no cost formula or unknown shapes.
    public var costKnown: Bool
    /// The class of the group's main node (`KernelGrouping.mainNode`), whose
    /// efficiency curve or kernel model predicts it.
    public var opClass: OpClass
    /// A fused node's integer product reads an activation with a zero point other than
    /// 0 (`NodeCost.sourceZeroPoint`).
    public var sourceZeroPoint = false
    /// The executor runs the kernel without moving its bytes: a Concat whose inputs
    /// their producers wrote in place in its output, a Reshape returning a view
    /// (`ExecutionPlan.copyFreeSteps`).
    /// The byte counts stay the op's own; the prediction sample moves nothing.
    public var copiesNothing = false
    /// Bytes the executor reorders between its layouts and the kernel's own on each run
    /// (an int8 convolution's plain input into channels-last, a shuffled plain map into
    /// channel blocks): work outside the op's own count.
    public var relayoutBytes = 0.0
    /// The implementation the executor runs the kernel on, as its library names it
    /// (oneDNN's `jit_wino_4x3:avx512_core`); nil for Vernier's own kernels and when
    /// unknown. Prediction weighs Winograd variants apart by it.
    public var implementation: String?

    public var bytesMoved: Double { bytesRead + bytesWritten }
    /// Integer arithmetic dominates: placed against the int8 roof.
    public var isInteger: Bool { intMacs > 0 && 2 * intMacs >= flops }

    public init(name: String, opType: String, fusedOpTypes: String, fused: [String], inputTypes: [TensorType?] = [],
                outputTypes: [TensorType?] = [], params: Int = 0, macs: Double = 0, flops: Double = 0, intMacs: Double = 0,
                bytesRead: Double = 0, bytesWritten: Double = 0, costKnown: Bool = true, opClass: OpClass = .other) {
        self.name = name
        self.opType = opType
        self.fusedOpTypes = fusedOpTypes
        self.fused = fused
        self.inputTypes = inputTypes
        self.outputTypes = outputTypes
        self.params = params
        self.macs = macs
        self.flops = flops
        self.intMacs = intMacs
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.costKnown = costKnown
        self.opClass = opClass
    }

    /// The kernel as a prediction sample (no measured time).
    public var sample: KernelSample {
        KernelSample(name: name, opClass: opClass, ops: flops + 2 * intMacs, bytes: copiesNothing ? 0 : bytesMoved, integer: isInteger,
                     shape: KernelSample.Shape(macs: macs + intMacs, inputDims: inputTypes.first??.concreteDims,
                                               outputDims: outputTypes.first??.concreteDims, fusedOpTypes: fusedOpTypes,
                                               sourceZeroPoint: sourceZeroPoint),
                     relayoutBytes: relayoutBytes, implementation: implementation)
    }
}

/// Sums the costs of groups of original nodes, knowing who reads each value: a value
/// that only the group's own nodes read never leaves it.
public struct KernelGrouping: Sendable {
    let costs: [String: NodeCost]
    let readers: [String: Set<String>]
    let graphOutputs: Set<String>
    /// Values that exist at run time: graph inputs and what kernels produce (passed on
    /// by removed nodes such as an Identity); the rest are constants, which rows count
    /// with the weights rather than as activation inputs.
    let runtimeValues: Set<String>

    /// - Parameter executedNodes: the original nodes some kernel runs.
    public init(table: CostTable, executedNodes: Set<String>) {
        costs = Dictionary(table.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var readers: [String: Set<String>] = [:]
        for node in table.nodes {
            for input in node.inputNames where !input.isEmpty { readers[input, default: []].insert(node.name) }
        }
        self.readers = readers
        graphOutputs = Set(table.analyzed.model.graph.outputs.map(\.name))
        var runtime = Set(table.analyzed.model.graph.runtimeInputs.map(\.name))
        for node in table.nodes where executedNodes.contains(node.name) || node.inputNames.contains(where: runtime.contains) {
            runtime.formUnion(node.outputNames.filter { !$0.isEmpty })
        }
        runtimeValues = runtime
    }

    /// The node whose work a group's time follows (`OpClass.mainOpIndex`).
    static func mainNode(of members: [NodeCost]) -> NodeCost? {
        OpClass.mainOpIndex(members.map(\.opType)).map { members[$0] }
    }

    /// The costs of the kernel named `name` that runs the original `nodes`.
    public func costs(name: String, opType: String, nodes: [String]) -> KernelCosts {
        let members = nodes.compactMap { costs[$0] }
        let memberNames = Set(members.map(\.name))
        var producedInside: [String: TensorType?] = [:]
        for m in members { for (n, t) in zip(m.outputNames, m.outputTypes) where !n.isEmpty { producedInside[n] = t } }
        func bytes(_ t: TensorType?) -> Double { CostModel.bytes(t)?.value ?? 0 }
        // A value stays inside when fused nodes alone read it; a value nobody reads is
        // still written by its kernel.
        func escapes(_ value: String) -> Bool {
            let r = readers[value] ?? []
            return graphOutputs.contains(value) || r.isEmpty || r.contains { !memberNames.contains($0) }
        }

        var k = KernelCosts(name: name, opType: opType, fusedOpTypes: members.map(\.qualifiedOpType).joined(separator: "+"),
                            fused: nodes, inputTypes: [], outputTypes: [], params: 0, macs: 0, flops: 0, intMacs: 0,
                            bytesRead: 0, bytesWritten: 0, costKnown: !members.isEmpty,
                            opClass: OpClass.ofGroup(anchorClass: Self.mainNode(of: members).map(OpClass.classify)
                                                                     ?? OpClass.classify(opType: opType),
                                                     opTypes: members.map(\.opType)))
        var seenInputs = Set<String>()
        for m in members {
            k.params += m.params
            k.sourceZeroPoint = k.sourceZeroPoint || m.sourceZeroPoint
            if let work = m.work, let macs = work.macs.value, let flops = work.flops.value, let intMacs = work.intMacs.value,
               let read = m.bytesRead?.value, let written = m.bytesWritten?.value {
                k.macs += macs
                k.flops += flops
                k.intMacs += intMacs
                k.bytesRead += read
                k.bytesWritten += written
            } else {
                k.costKnown = false
            }
            for (i, input) in m.inputNames.enumerated() where !input.isEmpty {
                let type = i < m.inputTypes.count ? m.inputTypes[i] : nil
                if let inner = producedInside[input] {
                    k.bytesRead -= bytes(inner)   // passed inside the group
                } else if runtimeValues.contains(input), seenInputs.insert(input).inserted {
                    k.inputTypes.append(type)
                }
            }
            for (n, t) in zip(m.outputNames, m.outputTypes) where !n.isEmpty {
                if escapes(n) { k.outputTypes.append(t) } else { k.bytesWritten -= bytes(t) }
            }
        }
        k.bytesRead = max(0, k.bytesRead)
        k.bytesWritten = max(0, k.bytesWritten)
        // The model counts a QDQ product as integer work (what runtimes make of it), but
        // a kernel that still runs the plain Conv/MatMul/Gemm multiplies the dequantized
        // fp32 values: BERT's attention products, two activations, stay float here.
        if CostModel.quantizableOps.contains(opType), k.intMacs > 0 {
            k.macs += k.intMacs
            k.flops += 2 * k.intMacs
            k.intMacs = 0
        }
        return k
    }
}
