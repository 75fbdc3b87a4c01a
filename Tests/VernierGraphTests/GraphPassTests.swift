import Testing
import VernierGraph
import VernierTestSupport

/// Graph passes: each rewrites only what it should, keeps the names of the original
/// nodes, and leaves graphs it cannot rewrite alone.
struct GraphPassTests {
    /// x[1,2,4,4] -> Conv(W[2,2,1,1], b) -> BatchNormalization -> Relu -> y
    func convBNRelu() -> GraphBuilder {
        var b = GraphBuilder()
        b.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        b.initializers.append(TensorData(floats: [1, 2, 3, 4], name: "W", dims: [2, 2, 1, 1]))
        b.floats("b", [0.5, -1])
        b.floats("scale", [2, 3])
        b.floats("shift", [1, 0])
        b.floats("mean", [0.5, 1])
        b.floats("var", [3, 8])
        b.node("Conv", ["x", "W", "b"], ["c"])
        b.node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"], ["epsilon": .float(1)])
        b.node("Relu", ["n"], ["y"])
        b.output("y")
        return b
    }

    @Test func batchNormFoldsIntoTheConvAndReluFusesAfterIt() throws {
        let optimized = GraphPasses.optimize(try convBNRelu().infer())
        let nodes = optimized.graph.nodes
        #expect(nodes.count == 1)
        let conv = try #require(nodes.first)
        #expect(conv.opType == "Conv")
        #expect(conv.originalNodes == ["c", "n", "y"])
        #expect(conv.outputs == ["y"])
        #expect(try conv.string(FusedAttributes.activation) == "Relu")
        // channel 0: s = 2 / sqrt(3 + 1) = 1;   W' = [1, 2];  b' = (0.5 - 0.5) * 1 + 1 = 1
        // channel 1: s = 3 / sqrt(8 + 1) = 1;   W' = [3, 4];  b' = (-1 - 1) * 1 + 0 = -2
        let inits = optimized.graph.initializerIndex
        let w = try #require(inits[conv.inputs[1]]?.doubleValues())
        let bias = try #require(inits[conv.inputs[2]]?.doubleValues())
        #expect(w == [1, 2, 3, 4])
        #expect(bias == [1, -2])
        #expect(inits["W"] == nil, "the unfolded weights are dropped")
    }

    @Test func batchNormFoldingScalesEachOutputChannel() throws {
        var b = convBNRelu()
        b.initializers.removeAll { $0.name == "scale" }
        b.floats("scale", [4, -6])
        let optimized = GraphPasses.optimize(try b.infer())
        let conv = try #require(optimized.graph.nodes.first)
        let inits = optimized.graph.initializerIndex
        // s = [4/2, -6/3] = [2, -2]
        #expect(try #require(inits[conv.inputs[1]]?.doubleValues()) == [2, 4, -6, -8])
        // b' = (b - mean) * s + shift = [(0.5 - 0.5) * 2 + 1, (-1 - 1) * -2 + 0]
        let expectedBias: [Double] = [1, 4]
        #expect(try #require(inits[conv.inputs[2]]?.doubleValues()) == expectedBias)
    }

    /// ConvTranspose weights are `[IC, OC/group, k...]`: output channel `o` owns the
    /// second index (one group), or a group's run of input channels (two groups).
    @Test(arguments: [(1, [2, 2, 1, 1], [2, -4, 6, -8] as [Double]), (2, [4, 1, 1, 1], [2, 4, -6, -8])])
    func batchNormFoldsIntoAConvTransposeByOutputChannel(group: Int, weightDims: [Int], expected: [Double]) throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, weightDims[0], 3, 3].map(Dim.value))
        b.initializers.append(TensorData(floats: [1, 2, 3, 4], name: "W", dims: weightDims))
        b.floats("scale", [4, -6])
        b.floats("shift", [1, 0])
        b.floats("mean", [0.5, 1])
        b.floats("var", [3, 8])
        b.node("ConvTranspose", ["x", "W"], ["c"], ["strides": .ints([2, 2]), "group": .int(group)])
        b.node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"], ["epsilon": .float(1)])
        b.node("Relu", ["n"], ["y"])
        b.output("y")
        let optimized = GraphPasses.optimize(try b.infer())
        let conv = try #require(optimized.graph.nodes.first)
        #expect(optimized.graph.nodes.count == 1)
        #expect(conv.opType == "ConvTranspose")
        #expect(conv.originalNodes == ["c", "n", "y"])
        #expect(try conv.string(FusedAttributes.activation) == "Relu")
        let inits = optimized.graph.initializerIndex
        // s = [4/2, -6/3] = [2, -2]; no bias, so b' = -mean * s + shift = [0, 2].
        #expect(try #require(inits[conv.inputs[1]]?.doubleValues()) == expected)
        #expect(try #require(inits[conv.inputs[2]]?.doubleValues()) == [0, 2])
    }

    /// A BatchNormalization no conv absorbs (after an Add here) takes the Relu after
    /// it, and no other activation.
    @Test(arguments: [("Relu", true), ("Sigmoid", false)])
    func aReluFusesIntoABatchNormalization(activation: String, fuses: Bool) throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        b.input("z", .float, [1, 2, 4, 4].map(Dim.value))
        for name in ["scale", "shift", "mean", "var"] { b.floats(name, [1, 2]) }
        b.node("Add", ["x", "z"], ["s"])
        b.node("BatchNormalization", ["s", "scale", "shift", "mean", "var"], ["n"])
        b.node(activation, ["n"], ["y"])
        b.output("y")
        let nodes = GraphPasses.optimize(try b.infer()).graph.nodes
        #expect(nodes.map(\.opType) == (fuses ? ["Add", "BatchNormalization"] : ["Add", "BatchNormalization", activation]))
        if fuses {
            #expect(try nodes[1].string(FusedAttributes.activation) == "Relu")
            #expect(nodes[1].outputs == ["y"] && nodes[1].originalNodes == ["n", "y"])
        }
    }

    @Test func nothingFusesIntoAConvWhoseOutputHasAnotherReader() throws {
        var b = convBNRelu()
        b.node("Sigmoid", ["c"], ["other"])
        b.output("other")
        let optimized = GraphPasses.optimize(try b.infer())
        // The BatchNormalization stays (and takes the Relu, `aReluFusesIntoABatchNormalization`).
        #expect(optimized.graph.nodes.map(\.opType) == ["Conv", "BatchNormalization", "Sigmoid"])
        #expect(optimized.graph.nodes.first?.hasAttribute(FusedAttributes.activation) == false)
    }

    @Test func siluAsMulOfSigmoidFuses() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        b.weight("W", [2, 2, 3, 3])
        b.node("Conv", ["x", "W"], ["c"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Sigmoid", ["c"], ["s"])
        b.node("Mul", ["c", "s"], ["y"])
        b.output("y")
        let optimized = GraphPasses.optimize(try b.infer())
        let conv = try #require(optimized.graph.nodes.first)
        #expect(optimized.graph.nodes.count == 1)
        #expect(try conv.string(FusedAttributes.activation) == "Silu")
        #expect(conv.originalNodes == ["c", "s", "y"])
    }

    /// A YOLO head (`GraphBuilder.detectHead`): the sigmoid moves into the Conv; the
    /// reshape and transpose stay, the transpose now writing the sigmoid's output. With
    /// another reader of a value in between, nothing moves.
    static func detectHead(extraReader: Bool) -> GraphBuilder {
        var b = GraphBuilder.detectHead(channels: 4, anchors: 2, fields: 3, size: 3) { name, dims in
            TensorData(floats: [Float](repeating: 0, count: dims.reduce(1, *)), name: name, dims: dims)
        }
        if extraReader {
            b.node("Relu", ["r"], ["raw"])
            b.output("raw")
        }
        return b
    }

    @Test func anActivationAfterReshapesAndTransposesFusesIntoTheProducer() throws {
        let activated = GraphPasses.fuseActivations(try Self.detectHead(extraReader: false).infer())
        let nodes = activated.graph.nodes
        #expect(nodes.map(\.opType) == ["Conv", "Reshape", "Transpose"])
        #expect(try nodes[0].string(FusedAttributes.activation) == "Sigmoid")
        #expect(nodes[0].originalNodes == ["c", "y"])
        #expect(nodes[2].outputs == ["y"])
        let kept = GraphPasses.optimize(try Self.detectHead(extraReader: true).infer())
        #expect(kept.graph.nodes.map(\.opType) == ["Conv", "Reshape", "Transpose", "Sigmoid", "Relu"])
    }

    /// The head's Reshape into anchors and Transpose moving their fields last then fuse
    /// into the Conv too; with another reader of the Reshape's result they stay.
    @Test func aHeadsAnchorSplitAndTransposeFuseIntoItsConv() throws {
        let optimized = GraphPasses.optimize(try Self.detectHead(extraReader: false).infer())
        let conv = try #require(optimized.graph.nodes.first)
        #expect(optimized.graph.nodes.count == 1)
        #expect(try conv.int(FusedAttributes.splitTranspose) == 2)
        #expect(try conv.string(FusedAttributes.activation) == "Sigmoid")
        #expect(conv.outputs == ["y"] && conv.originalNodes == ["c", "y", "r", "t"])
        let kept = GraphPasses.optimize(try Self.detectHead(extraReader: true).infer())
        #expect(kept.graph.nodes.allSatisfy { !$0.hasAttribute(FusedAttributes.splitTranspose) })
    }

    @Test func clipFusesOnlyWithConstantBounds() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        b.input("hi", .float, [])
        b.weight("W", [2, 2, 1, 1])
        b.floats("lo", [0])
        b.node("Conv", ["x", "W"], ["c"])
        b.node("Clip", ["c", "lo", "hi"], ["y"])
        b.output("y")
        #expect(GraphPasses.optimize(try b.infer()).graph.nodes.count == 2)

        var six = GraphBuilder()
        six.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        six.weight("W", [2, 2, 1, 1])
        six.initializers.append(TensorData(floats: [0], name: "lo", dims: []))
        six.initializers.append(TensorData(floats: [6], name: "hi", dims: []))
        six.node("Conv", ["x", "W"], ["c"])
        six.node("Clip", ["c", "lo", "hi"], ["y"])
        six.output("y")
        let conv = try #require(GraphPasses.optimize(try six.infer()).graph.nodes.first)
        #expect(try conv.string(FusedAttributes.activation) == "Clip")
        #expect(try conv.float(FusedAttributes.alpha) == 0)
        #expect(try conv.float(FusedAttributes.beta) == 6)
    }

    @Test func residualAddFusesAsASumThenTheActivation() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        b.weight("W", [2, 2, 3, 3])
        b.node("Relu", ["x"], ["r"])
        b.node("Conv", ["r", "W"], ["c"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Add", ["r", "c"], ["a"])
        b.node("Relu", ["a"], ["y"])
        b.output("y")
        let optimized = GraphPasses.optimize(try b.infer())
        #expect(optimized.graph.nodes.map(\.opType) == ["Relu", "Conv"])
        let conv = optimized.graph.nodes[1]
        #expect(conv.inputs == ["r", "W", "r"])
        #expect(try conv.int(FusedAttributes.sum) == 1)
        #expect(try conv.string(FusedAttributes.activation) == "Relu")
        #expect(conv.originalNodes == ["c", "a", "y"])
    }

    /// A feed-forward block (`GraphBuilder.feedForward`) with zero weights: the passes
    /// look at structure and constants only.
    static func feedForward(halfScale: Float = 0.5) -> GraphBuilder {
        GraphBuilder.feedForward([2, 5, 8], hidden: 24, halfScale: halfScale) { name, dims in
            TensorData(floats: [Float](repeating: 0, count: dims.reduce(1, *)), name: name, dims: dims)
        }
    }

    @Test func linearBiasGeluAndResidualFuseIntoTheMatMuls() throws {
        let optimized = GraphPasses.optimize(try Self.feedForward().infer())
        let nodes = optimized.graph.nodes
        #expect(nodes.map(\.opType) == ["MatMul", "MatMul", "LayerNormalization"])
        let up = nodes[0], down = nodes[1]
        #expect(up.inputs == ["x", "W1", "b1"])
        #expect(try up.int(FusedAttributes.bias) == 1)
        #expect(try up.string(FusedAttributes.activation) == "Gelu")
        #expect(up.originalNodes == ["h0", "h", "d", "e", "e1", "m", "g"])
        #expect(up.outputs == ["g"])
        #expect(down.inputs == ["g", "W2", "b2", "x"])
        #expect(try down.int(FusedAttributes.bias) == 1)
        #expect(try down.int(FusedAttributes.sum) == 1)
        #expect(!down.hasAttribute(FusedAttributes.activation))
        #expect(down.originalNodes == ["o0", "o", "r"])
    }

    @Test func aLookalikeOfGeluWithOtherConstantsDoesNotFuse() throws {
        let optimized = GraphPasses.optimize(try Self.feedForward(halfScale: 0.6).infer())
        // The bias still fuses; the Erf chain stays as it is.
        #expect(optimized.graph.nodes.map(\.opType) == ["MatMul", "Div", "Erf", "Add", "Mul", "Mul", "MatMul", "LayerNormalization"])
        #expect(!optimized.graph.nodes[0].hasAttribute(FusedAttributes.activation))
    }

    @Test func aBiasThatBroadcastsBeyondTheProductDoesNotFuse() throws {
        var b = GraphBuilder()
        b.input("x", .float, [5, 8].map(Dim.value))
        b.weight("W", [8, 4])
        b.weight("bias", [3, 1, 4])   // [5, 4] + [3, 1, 4] -> [3, 5, 4]
        b.node("MatMul", ["x", "W"], ["p"])
        b.node("Add", ["p", "bias"], ["y"])
        b.output("y")
        #expect(GraphPasses.optimize(try b.infer()).graph.nodes.map(\.opType) == ["MatMul", "Add"])
    }

    @Test func broadcastingAddDoesNotFuse() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 2, 4, 4].map(Dim.value))
        b.weight("W", [2, 2, 1, 1])
        b.weight("bias", [2, 1, 1])
        b.node("Conv", ["x", "W"], ["c"])
        b.node("Add", ["c", "bias"], ["y"])
        b.output("y")
        #expect(GraphPasses.optimize(try b.infer()).graph.nodes.map(\.opType) == ["Conv", "Add"])
    }

    @Test func identityAndDropoutDisappearUnlessTheyNameAGraphOutput() throws {
        var b = GraphBuilder()
        b.input("x", .float, [2, 3].map(Dim.value))
        b.node("Identity", ["x"], ["i"])
        b.node("Dropout", ["i"], ["d"])
        b.node("Relu", ["d"], ["r"])
        b.node("Identity", ["r"], ["y"])
        b.output("y")
        let optimized = GraphPasses.optimize(try b.infer())
        #expect(optimized.graph.nodes.map(\.opType) == ["Relu", "Identity"])
        #expect(optimized.graph.nodes[0].inputs == ["x"])
    }

    @Test func aQDQConvBecomesTheQLinearConvItStandsFor() throws {
        let optimized = GraphPasses.optimize(try GraphBuilder.qdqConv(.init()).infer())
        #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"])
        let conv = optimized.graph.nodes[1]
        #expect(conv.inputs == ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz", "bq"])
        #expect(conv.outputs == ["yq"])
        #expect(try conv.string(FusedAttributes.activation) == "Relu")
        #expect(try conv.ints("pads") == [1, 1, 1, 1])
        #expect(Set(conv.originalNodes) == ["xd", "wd", "bd", "c", "r", "yq"])
    }

    @Test func aQDQConvWithoutBiasOrActivationFusesToo() throws {
        let optimized = GraphPasses.optimize(try GraphBuilder.qdqConv(.init(bias: false, relu: false)).infer())
        // The bias's DequantizeLinear has no reader and stays: removing dead nodes is not this pass's job.
        #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", "DequantizeLinear", "QLinearConv", "DequantizeLinear"])
        #expect(optimized.graph.nodes[2].inputs == ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz"])
        #expect(!optimized.graph.nodes[2].hasAttribute(FusedAttributes.activation))
    }

    @Test func aDequantizedInputWithAnotherReaderStaysForIt() throws {
        var b = GraphBuilder.qdqConv(.init())
        b.node("Sigmoid", ["xd"], ["s"])
        b.output("s")
        let optimized = GraphPasses.optimize(try b.infer())
        #expect(optimized.graph.nodes.map(\.opType)
                == ["QuantizeLinear", "DequantizeLinear", "QLinearConv", "DequantizeLinear", "Sigmoid"])
        #expect(optimized.graph.nodes[2].inputs.first == "xq")
    }

    /// Forms QLinearConv's int8 kernel would misread are left as fp32 convolutions.
    @Test func nonzeroWeightZeroPointsOrAForeignBiasScaleDoNotFuse() throws {
        var zeroPoint = GraphBuilder.qdqConv(.init())
        let wz = try #require(zeroPoint.initializers.firstIndex { $0.name == "wz" })
        zeroPoint.initializers[wz] = GraphBuilder.quantized("wz", .int8, [24], [1] + Array(repeating: 0, count: 23))
        var biasScale = GraphBuilder.qdqConv(.init())
        let bs = try #require(biasScale.initializers.firstIndex { $0.name == "bs" })
        biasScale.initializers[bs] = TensorData(floats: Array(repeating: 0.001, count: 24), name: "bs", dims: [24])
        for b in [zeroPoint, biasScale] {
            let ops = GraphPasses.optimize(try b.infer()).graph.nodes.map(\.opType)
            #expect(ops.contains("Conv") && !ops.contains("QLinearConv"), "\(ops)")
        }
    }

    @Test func aQDQLinearLayerBecomesQLinearMatMul() throws {
        let optimized = GraphPasses.optimize(try GraphBuilder.qdqMatMul().infer())
        #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", "QLinearMatMul", "DequantizeLinear"])
        #expect(optimized.graph.nodes[1].inputs == ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz"])
        #expect(Set(optimized.graph.nodes[1].originalNodes) == ["xd", "wd", "m", "yq"])
    }

    /// A QDQ Gemm (PyTorch's Linear) becomes ONNX Runtime's com.microsoft.QGemm on the
    /// 8-bit values with its int32 bias; an fp32 bias is rounded into a new int32
    /// initializer in the product's units; without a QuantizeLinear after it, the QGemm
    /// has no y_scale and writes fp32.
    @Test func aQDQGemmBecomesQGemm() throws {
        let optimized = GraphPasses.optimize(try GraphBuilder.qdqGemm().infer())
        #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", "QGemm", "DequantizeLinear"])
        let gemm = optimized.graph.nodes[1]
        #expect(gemm.domain == "com.microsoft")
        #expect(gemm.inputs == ["xq", "xs", "xz", "wq", "ws", "wz", "bq", "ys", "yz"])
        #expect(gemm.attributes.map(\.name) == ["transB"])
        #expect(try gemm.int("transB") == 1)
        #expect(Set(gemm.originalNodes) == ["xd", "wd", "bd", "g", "yq"])

        let floatBias = GraphPasses.optimize(try GraphBuilder.qdqGemm(floatBias: true, quantizedOutput: false).infer())
        let fused = try #require(floatBias.graph.nodes.first { $0.opType == "QGemm" })
        #expect(fused.inputs.count == 7 && fused.outputs == ["y"])
        let bias = try #require(floatBias.graph.initializerIndex[fused.inputs[6]])
        let stored = try #require(GraphBuilder.qdqGemm().graph.initializerIndex["bq"])
        #expect(bias.elementType == .int32 && bias.integerValues() == stored.integerValues(),
                "0.2 of a step off the grid rounds back to the int32 values")
    }

    /// Gemms whose arithmetic QGemm's int8 form does not cover stay: alpha other than 1,
    /// a transposed A, weights scaled along the inner dim.
    @Test func aQDQGemmWithAlphaTransposedAOrInnerScalesDoesNotFuse() throws {
        var scaled = GraphBuilder.qdqGemm(k: 40, n: 40)
        let g = try #require(scaled.nodes.firstIndex { $0.opType == "Gemm" })
        scaled.nodes[g].attributes.append(Attribute(name: "alpha", value: .float(0.5)))
        var transposedA = GraphBuilder.qdqGemm(rows: 48, k: 48, n: 40)
        transposedA.nodes[g].attributes.append(Attribute(name: "transA", value: .int(1)))
        var inner = GraphBuilder.qdqGemm(k: 40, n: 40)
        let dq = try #require(inner.nodes.firstIndex { $0.outputs == ["wd"] })
        inner.nodes[dq].attributes = [Attribute(name: "axis", value: .int(1))]
        for b in [scaled, transposedA, inner] {
            #expect(GraphPasses.optimize(try b.infer()).graph.nodes.map(\.opType).contains("Gemm"))
        }
    }

    /// Q/DQ pairs with one scale and zero point around a Reshape and a Transpose drop
    /// out: the data movement runs on the 8-bit values. The Transpose's pair differs in
    /// scale in the second graph, so only the Reshape's drops there.
    @Test func dataMovementBetweenMatchingQDQPairsRunsOnTheQuantizedValues() throws {
        let optimized = GraphPasses.optimize(try GraphBuilder.qdqDataMovement().infer())
        #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", "Reshape", "Transpose", "DequantizeLinear"])
        #expect(optimized.graph.nodes[1].inputs[0] == "xq" && optimized.graph.nodes[1].outputs == ["rq"])
        #expect(optimized.graph.nodes[2].inputs == ["rq"] && optimized.graph.nodes[2].outputs == ["tq"])
        #expect(Set(optimized.graph.nodes[2].originalNodes) == ["rd", "t", "tq"])
        #expect(optimized.type(of: "rq")?.elementType == .uint8)

        let rescaled = GraphPasses.optimize(try GraphBuilder.qdqDataMovement(transposeScale: 0.05).infer())
        #expect(rescaled.graph.nodes.map(\.opType)
            == ["QuantizeLinear", "Reshape", "DequantizeLinear", "Transpose", "QuantizeLinear", "DequantizeLinear"])
    }

    /// A QDQ Add (Mul) of two 8-bit tensors becomes ONNX Runtime's com.microsoft
    /// QLinearAdd (QLinearMul) on the 8-bit values; a Sub, or an Add whose operands are
    /// of two 8-bit types, stays.
    @Test func aQDQAddOrMulBecomesQLinearAddOrMul() throws {
        for (op, fused) in [("Add", "QLinearAdd"), ("Mul", "QLinearMul")] {
            let optimized = GraphPasses.optimize(try GraphBuilder.qdqBinary(op, bShape: [8]).infer())
            #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", fused, "DequantizeLinear"])
            let node = optimized.graph.nodes[1]
            #expect(node.domain == "com.microsoft")
            #expect(node.inputs == ["xq", "xs", "xz", "bq", "bs", "bz", "ys", "yz"])
            #expect(node.outputs == ["yq"])
            #expect(Set(node.originalNodes) == ["xd", "bd", "r", "yq"])
        }
        let sub = GraphPasses.optimize(try GraphBuilder.qdqBinary("Sub").infer())
        #expect(sub.graph.nodes.map(\.opType).contains("Sub"))
        var mixed = GraphBuilder.qdqBinary("Add")
        let bq = try #require(mixed.initializers.firstIndex { $0.name == "bq" })
        let bz = try #require(mixed.initializers.firstIndex { $0.name == "bz" })
        mixed.initializers[bq] = GraphBuilder.quantized("bq", .int8, [1, 6, 8], Array(repeating: -2, count: 48))
        mixed.initializers[bz] = GraphBuilder.quantized("bz", .int8, [], [0])
        #expect(GraphPasses.optimize(try mixed.infer()).graph.nodes.map(\.opType).contains("Add"))
    }

    /// Per-column scales must run along the columns (axis 1): scales along K are not a
    /// QLinearMatMul.
    @Test func aQDQMatMulScaledAlongTheInnerDimDoesNotFuse() throws {
        var b = GraphBuilder.qdqMatMul(k: 40, n: 40)
        let dq = try #require(b.nodes.firstIndex { $0.outputs == ["wd"] })
        b.nodes[dq].attributes = [Attribute(name: "axis", value: .int(0))]
        #expect(GraphPasses.optimize(try b.infer()).graph.nodes.map(\.opType).contains("MatMul"))
    }

    /// TensorRT-style QDQ: the conv's result feeds a residual Add and stays fp32. The
    /// QLinearConv has no y_scale / y_zero_point, its fp32 bias is rounded into an int32
    /// initializer in the product's units, and the Add stays fused as a sum.
    @Test func aQDQConvWhoseResultStaysFloatKeepsItsResidualSum() throws {
        let b = GraphBuilder.qdqConv(.init(channels: 16, outputs: 16, floatBias: true, quantizedOutput: false, residual: true))
        let optimized = GraphPasses.optimize(try b.infer())
        // (The int32 bias's DequantizeLinear stays: nothing reads it, the conv reads "bf".)
        #expect(optimized.graph.nodes.map(\.opType) == ["QuantizeLinear", "DequantizeLinear", "QLinearConv"])
        let conv = optimized.graph.nodes[2]
        #expect(Array(conv.inputs.prefix(8)) == ["xq", "xs", "xz", "wq", "ws", "wz", "", ""])
        #expect(conv.inputs.last == "x")
        #expect(conv.outputs == ["y"])
        #expect(try conv.int(FusedAttributes.sum) == 1)
        let bias = try #require(optimized.graph.initializerIndex[conv.inputs[8]])
        #expect(bias.elementType == .int32)
        // bf = (bq + 0.2) * xs * ws, rounded back to bq.
        let expected = try #require(b.initializers.first { $0.name == "bq" }?.integerValues())
        #expect(bias.integerValues() == expected)
        #expect(optimized.type(of: conv.inputs[8])?.elementType == .int32)
    }
}
