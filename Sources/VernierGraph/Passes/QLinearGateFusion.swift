extension FusedAttributes {
    /// `fused_gate = "QLinearSigmoid"` on a `com.microsoft.QLinearMul(x, xs, xz, x, ss,
    /// sz, ys, yz)`: its B operand is `QLinearSigmoid(x, xs, xz, ss, sz)`, so the node
    /// computes `x * sigmoid(x)` in the QLinear ops' steps (SiLU / Swish).
    public static let gate = "fused_gate"
}

extension GraphPasses {
    /// Fuses a quantized SiLU, `QLinearMul(x, QLinearSigmoid(x))` (what `fuseQDQBinary`
    /// and `fuseQDQUnary` make of EfficientNet's QDQ gates), into the QLinearMul
    /// (`fused_gate = "QLinearSigmoid"`). Both operands are functions of the one 8-bit x,
    /// so the product is too: the kernel computes it for each of the 256 values of x,
    /// with the two ops' own fp32 steps, and looks every element up. Bit for bit the
    /// two ops' result in one byte-to-byte pass instead of two (EfficientNet-B0 int8 at 1
    /// thread: 32 such Muls of up to 1.2 M elements, 1.5 ms). ONNX Runtime runs the two
    /// ops. Needs the sigmoid's result read by the Mul alone, and the Mul to dequantize
    /// x and the sigmoid's result with the parameters the sigmoid used: the same
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
            // The sigmoid may be either operand: products of floats commute exactly.
            for (xSide, gateSide) in [(0, 3), (3, 0)] {
                let x = mul.inputs[xSide], gated = mul.inputs[gateSide]
                guard let si = producer[gated], !removed.contains(si), replaced[si] == nil, uses.soleReader(of: gated) == mi
                else { continue }
                let sigmoid = graph.nodes[si]
                guard sigmoid.domain == "com.microsoft", sigmoid.opType == "QLinearSigmoid", sigmoid.inputs.count == 5,
                      sigmoid.inputs[0] == x, same(sigmoid.inputs[1], mul.inputs[xSide + 1]), same(sigmoid.inputs[2], mul.inputs[xSide + 2]),
                      same(sigmoid.inputs[3], mul.inputs[gateSide + 1]), same(sigmoid.inputs[4], mul.inputs[gateSide + 2])
                else { continue }
                var fused = mul
                fused.inputs = [x, mul.inputs[xSide + 1], mul.inputs[xSide + 2], x, mul.inputs[gateSide + 1], mul.inputs[gateSide + 2],
                                mul.inputs[6], mul.inputs[7]]
                fused.attributes.append(Attribute(name: FusedAttributes.gate, value: .string("QLinearSigmoid")))
                fused.sourceNodes = sigmoid.absorbing([mul])
                replaced[mi] = fused
                removed.insert(si)
                break
            }
        }
        return rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
    }
}
