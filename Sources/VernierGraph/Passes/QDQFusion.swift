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
    /// A Conv whose output is not quantized again (QDQ exports that quantize only the
    /// inputs of convolutions, as TensorRT's and `vernier quantize`'s do; a conv feeding
    /// a residual Add) becomes a QLinearConv without y_scale and y_zero_point (inputs 6
    /// and 7 empty): Vernier's internal form that writes the real values in fp32, keeping
    /// a fused residual sum (its addend last, after the bias slot) and activation.
    ///
    /// Fused only when every parameter is an initializer: x and y per tensor, weights s8
    /// with zero points 0 (per tensor, or per output channel along axis 0), and the
    /// Conv's output read by the QuantizeLinear alone. The bias is either int32 with zero
    /// point 0 and scale x_scale * w_scale (what ONNX Runtime's quantizer writes) or an
    /// fp32 initializer (what `vernier quantize` and TensorRT-style QDQ exports keep),
    /// which is rounded to int32 in those units, as a quantizer would: an error of at
    /// most half a product step, far below the output's step. A DequantizeLinear whose
    /// output has other readers stays for them.
    public static func fuseQDQConv(_ inferred: InferredGraph) -> InferredGraph {
        var pattern = QDQPattern(inferred)
        for (ci, conv) in inferred.graph.nodes.enumerated() where conv.isDefaultDomain && conv.opType == "Conv" {
            let sum = conv.hasFusedSum
            let regular = conv.inputs.count - (sum ? 1 : 0)
            guard (2...3).contains(regular), let y = conv.outputs.first,
                  let x = pattern.activation(conv.inputs[0]),
                  let w = pattern.weights(conv.inputs[1], channelAxis: 0) else { continue }
            // Requantized when a QuantizeLinear alone reads the result (not with a fused sum).
            let q = sum ? nil : pattern.quantization(of: y)
            var bias: QDQPattern.Bias?
            if regular == 3, !conv.inputs[2].isEmpty {
                guard let b = pattern.bias(conv.inputs[2], x: x, w: w, for: conv) else { continue }
                bias = b
            }
            var fused = conv
            fused.opType = "QLinearConv"
            fused.inputs = Array(x.node.inputs) + Array(w.node.inputs) + (q.map { Array($0.node.inputs.dropFirst()) } ?? ["", ""])
                + (bias.map { [$0.quantized] } ?? (sum ? [""] : [])) + (sum ? [conv.inputs[conv.inputs.count - 1]] : [])
            pattern.replace(ci, with: fused, dequantizations: [x.match, w.match] + (bias?.dequantization.map { [$0] } ?? []),
                            quantization: q)
        }
        return pattern.result
    }

    /// Turns `QuantizeLinear(MatMul(DequantizeLinear(xq), DequantizeLinear(wq)))` with a
    /// constant s8 right operand (zero points 0; one scale, or one per output column
    /// along axis 1) into the `QLinearMatMul(xq, xs, xz, wq, ws, 0, ys, yz)` it stands
    /// for, as `fuseQDQConv` does for convolutions: a quantized transformer's Linear
    /// layers then run on int8 kernels. Products of two activations (attention) stay.
    public static func fuseQDQMatMul(_ inferred: InferredGraph) -> InferredGraph {
        var pattern = QDQPattern(inferred)
        for (mi, matmul) in inferred.graph.nodes.enumerated()
        where matmul.isDefaultDomain && matmul.opType == "MatMul" && matmul.inputs.count == 2 && matmul.attributes.isEmpty {
            guard let y = matmul.outputs.first, let q = pattern.quantization(of: y),
                  let x = pattern.activation(matmul.inputs[0]), (inferred.type(of: matmul.inputs[0])?.shape?.count ?? 0) >= 2,
                  let w = pattern.weights(matmul.inputs[1], channelAxis: 1, rank: 2) else { continue }
            var fused = matmul
            fused.opType = "QLinearMatMul"
            fused.inputs = Array(x.node.inputs) + Array(w.node.inputs) + Array(q.node.inputs.dropFirst())
            pattern.replace(mi, with: fused, dequantizations: [x.match, w.match], quantization: q)
        }
        return pattern.result
    }

    /// Turns the QDQ pattern of a quantized Gemm (a Linear layer as PyTorch exports it:
    /// torchvision classifiers, ViT's attention output projections),
    ///
    ///     QuantizeLinear(Gemm(DequantizeLinear(xq), DequantizeLinear(wq), DequantizeLinear(bq)), ys, yz)
    ///
    /// into ONNX Runtime's `com.microsoft.QGemm(xq, xs, xz, wq, ws, 0, bq, ys, yz)`, as ONNX
    /// Runtime's QDQ transformer does, so the product runs on int8 kernels instead of an
    /// fp32 Gemm on dequantized weights. Same conditions as `fuseQDQConv`: constant s8
    /// weights with zero points 0, per tensor or per output column (axis 0 with transB,
    /// 1 without), a bias of N values either int32 in the product's units or fp32 rounded
    /// into them; alpha and beta 1, no transA. Without a QuantizeLinear as the sole
    /// reader the QGemm writes fp32 (no y_scale).
    public static func fuseQDQGemm(_ inferred: InferredGraph) -> InferredGraph {
        var pattern = QDQPattern(inferred)
        let gemmAttributes: Set<String> = ["alpha", "beta", "transA", "transB"]
        for (gi, gemm) in inferred.graph.nodes.enumerated()
        where gemm.isDefaultDomain && gemm.opType == "Gemm" && (2...3).contains(gemm.inputs.count) {
            guard gemm.attributes.allSatisfy({ gemmAttributes.contains($0.name) }),
                  (try? gemm.int("transA", default: 0)) == 0, (try? gemm.float("alpha", default: 1)) == 1,
                  (try? gemm.float("beta", default: 1)) == 1, let transB = try? gemm.int("transB", default: 0) != 0,
                  let y = gemm.outputs.first, let x = pattern.activation(gemm.inputs[0]),
                  let w = pattern.weights(gemm.inputs[1], channelAxis: transB ? 0 : 1, rank: 2) else { continue }
            var bias: QDQPattern.Bias?
            if let name = gemm.input(2) {
                guard let b = pattern.bias(name, x: x, w: w, for: gemm) else { continue }
                bias = b
            }
            let q = pattern.quantization(of: y)
            var fused = gemm
            fused.opType = "QGemm"
            fused.domain = "com.microsoft"
            fused.attributes = gemm.attributes.filter { $0.name == "transB" }
            fused.inputs = Array(x.node.inputs) + Array(w.node.inputs) + [bias?.quantized ?? ""]
                + (q.map { Array($0.node.inputs.dropFirst()) } ?? [])
            pattern.replace(gi, with: fused, dequantizations: [x.match, w.match] + (bias?.dequantization.map { [$0] } ?? []),
                            quantization: q)
        }
        return pattern.result
    }
}

extension GraphPasses {
    /// The ops that move or select elements without changing them: on the integers
    /// of a quantized tensor they give what they give on its real values.
    static let valuePreservingOps: Set<String> = ["Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice", "Gather"]

    /// Moves the data-movement ops of a QDQ graph onto the 8-bit tensors:
    /// `QuantizeLinear(Reshape(DequantizeLinear(xq, s, z)), s, z)` with the same scale
    /// and zero point on both sides is `Reshape(xq)` exactly. Dequantizing gives (xq - z) * s
    /// within half an fp32 step, and dividing by s again lands within 2^-16 of the
    /// integer, so the QuantizeLinear gives back xq. Quantizers put Q/DQ pairs around
    /// every Reshape and Transpose of a quantized transformer (8 per BERT layer); ONNX
    /// Runtime drops them the same way. Only the data input (0) moves to the 8-bit
    /// value; a DequantizeLinear with other readers stays for them.
    public static func moveDataMovementOntoQuantizedValues(_ inferred: InferredGraph) -> InferredGraph {
        var pattern = QDQPattern(inferred)
        for (mi, move) in inferred.graph.nodes.enumerated()
        where move.isDefaultDomain && valuePreservingOps.contains(move.opType) && move.outputs.count == 1 {
            guard let data = move.inputs.first, let y = move.outputs.first,
                  let (di, dq) = pattern.dequantization(of: data), let q = pattern.quantization(of: y),
                  pattern.sameParameters(dq, q.node) else { continue }
            var moved = move
            moved.inputs[0] = dq.inputs[0]
            pattern.replace(mi, with: moved, dequantizations: [QDQPattern.Match(index: di, node: dq)], quantization: q)
        }
        return pattern.result
    }
}

extension GraphPasses {
    /// Turns `QuantizeLinear(Add(DequantizeLinear(aq), DequantizeLinear(bq)))` (and Mul)
    /// with one 8-bit type and per-tensor parameters into ONNX Runtime's
    /// `com.microsoft.QLinearAdd(aq, as, az, bq, bs, bz, cs, cz)` (QLinearMul), as ONNX
    /// Runtime's QDQ transformer does: one pass over 8-bit data instead of two
    /// dequantizations, the fp32 op and a quantization. The kernel takes the same fp32
    /// steps, so results are unchanged. A quantized BERT layer has ten such Adds (biases,
    /// mask, residuals, GELU's + 1) and two Muls.
    public static func fuseQDQBinary(_ inferred: InferredGraph) -> InferredGraph {
        var pattern = QDQPattern(inferred)
        let fused: [String: String] = ["Add": "QLinearAdd", "Mul": "QLinearMul"]
        for (ni, node) in inferred.graph.nodes.enumerated() where node.isDefaultDomain && node.inputs.count == 2 {
            guard let opType = fused[node.opType], let y = node.outputs.first, let q = pattern.quantization(of: y),
                  let a = pattern.activation(node.inputs[0]), let b = pattern.activation(node.inputs[1]),
                  let type = inferred.type(of: a.node.inputs[0])?.elementType,
                  inferred.type(of: b.node.inputs[0])?.elementType == type, inferred.type(of: q.node.outputs[0])?.elementType == type
            else { continue }
            var binary = node
            binary.opType = opType
            binary.domain = "com.microsoft"
            binary.inputs = Array(a.node.inputs) + Array(b.node.inputs) + Array(q.node.inputs.dropFirst())
            let dequantizations = a.match.index == b.match.index ? [a.match] : [a.match, b.match]
            pattern.replace(ni, with: binary, dequantizations: dequantizations, quantization: q)
        }
        return pattern.result
    }
}

extension GraphPasses {
    /// Turns `QuantizeLinear(Sigmoid(DequantizeLinear(xq)))` with one 8-bit type and
    /// per-tensor parameters into ONNX Runtime's `com.microsoft.QLinearSigmoid(xq, xs,
    /// xz, ys, yz)`, whose kernel maps each of the 256 input values once and looks the
    /// rest up, with the same fp32 steps, so results are unchanged. A quantized
    /// EfficientNet-B0 has 65 (its SiLU gates and squeeze-and-excitation scales).
    ///
    /// A QDQ HardSigmoid (MobileNetV3's HardSwish gates and squeeze-and-excitation
    /// scales), which ONNX Runtime has no QLinear op for, becomes the same kind of lookup
    /// in Vernier's internal form: the HardSigmoid node with `fused_qlinear = 1` and
    /// QLinearSigmoid's five inputs.
    public static func fuseQDQUnary(_ inferred: InferredGraph) -> InferredGraph {
        var pattern = QDQPattern(inferred)
        for (ni, node) in inferred.graph.nodes.enumerated() where node.isDefaultDomain && node.inputs.count == 1 {
            guard ["Sigmoid", "HardSigmoid"].contains(node.opType), let y = node.outputs.first, let q = pattern.quantization(of: y),
                  let x = pattern.activation(node.inputs[0]), let type = inferred.type(of: x.node.inputs[0])?.elementType,
                  inferred.type(of: q.node.outputs[0])?.elementType == type
            else { continue }
            var unary = node
            if node.opType == "Sigmoid" {
                unary.opType = "QLinearSigmoid"
                unary.domain = "com.microsoft"
            } else {
                unary.attributes.append(Attribute(name: FusedAttributes.qlinear, value: .int(1)))
            }
            unary.inputs = Array(x.node.inputs) + Array(q.node.inputs.dropFirst())
            pattern.replace(ni, with: unary, dequantizations: [x.match], quantization: q)
        }
        return pattern.result
    }
}

/// The pieces of QDQ patterns in one graph, and the rewrite that folds them into
/// QLinear* nodes.
private struct QDQPattern {
    struct Match {
        let index: Int
        let node: Node
    }
    /// A per-tensor DequantizeLinear of an 8-bit activation.
    struct Activation {
        let match: Match
        let scale: Double
        var node: Node { match.node }
    }
    /// A DequantizeLinear of constant s8 weights with zero points 0.
    struct Weights {
        let match: Match
        let scales: [Double]
        /// Output channels (Conv: dim 0) or columns (MatMul: dim 1).
        let channels: Int
        var node: Node { match.node }
    }

    let inferred: InferredGraph
    private(set) var graph: Graph
    let uses: ValueUses
    private(set) var initializers: [String: TensorData]
    private var added: [TensorData] = []
    private var producer: [String: Int] = [:]
    private var removed = Set<Int>()
    private var replaced: [Int: Node] = [:]
    private static let bytes: Set<ElementType> = [.uint8, .int8]

    init(_ inferred: InferredGraph) {
        self.inferred = inferred
        graph = inferred.graph
        uses = ValueUses(graph)
        initializers = graph.initializerIndex
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
    }

    var result: InferredGraph {
        var result = GraphPasses.rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
        for data in added { result.facts[data.name] = ValueFacts(type: data.type) }
        return result
    }

    /// A new int32 initializer holding `values / scales` (one scale, or one per value)
    /// rounded to nearest, for `node`'s bias; nil when a value leaves int32.
    mutating func addInt32Bias(_ values: [Double], scales: [Double], for node: Node) -> String? {
        var bytes: [UInt8] = []
        for (i, v) in values.enumerated() {
            let q = (v / scales[scales.count == 1 ? 0 : i]).rounded()
            guard q.isFinite, abs(q) < Double(Int32.max) else { return nil }
            withUnsafeBytes(of: Int32(q).littleEndian) { bytes.append(contentsOf: $0) }
        }
        let name = GraphPasses.uniqueName("\(node.displayName).bias_int32", taken: initializers)
        let data = TensorData(name: name, elementType: .int32, dims: [values.count], storage: .bytes(bytes))
        initializers[name] = data
        graph.initializers.append(data)
        added.append(data)
        return name
    }

    /// A bias in the int32 units of the product of `x` and `w`.
    struct Bias {
        let quantized: String
        /// The bias's DequantizeLinear, when the graph had it quantized already.
        let dequantization: Match?
    }

    /// `value` as one bias per channel of `w` in the product's units (x_scale *
    /// w_scale): the DequantizeLinear of such int32 values (what ONNX Runtime's quantizer
    /// writes), or fp32 values rounded into them as a new initializer (what `vernier
    /// quantize` and TensorRT-style QDQ exports keep): an error of at most half a product
    /// step. Nil for any other bias.
    mutating func bias(_ value: String, x: Activation, w: Weights, for node: Node) -> Bias? {
        if let (bi, dqb) = dequantization(of: value), let bq = initializers[dqb.inputs[0]],
           bq.elementType == .int32, bq.elementCount == w.channels,
           let bScales = values(dqb.inputs[1], [.float]), bScales.count == w.scales.count,
           values(dqb.inputs[2], [.int32])?.allSatisfy({ $0 == 0 }) == true,
           zip(bScales, w.scales).allSatisfy({ abs($0 - x.scale * $1) <= 1e-5 * $0 }) {
            return Bias(quantized: dqb.inputs[0], dequantization: Match(index: bi, node: dqb))
        }
        if let values = values(value, [.float]), values.count == w.channels,
           let quantized = addInt32Bias(values, scales: w.scales.map { x.scale * $0 }, for: node) {
            return Bias(quantized: quantized, dequantization: nil)
        }
        return nil
    }

    /// The values of an initializer of one of `types`.
    func values(_ name: String, _ types: Set<ElementType>) -> [Double]? {
        guard let t = initializers[name], types.contains(t.elementType) else { return nil }
        return t.elementType == .float ? t.doubleValues() : t.integerValues()?.map(Double.init)
    }

    /// The DequantizeLinear (three inputs, not blocked) that produces `value`.
    func dequantization(of value: String) -> (index: Int, node: Node)? {
        guard let index = producer[value], !removed.contains(index) else { return nil }
        let node = graph.nodes[index]
        guard node.isDefaultDomain, node.opType == "DequantizeLinear", node.inputs.count == 3,
              (try? node.int("block_size", default: 0)) == 0 else { return nil }
        return (index, node)
    }

    /// The per-tensor QuantizeLinear that alone reads `value`.
    func quantization(of value: String) -> Match? {
        guard let index = uses.soleReader(of: value), !removed.contains(index) else { return nil }
        let q = graph.nodes[index]
        guard q.isDefaultDomain, q.opType == "QuantizeLinear", q.inputs.count == 3, q.inputs[0] == value,
              !q.hasAttribute("output_dtype"), values(q.inputs[1], [.float])?.count == 1,
              values(q.inputs[2], Self.bytes)?.count == 1 else { return nil }
        return Match(index: index, node: q)
    }

    /// Whether a per-tensor DequantizeLinear and a QuantizeLinear use one scale, zero
    /// point and 8-bit type.
    func sameParameters(_ dq: Node, _ q: Node) -> Bool {
        guard let scale = values(dq.inputs[1], [.float]), scale.count == 1, scale == values(q.inputs[1], [.float]),
              let zero = values(dq.inputs[2], Self.bytes), zero == values(q.inputs[2], Self.bytes),
              let type = initializers[dq.inputs[2]]?.elementType, type == initializers[q.inputs[2]]?.elementType
        else { return false }
        return true
    }

    /// `value` as the per-tensor dequantization of an 8-bit activation.
    func activation(_ value: String) -> Activation? {
        guard let (index, node) = dequantization(of: value), let scale = values(node.inputs[1], [.float]),
              scale.count == 1, scale[0] > 0, values(node.inputs[2], Self.bytes)?.count == 1,
              let type = inferred.type(of: node.inputs[0])?.elementType, Self.bytes.contains(type) else { return nil }
        return Activation(match: Match(index: index, node: node), scale: scale[0])
    }

    /// `value` as the dequantization of constant s8 weights (of `rank` dims, or 3 and
    /// more when nil) with zero points 0, scaled per tensor or along `channelAxis`.
    func weights(_ value: String, channelAxis: Int, rank: Int? = nil) -> Weights? {
        guard let (index, node) = dequantization(of: value), let wq = initializers[node.inputs[0]],
              wq.elementType == .int8, rank.map({ wq.dims.count == $0 }) ?? (wq.dims.count >= 3),
              let scales = values(node.inputs[1], [.float]), scales.allSatisfy({ $0 > 0 }),
              let zeros = values(node.inputs[2], [.int8]), zeros.allSatisfy({ $0 == 0 }), zeros.count == scales.count
        else { return nil }
        let channels = wq.dims[channelAxis]
        guard let axis = try? node.int("axis", default: 1) else { return nil }
        guard scales.count == 1
            || (scales.count == channels && (axis == channelAxis || axis == channelAxis - wq.dims.count)) else { return nil }
        return Weights(match: Match(index: index, node: node), scales: scales, channels: channels)
    }

    /// Puts `fused` (reading the 8-bit operands, writing `quantization`'s output, or the
    /// node's own when nil) in node `index`'s place; drops the QuantizeLinear and the
    /// DequantizeLinears no other node reads.
    mutating func replace(_ index: Int, with fused: Node, dequantizations: [Match], quantization: Match?) {
        var fused = fused
        if let quantization { fused.outputs = [quantization.node.outputs[0]] }
        var absorbed: [Node] = []
        for match in dequantizations where uses.soleReader(of: match.node.outputs[0]) == index {
            removed.insert(match.index)
            absorbed.append(match.node)
        }
        fused.sourceNodes = absorbed.flatMap(\.originalNodes) + graph.nodes[index].absorbing(quantization.map { [$0.node] } ?? [])
        if let quantization { removed.insert(quantization.index) }
        replaced[index] = fused
    }
}
