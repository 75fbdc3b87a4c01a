/// The attributes by which graph passes tell a Conv/ConvTranspose/Gemm/MatMul kernel
/// to apply an epilogue: `fused_bias` (MatMul only: a third input of N values added to
/// every row), `fused_sum` (an extra last input added to the result), then
/// `fused_activation` with `fused_alpha` / `fused_beta`.
public enum FusedAttributes {
    public static let bias = "fused_bias"
    public static let activation = "fused_activation"
    public static let alpha = "fused_alpha"
    public static let beta = "fused_beta"
    public static let sum = "fused_sum"
}

extension Node {
    /// Whether the node carries a fused residual sum (`fused_sum`, its addend the last
    /// input), as `fuseResidualAdd` writes it and the kernels' epilogue reads it.
    public var hasFusedSum: Bool { ((try? int(FusedAttributes.sum, default: 0)) ?? 0) != 0 }
}

extension GraphPasses {
    /// Ops that take a fused epilogue.
    static let fusionProducers: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul"]

    /// A BatchNormalization no conv absorbed (DenseNet's after each Concat), in inference
    /// form: it takes a fused Relu, saving the Relu's pass over the tensor.
    static func isInferenceBatchNorm(_ node: Node) -> Bool {
        node.opType == "BatchNormalization" && node.outputs.dropFirst().allSatisfy(\.isEmpty)
            && ((try? node.int("training_mode", default: 0)) ?? 1) == 0
    }

    /// Fuses an activation into the Conv/ConvTranspose/Gemm/MatMul that feeds it (a Relu
    /// into a BatchNormalization too, `isInferenceBatchNorm`): Relu,
    /// LeakyRelu, Clip (constant bounds), Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu
    /// (exact), SiLU written as `Mul(x, Sigmoid(x))`, and the exact GELU written with Erf
    /// (`geluPattern`). The producer's output must have no other reader and not be a
    /// graph output. An activation behind reshapes and transposes that only move the
    /// producer's elements fuses too (`activationAfterReshapes`).
    public static func fuseActivations(_ inferred: InferredGraph) -> InferredGraph {
        var graph = inferred.graph
        let uses = ValueUses(graph)
        var removed = Set<Int>()
        for (pi, producer) in graph.nodes.enumerated()
        where producer.isDefaultDomain && (fusionProducers.contains(producer.opType) || isInferenceBatchNorm(producer))
            && !producer.hasAttribute(FusedAttributes.activation) && !removed.contains(pi) {
            guard let x = producer.outputs.first, !x.isEmpty, !uses.graphOutputs.contains(x),
                  let readers = uses.readers[x] else { continue }
            var activation: (name: String, alpha: Float?, beta: Float?)?
            var absorbed: [Int] = []
            var output = ""
            if readers.count == 1, !removed.contains(readers[0]),
               let act = activationOf(graph.nodes[readers[0]], input: x, inferred) {
                activation = act
                absorbed = [readers[0]]
                output = graph.nodes[readers[0]].outputs[0]
            } else if readers.count == 2, let silu = siluPattern(x, readers, graph, uses), !removed.contains(silu.mul) {
                activation = ("Silu", nil, nil)
                absorbed = [silu.sigmoid, silu.mul]
                output = graph.nodes[silu.mul].outputs[0]
            } else if readers.count == 2, let gelu = geluPattern(x, readers, graph, uses, inferred),
                      removed.isDisjoint(with: gelu) {
                activation = ("Gelu", nil, nil)
                absorbed = gelu
                output = graph.nodes[gelu[gelu.count - 1]].outputs[0]
            }
            var renamed: (node: Int, output: String)?
            if activation == nil, readers.count == 1, let moved = activationAfterReshapes(x, graph, uses, inferred),
               !removed.contains(moved.activation) {
                // The activation commutes with the reshapes and transposes between: the
                // producer applies it, the last reshape writes the activation's output.
                activation = moved.act
                absorbed = [moved.activation]
                output = producer.outputs[0]
                renamed = (moved.last, graph.nodes[moved.activation].outputs[0])
            }
            guard let activation, !output.isEmpty else { continue }
            // A BatchNormalization's kernels take a Relu only, and only right after it.
            if producer.opType == "BatchNormalization", activation.name != "Relu" || renamed != nil { continue }
            if let renamed { graph.nodes[renamed.node].outputs = [renamed.output] }
            var fused = producer
            fused.attributes.append(Attribute(name: FusedAttributes.activation, value: .string(activation.name)))
            if let a = activation.alpha { fused.attributes.append(Attribute(name: FusedAttributes.alpha, value: .float(a))) }
            if let b = activation.beta { fused.attributes.append(Attribute(name: FusedAttributes.beta, value: .float(b))) }
            fused.outputs = [output]
            fused.sourceNodes = producer.absorbing(absorbed.map { graph.nodes[$0] })
            graph.nodes[pi] = fused
            removed.formUnion(absorbed)
        }
        return rewritten(inferred, graph: graph, removed: removed)
    }

    /// Ops that only move elements: an element-wise activation gives the same result
    /// before them as after.
    static let elementMovers: Set<String> = ["Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze"]

    /// `x -> Reshape/Transpose/... -> activation`, each value read only by the next node
    /// (through the mover's data input) and none a graph output or a known constant, as in
    /// YOLO heads (`Conv -> Reshape -> Transpose -> Sigmoid`): the activation's index and
    /// parameters and the last mover's index. The values between then hold activated
    /// elements; their types, all the facts a pass keeps, do not change.
    static func activationAfterReshapes(_ x: String, _ graph: Graph, _ uses: ValueUses, _ inferred: InferredGraph)
        -> (activation: Int, act: (name: String, alpha: Float?, beta: Float?), last: Int)? {
        var value = x
        var last: Int?
        for _ in 0..<graph.nodes.count {
            guard let reader = uses.soleReader(of: value), inferred.facts[value]?.constant == nil else { return nil }
            let node = graph.nodes[reader]
            if let moved = last, let act = activationOf(node, input: value, inferred) {
                return (reader, act, moved)
            }
            guard node.isDefaultDomain, elementMovers.contains(node.opType), node.input(0) == value,
                  node.inputs.dropFirst().allSatisfy({ $0 != value }), node.outputs.count == 1 else { return nil }
            last = reader
            value = node.outputs[0]
        }
        return nil
    }

    /// The fusable activation `node` applies to `input`, with its parameters.
    static func activationOf(_ node: Node, input: String, _ inferred: InferredGraph) -> (name: String, alpha: Float?, beta: Float?)? {
        guard node.isDefaultDomain, node.input(0) == input, node.outputs.count == 1 else { return nil }
        switch node.opType {
        case "Relu", "Sigmoid", "HardSwish", "Tanh":
            return (node.opType, nil, nil)
        case "LeakyRelu":
            return ("LeakyRelu", (try? node.float("alpha", default: 0.01)) ?? 0.01, nil)
        case "HardSigmoid":
            return ("HardSigmoid", (try? node.float("alpha", default: 0.2)) ?? 0.2, (try? node.float("beta", default: 0.5)) ?? 0.5)
        case "Gelu":
            guard ((try? node.string("approximate", default: "none")) ?? "") == "none" else { return nil }
            return ("Gelu", nil, nil)
        case "Clip":
            func bound(_ index: Int, attribute: String, default value: Float) -> Float? {
                if node.hasAttribute(attribute) { return try? node.float(attribute) }
                guard let name = node.input(index) else { return value }
                guard let d = inferred.facts[name]?.constant?.doubles, d.count == 1 else { return nil }
                return Float(d[0])
            }
            guard let low = bound(1, attribute: "min", default: -.greatestFiniteMagnitude),
                  let high = bound(2, attribute: "max", default: .greatestFiniteMagnitude) else { return nil }
            return ("Clip", low, high)
        default:
            return nil
        }
    }

    /// `Sigmoid(x) -> s; Mul(x, s)` with `s` read only by the Mul: the indices of both.
    static func siluPattern(_ x: String, _ readers: [Int], _ graph: Graph, _ uses: ValueUses) -> (sigmoid: Int, mul: Int)? {
        let nodes = readers.map { graph.nodes[$0] }
        guard let si = readers.first(where: { graph.nodes[$0].opType == "Sigmoid" }),
              let mi = readers.first(where: { graph.nodes[$0].opType == "Mul" }),
              nodes.allSatisfy(\.isDefaultDomain) else { return nil }
        let sigmoid = graph.nodes[si], mul = graph.nodes[mi]
        guard let s = sigmoid.outputs.first, uses.soleReader(of: s) == mi, mul.inputs.count == 2,
              Set(mul.inputs) == Set([x, s]), mul.outputs.count == 1 else { return nil }
        return (si, mi)
    }

    /// The exact GELU as PyTorch exports it, `0.5 * x * (1 + erf(x / sqrt(2)))`:
    /// `Div(x, sqrt 2)` (or `Mul(x, 1 / sqrt 2)`) -> Erf -> `Add(., 1)` -> `Mul(x, .)` ->
    /// `Mul(., 0.5)`, each intermediate read only by the next (operands in either
    /// order). The node indices in that order, the last one's output being the GELU.
    static func geluPattern(_ x: String, _ readers: [Int], _ graph: Graph, _ uses: ValueUses,
                            _ inferred: InferredGraph) -> [Int]? {
        func scalar(_ name: String) -> Double? {
            guard let d = inferred.facts[name]?.constant?.doubles, d.count == 1 else { return nil }
            return d[0]
        }
        func near(_ value: Double?, _ target: Double) -> Bool { value.map { abs($0 - target) <= 1e-4 * abs(target) } ?? false }
        /// The other operand of a two-input node that reads `value`.
        func other(_ node: Node, _ value: String) -> String? {
            guard node.isDefaultDomain, node.inputs.count == 2, node.outputs.count == 1, node.inputs.contains(value),
                  node.inputs[0] != node.inputs[1] else { return nil }
            return node.inputs.first { $0 != value }
        }
        /// The sole reader of `node`'s output, when it is one of `ops`.
        func next(_ index: Int, _ ops: Set<String>) -> Int? {
            guard let out = graph.nodes[index].outputs.first, let r = uses.soleReader(of: out),
                  ops.contains(graph.nodes[r].opType) else { return nil }
            return r
        }
        for scaleIndex in readers {
            let scale = graph.nodes[scaleIndex]
            guard let divisor = other(scale, x), scale.input(0) == x,
                  (scale.opType == "Div" && near(scalar(divisor), 2.0.squareRoot()))
                    || (scale.opType == "Mul" && near(scalar(divisor), 1 / 2.0.squareRoot())),
                  let erf = next(scaleIndex, ["Erf"]), graph.nodes[erf].inputs.count == 1,
                  let plusOne = next(erf, ["Add"]), let one = other(graph.nodes[plusOne], graph.nodes[erf].outputs[0]),
                  near(scalar(one), 1),
                  let product = next(plusOne, ["Mul"]), readers.contains(product), product != scaleIndex,
                  other(graph.nodes[product], graph.nodes[plusOne].outputs[0]) == x,
                  let half = next(product, ["Mul"]), let h = other(graph.nodes[half], graph.nodes[product].outputs[0]),
                  near(scalar(h), 0.5) else { continue }
            return [scaleIndex, erf, plusOne, product, half]
        }
        return nil
    }
}
