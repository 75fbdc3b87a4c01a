extension FusedAttributes {
    /// `fused_gate = "QLinearSigmoid"` on a `com.microsoft.QLinearMul(x, xs, xz, x, ss,
    /// sz, ys, yz)`: its B operand is `QLinearSigmoid(x, xs, xz, ss, sz)`, so the node
    /// computes `x * sigmoid(x)` in the QLinear ops' steps (SiLU / Swish).
    /// `fused_gate = "HardSigmoid"` (with the HardSigmoid's `alpha` and `beta`): B is the
    /// quantized HardSigmoid of x (`fused_qlinear`), i.e. a quantized HardSwish.
    public static let gate = "fused_gate"
    /// `fused_qlinear = 1` on a HardSigmoid: inputs (x, x_scale, x_zero_point, y_scale,
    /// y_zero_point) of 8-bit x and y, as QLinearSigmoid's (`fuseQDQUnary`).
    public static let qlinear = "fused_qlinear"
}

extension Node {
    /// Whether this node is a quantized lookup a QLinearMul can take as its gate:
    /// QLinearSigmoid, or a HardSigmoid in its `fused_qlinear` form.
    var isQuantizedGate: Bool {
        (domain == "com.microsoft" && opType == "QLinearSigmoid")
            || (isDefaultDomain && opType == "HardSigmoid" && ((try? int(FusedAttributes.qlinear, default: 0)) ?? 0) != 0)
    }
}

extension GraphPasses {
    /// Fuses a quantized SiLU, `QLinearMul(x, QLinearSigmoid(x))` (what `fuseQDQBinary`
    /// and `fuseQDQUnary` make of EfficientNet's QDQ gates; likewise a HardSwish,
    /// MobileNetV3's, with a quantized HardSigmoid), into the QLinearMul
    /// (`fused_gate = "QLinearSigmoid"`). Both operands are functions of the one 8-bit x,
    /// so the product is too: the kernel computes it for each of the 256 values of x,
    /// with the two ops' own fp32 steps, and looks every element up. Bit for bit the
    /// two ops' result in one byte-to-byte pass instead of two (EfficientNet-B0 int8 at 1
    /// thread: 32 such Muls of up to 1.2 M elements, 1.5 ms). ONNX Runtime runs the two
    /// ops. Needs the gate's result read by the Mul alone, and the Mul to dequantize
    /// x and the gate's result with the parameters the gate used: the same
    /// initializers, or initializers of equal values.
    public static func fuseQLinearGate(_ inferred: InferredGraph) -> InferredGraph {
        let graph = inferred.graph
        let uses = ValueUses(graph)
        let initializers = graph.initializerIndex
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        /// Whether two parameter inputs name equal constants (an omitted zero point is 0
        /// only by convention here, so both must be given).
        func same(_ a: String, _ b: String) -> Bool {
            if a == b { return !a.isEmpty }
            guard let x = initializers[a], let y = initializers[b], x.elementType == y.elementType, x.dims == y.dims
            else { return false }
            return x.withUnsafeBytes { p in y.withUnsafeBytes { q in p.elementsEqual(q) } }
        }
        var removed = Set<Int>()
        var replaced: [Int: Node] = [:]
        for (mi, mul) in graph.nodes.enumerated()
        where mul.domain == "com.microsoft" && mul.opType == "QLinearMul" && mul.inputs.count == 8 && !mul.hasAttribute(FusedAttributes.gate) {
            // The gate may be either operand: products of floats commute exactly.
            for (xSide, gateSide) in [(0, 3), (3, 0)] {
                let x = mul.inputs[xSide], gated = mul.inputs[gateSide]
                guard let si = producer[gated], !removed.contains(si), replaced[si] == nil, uses.soleReader(of: gated) == mi
                else { continue }
                let gate = graph.nodes[si]
                guard gate.isQuantizedGate, gate.inputs.count == 5,
                      gate.inputs[0] == x, same(gate.inputs[1], mul.inputs[xSide + 1]), same(gate.inputs[2], mul.inputs[xSide + 2]),
                      same(gate.inputs[3], mul.inputs[gateSide + 1]), same(gate.inputs[4], mul.inputs[gateSide + 2])
                else { continue }
                var fused = mul
                fused.inputs = [x, mul.inputs[xSide + 1], mul.inputs[xSide + 2], x, mul.inputs[gateSide + 1], mul.inputs[gateSide + 2],
                                mul.inputs[6], mul.inputs[7]]
                fused.attributes.append(Attribute(name: FusedAttributes.gate, value: .string(gate.opType)))
                fused.attributes += gate.attributes.filter { ["alpha", "beta"].contains($0.name) }
                fused.sourceNodes = gate.absorbing([mul])
                replaced[mi] = fused
                removed.insert(si)
                break
            }
        }
        return rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
    }
}
