extension GraphPasses {
    /// Turns the QDQ pattern of a quantized convolution,
    ///
    ///     QuantizeLinear(y, ys, yz) <- Conv(DequantizeLinear(xq, xs, xz),
    ///                                       DequantizeLinear(wq, ws, 0),
    ///                                       DequantizeLinear(bq, xs * ws, 0))
    ///
    /// into the `QLinearConv(xq, xs, xz, wq, ws, 0, ys, yz, bq)` it stands for, so the
    /// convolution runs on int8 kernels and its activations stay 8-bit, as ONNX Runtime
    /// does with such models, instead of dequantizing the activations and running an
    /// fp32 convolution. An activation already fused into the Conv stays on it
    /// (`fused_activation`, applied before requantization).
    ///
    /// Fused only when every parameter is an initializer: x and y per tensor, weights s8
    /// with zero points 0 (per tensor, or per output channel along axis 0), the bias
    /// int32 with zero point 0 and its scale x_scale * w_scale (what quantizers write),
    /// and the Conv's output read by the QuantizeLinear alone. A DequantizeLinear whose
    /// output has other readers stays for them.
    public static func fuseQDQConv(_ inferred: InferredGraph) -> InferredGraph {
        var graph = inferred.graph
        let uses = ValueUses(graph)
        let initializers = graph.initializerIndex
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        var removed = Set<Int>()
        var replaced: [Int: Node] = [:]

        /// The DequantizeLinear node producing `value`, with its operands, when they are
        /// per-tensor or per-axis-0 initializers of the expected types.
        func dequantization(of value: String) -> (index: Int, node: Node)? {
            guard let index = producer[value], !removed.contains(index) else { return nil }
            let node = graph.nodes[index]
            guard node.isDefaultDomain, node.opType == "DequantizeLinear", node.inputs.count == 3,
                  (try? node.int("block_size", default: 0)) == 0 else { return nil }
            return (index, node)
        }
        func values(_ name: String, _ types: Set<ElementType>) -> [Double]? {
            guard let t = initializers[name], types.contains(t.elementType) else { return nil }
            return t.elementType == .float ? t.doubleValues() : t.integerValues()?.map(Double.init)
        }
        let bytes: Set<ElementType> = [.uint8, .int8]

        for (ci, conv) in graph.nodes.enumerated()
        where conv.isDefaultDomain && conv.opType == "Conv" && (2...3).contains(conv.inputs.count)
            && !conv.hasAttribute(FusedAttributes.sum) {
            // y = Q(Conv(...)), per tensor.
            guard let y = conv.outputs.first, let qi = uses.soleReader(of: y), !removed.contains(qi) else { continue }
            let q = graph.nodes[qi]
            guard q.isDefaultDomain, q.opType == "QuantizeLinear", q.inputs.count == 3, q.inputs[0] == y,
                  !q.hasAttribute("output_dtype"), values(q.inputs[1], [.float])?.count == 1,
                  values(q.inputs[2], bytes)?.count == 1 else { continue }
            // x = DQ(xq), per tensor.
            guard let (xi, dqx) = dequantization(of: conv.inputs[0]),
                  values(dqx.inputs[1], [.float])?.count == 1, let xScale = values(dqx.inputs[1], [.float])?.first,
                  values(dqx.inputs[2], bytes)?.count == 1,
                  let xqType = inferred.type(of: dqx.inputs[0])?.elementType, bytes.contains(xqType) else { continue }
            // w = DQ(wq) with s8 weights and zero points 0.
            guard let (wi, dqw) = dequantization(of: conv.inputs[1]), let wq = initializers[dqw.inputs[0]],
                  wq.elementType == .int8, wq.dims.count >= 3,
                  let wScales = values(dqw.inputs[1], [.float]), wScales.allSatisfy({ $0 > 0 }),
                  let wZeros = values(dqw.inputs[2], [.int8]), wZeros.allSatisfy({ $0 == 0 }),
                  wZeros.count == wScales.count else { continue }
            let channels = wq.dims[0]
            guard wScales.count == 1 || (wScales.count == channels && (try? dqw.int("axis", default: 1)) == 0) else { continue }
            // b = DQ(bq) in the product's units.
            var bias: (index: Int, quantized: String)?
            if conv.inputs.count == 3, !conv.inputs[2].isEmpty {
                guard let (bi, dqb) = dequantization(of: conv.inputs[2]), let bq = initializers[dqb.inputs[0]],
                      bq.elementType == .int32, bq.elementCount == channels,
                      let bScales = values(dqb.inputs[1], [.float]), bScales.count == wScales.count,
                      values(dqb.inputs[2], [.int32])?.allSatisfy({ $0 == 0 }) == true,
                      zip(bScales, wScales).allSatisfy({ abs($0 - xScale * $1) <= 1e-5 * $0 }) else { continue }
                bias = (bi, dqb.inputs[0])
            }

            var fused = conv
            fused.opType = "QLinearConv"
            fused.inputs = [dqx.inputs[0], dqx.inputs[1], dqx.inputs[2], dqw.inputs[0], dqw.inputs[1], dqw.inputs[2],
                            q.inputs[1], q.inputs[2]] + (bias.map { [$0.quantized] } ?? [])
            fused.outputs = [q.outputs[0]]
            var absorbed: [Node] = []
            for (index, node) in [(xi, dqx), (wi, dqw)] + (bias.map { [($0.index, graph.nodes[$0.index])] } ?? [])
            where uses.soleReader(of: node.outputs[0]) == ci {
                removed.insert(index)
                absorbed.append(node)
            }
            fused.sourceNodes = absorbed.flatMap(\.originalNodes) + conv.absorbing([q])
            removed.insert(qi)
            replaced[ci] = fused
        }
        return rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
    }
}
