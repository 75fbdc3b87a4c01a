import VernierGraph
import VernierTestSupport

/// Small models for the pruning tests, with seeded random weights: a residual block,
/// a DenseNet-like concat, a MobileNet-like depthwise block, Flatten/Reshape into Gemm.
enum PruningTestModels {
    /// A GraphBuilder with helpers for random weights.
    struct Builder {
        var b = GraphBuilder()
        var rng = SplitMix64(seed: 7)

        mutating func random(_ name: String, _ dims: [Int], zeroing: (Int) -> Bool = { _ in false }) {
            let count = dims.reduce(1, *)
            var values = (0..<count).map { _ in rng.signedUnit() }
            for i in values.indices where zeroing(i) { values[i] = 0 }
            b.initializers.append(TensorData(floats: values, name: name, dims: dims))
        }

        /// Positive values (BatchNormalization variances).
        mutating func positive(_ name: String, _ count: Int) {
            b.initializers.append(TensorData(floats: (0..<count).map { _ in 0.5 + abs(rng.signedUnit()) }, name: name, dims: [count]))
        }

        mutating func conv(_ name: String, _ x: String, _ out: String, inChannels: Int, outChannels: Int, kernel: Int = 3,
                           group: Int = 1, bias: Bool = true, zeroingOutput channel: Int? = nil, zeroingInput inChannel: Int? = nil) {
            let perGroup = inChannels / group
            let area = kernel * kernel
            let block = perGroup * area
            random("\(name).w", [outChannels, perGroup, kernel, kernel], zeroing: { i in
                i / block == channel || (i / area) % perGroup == inChannel
            })
            var inputs = [x, "\(name).w"]
            if bias {
                random("\(name).b", [outChannels], zeroing: { i in i == channel })
                inputs.append("\(name).b")
            }
            b.node("Conv", inputs, [out], ["pads": .ints(Array(repeating: kernel / 2, count: 4)), "group": .int(group)])
            b.nodes[b.nodes.count - 1].name = name
            b.nodes[b.nodes.count - 1].displayName = name
        }

        mutating func batchNorm(_ name: String, _ x: String, _ out: String, channels: Int, zeroing channel: Int? = nil) {
            random("\(name).scale", [channels], zeroing: { $0 == channel })
            random("\(name).bias", [channels])
            random("\(name).mean", [channels])
            positive("\(name).var", channels)
            b.node("BatchNormalization", [x, "\(name).scale", "\(name).bias", "\(name).mean", "\(name).var"], [out])
            b.nodes[b.nodes.count - 1].name = name
            b.nodes[b.nodes.count - 1].displayName = name
        }

        mutating func op(_ type: String, _ inputs: [String], _ out: String, _ attributes: [String: AttributeValue] = [:]) {
            b.node(type, inputs, [out], attributes)
            b.nodes[b.nodes.count - 1].displayName = out
        }

        mutating func finish(output: String, shape: [Int]) -> Model {
            b.outputs = [ValueInfo(name: output, type: .tensor(TensorType(.float, known: shape)))]
            return b.model
        }
    }

    /// stem conv (8) -> relu -> a; a -> conv1 (6) -> relu -> conv2 (8) -> bn; add(a, bn) -> relu ->
    /// head conv (4) -> y. The stem's and conv2's channels are one group; channel 5 of that group
    /// has zero weights in every tensor that scores it (producers, BN scale, consumers).
    static func residual() -> Model {
        var m = Builder()
        m.b.input("x", .float, [.value(1), .value(3), .value(8), .value(8)])
        m.conv("stem", "x", "stem_out", inChannels: 3, outChannels: 8, zeroingOutput: 5)
        m.op("Relu", ["stem_out"], "a")
        m.conv("conv1", "a", "c1", inChannels: 8, outChannels: 6, zeroingInput: 5)
        m.op("Relu", ["c1"], "r1")
        m.conv("conv2", "r1", "c2", inChannels: 6, outChannels: 8, zeroingOutput: 5)
        m.batchNorm("bn2", "c2", "n2", channels: 8, zeroing: 5)
        m.op("Add", ["a", "n2"], "sum")
        m.op("Relu", ["sum"], "r2")
        m.conv("head", "r2", "y", inChannels: 8, outChannels: 4, zeroingInput: 5)
        return m.finish(output: "y", shape: [1, 4, 8, 8])
    }

    /// DenseNet-like: convA (4) -> relu -> a; convB(a) (3) -> b; concat(x, a, b) (2+4+3) -> bn -> relu
    /// -> conv_c (5) -> y. The graph input's 2 channels are fixed; a's and b's groups are not.
    static func dense() -> Model {
        var m = Builder()
        m.b.input("x", .float, [.value(1), .value(2), .value(6), .value(6)])
        m.conv("convA", "x", "ca", inChannels: 2, outChannels: 4)
        m.op("Relu", ["ca"], "a")
        m.conv("convB", "a", "b", inChannels: 4, outChannels: 3)
        m.op("Concat", ["x", "a", "b"], "cat", ["axis": .int(1)])
        m.batchNorm("bn", "cat", "n", channels: 9)
        m.op("Relu", ["n"], "r")
        m.conv("convC", "r", "y", inChannels: 9, outChannels: 5, kernel: 1)
        return m.finish(output: "y", shape: [1, 5, 6, 6])
    }

    /// MobileNet-like: expand (8) -> Clip (relu6) -> depthwise (group 8) -> relu -> project (4)
    /// -> GlobalAveragePool -> Flatten -> Gemm (10) -> y.
    static func depthwise() -> Model {
        var m = Builder()
        m.b.input("x", .float, [.value(1), .value(3), .value(8), .value(8)])
        m.b.initializers.append(TensorData(floats: [0], name: "zero", dims: []))
        m.b.initializers.append(TensorData(floats: [6], name: "six", dims: []))
        m.conv("expand", "x", "e", inChannels: 3, outChannels: 8, kernel: 1)
        m.op("Clip", ["e", "zero", "six"], "e6")
        m.conv("dw", "e6", "d", inChannels: 8, outChannels: 8, group: 8)
        m.op("Relu", ["d"], "dr")
        m.conv("project", "dr", "p", inChannels: 8, outChannels: 4, kernel: 1)
        m.op("GlobalAveragePool", ["p"], "gap")
        m.op("Flatten", ["gap"], "flat", ["axis": .int(1)])
        m.random("fc.w", [10, 4])
        m.random("fc.b", [10])
        m.op("Gemm", ["flat", "fc.w", "fc.b"], "y", ["transB": .int(1)])
        return m.finish(output: "y", shape: [1, 10])
    }

    /// conv (6) -> relu -> Flatten or Reshape [1, 96] -> Gemm (5, transB as given) -> relu -> Gemm (3) -> y.
    /// Channel 2 of the conv has zero weights, and its 16 features in the first Gemm too.
    static func flattenGemm(transB: Bool, reshape: Bool) -> Model {
        var m = Builder()
        m.b.input("x", .float, [.value(1), .value(2), .value(4), .value(4)])
        m.conv("conv", "x", "c", inChannels: 2, outChannels: 6, zeroingOutput: 2)
        m.op("Relu", ["c"], "r")
        if reshape {
            m.b.ints("flat_shape", [1, 96])
            m.op("Reshape", ["r", "flat_shape"], "flat")
        } else {
            m.op("Flatten", ["r"], "flat", ["axis": .int(1)])
        }
        // Feature f of the flattened tensor is channel f / 16.
        m.random("fc1.w", transB ? [5, 96] : [96, 5], zeroing: { i in (transB ? i % 96 : i / 5) / 16 == 2 })
        m.random("fc1.b", [5])
        m.op("Gemm", ["flat", "fc1.w", "fc1.b"], "h", ["transB": .int(transB ? 1 : 0)])
        m.op("Relu", ["h"], "hr")
        m.random("fc2.w", [5, 3])
        m.op("Gemm", ["hr", "fc2.w"], "y")
        return m.finish(output: "y", shape: [1, 3])
    }

    /// One BERT-style self-attention block on x [1, 4, 16] with 4 heads of 4: Q, K, V as
    /// MatMul + Add bias, head split by a Reshape whose shape a Concat of constants builds,
    /// Q·Kᵀ / 2, Softmax, ·V, head merge by a stored shape [1, 4, 16], output projection,
    /// residual Add with x -> y. Head 1 has zero weights in Q, K, V and the output projection.
    static func attention() -> Model {
        var m = Builder()
        m.b.input("x", .float, [.value(1), .value(4), .value(16)])
        let zeroHead1Columns: (Int) -> Bool = { i in (i % 16) / 4 == 1 }   // [16, 16]: column j is head j / 4
        for p in ["q", "k", "v"] {
            m.random("\(p).w", [16, 16], zeroing: zeroHead1Columns)
            m.random("\(p).b", [16], zeroing: { $0 / 4 == 1 })
            m.op("MatMul", ["x", "\(p).w"], "\(p)_mm")
            m.op("Add", ["\(p)_mm", "\(p).b"], "\(p)_add")
            for (i, v) in [1, 4, 4, 4].enumerated() { m.b.ints("\(p)_shape\(i)", [v]) }
            m.op("Concat", (0..<4).map { "\(p)_shape\($0)" }, "\(p)_shape", ["axis": .int(0)])
            m.op("Reshape", ["\(p)_add", "\(p)_shape"], "\(p)_heads")
        }
        m.op("Transpose", ["q_heads"], "qt", ["perm": .ints([0, 2, 1, 3])])
        m.op("Transpose", ["k_heads"], "kt", ["perm": .ints([0, 2, 3, 1])])
        m.op("Transpose", ["v_heads"], "vt", ["perm": .ints([0, 2, 1, 3])])
        m.op("MatMul", ["qt", "kt"], "scores")
        m.b.initializers.append(TensorData(floats: [2], name: "sqrt_d", dims: []))
        m.op("Div", ["scores", "sqrt_d"], "scaled")
        m.op("Softmax", ["scaled"], "probs", ["axis": .int(-1)])
        m.op("MatMul", ["probs", "vt"], "context")
        m.op("Transpose", ["context"], "ct", ["perm": .ints([0, 2, 1, 3])])
        m.b.ints("merge_shape", [1, 4, 16])
        m.op("Reshape", ["ct", "merge_shape"], "merged")
        m.random("o.w", [16, 16], zeroing: { i in (i / 16) / 4 == 1 })   // row r is head r / 4
        m.op("MatMul", ["merged", "o.w"], "o_mm")
        m.op("Add", ["o_mm", "x"], "y")
        return m.finish(output: "y", shape: [1, 4, 16])
    }
}
