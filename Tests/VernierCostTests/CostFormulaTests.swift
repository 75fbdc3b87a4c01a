import Foundation
import Testing
import VernierTestSupport
import VernierGraph
@testable import VernierCost

/// Cost formulas against arithmetic written out by hand.
struct CostFormulaTests {
    func table(_ b: GraphBuilder, _ options: InferenceOptions = InferenceOptions()) throws -> CostTable {
        let model = try GraphValidator.validate(b.model)
        let inferred = try ShapeInference(options: options).infer(model)
        return CostModel.table(for: AnalyzedModel(model: model, inferred: inferred, libONNXNote: nil))
    }

    func row(_ t: CostTable, _ name: String) throws -> NodeCost {
        try #require(t.nodes.first { $0.name == name })
    }

    @Test func resnetStemConv() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(3), .value(224), .value(224)])
        b.weight("w", [64, 3, 7, 7])
        b.weight("bias", [64])
        b.node("Conv", ["x", "w", "bias"], ["y"], ["strides": .ints([2, 2]), "pads": .ints([3, 3, 3, 3])])
        b.output("y")
        let r = try row(try table(b), "y")
        // 64 output channels x 112 x 112 outputs x (3 x 7 x 7) taps = 118,013,952
        #expect(r.macs?.value == 118_013_952)
        // 2 x MACs + one bias add per output (64 x 112 x 112 = 802,816)
        #expect(r.flops?.value == Double(2 * 118_013_952 + 802_816))
        #expect(r.params == 64 * 3 * 7 * 7 + 64)
        // Reads x (3x224x224 floats) + weights + bias; writes 64x112x112 floats.
        #expect(r.bytesRead?.value == Double((3 * 224 * 224 + 9408 + 64) * 4))
        #expect(r.bytesWritten?.value == Double(802_816 * 4))
    }

    @Test func depthwiseConvCountsOneInputChannelPerOutput() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(32), .value(112), .value(112)])
        b.weight("w", [32, 1, 3, 3])
        b.node("Conv", ["x", "w"], ["y"], ["group": .int(32), "pads": .ints([1, 1, 1, 1])])
        b.output("y")
        // 32 x 112 x 112 outputs x 9 taps = 3,612,672
        #expect(try row(try table(b), "y").macs?.value == 3_612_672)
    }

    @Test func convTransposeScattersEachInput() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(16), .value(32), .value(32)])
        b.weight("w", [16, 8, 2, 2])
        b.node("ConvTranspose", ["x", "w"], ["y"], ["strides": .ints([2, 2])])
        b.output("y")
        // 16 x 32 x 32 inputs x (8 x 2 x 2) = 524,288
        #expect(try row(try table(b), "y").macs?.value == 524_288)
    }

    @Test func gemmWithBias() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(4), .value(512)])
        b.weight("w", [10, 512])
        b.weight("c", [10])
        b.node("Gemm", ["x", "w", "c"], ["y"], ["transB": .int(1)])
        b.output("y")
        let r = try row(try table(b), "y")
        // M x N x K = 4 x 10 x 512 = 20,480; FLOPs 2 x 20,480 + 40 bias adds
        #expect(r.macs?.value == 20_480)
        #expect(r.flops?.value == Double(40_960 + 40))
    }

    @Test func attentionMatMulIsAPolynomialInSeq() throws {
        var b = GraphBuilder()
        b.input("q", .float, [.symbol("batch"), .value(12), .symbol("seq"), .value(64)])
        b.input("k", .float, [.symbol("batch"), .value(12), .value(64), .symbol("seq")])
        b.node("MatMul", ["q", "k"], ["s"])
        b.output("s")
        let t = try table(b)
        let macs = try #require(try row(t, "s").macs)
        // 12 heads x seq x seq x 64 = 768 x batch x seq^2
        #expect(macs == Cost(768) * Cost(symbol: "batch") * Cost(symbol: "seq") * Cost(symbol: "seq"))
        #expect(macs.substituting(["batch": 1, "seq": 128]).value == Double(768 * 128 * 128))
        #expect(t.memory == nil)
        #expect(t.memoryNote?.contains("symbolic") == true)
    }

    @Test func bidirectionalLSTMCountsEveryStepAndDirection() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(10), .value(1), .value(16)])
        b.weight("w", [2, 128, 16])
        b.weight("r", [2, 128, 32])
        b.node("LSTM", ["x", "w", "r"], ["y", "h"], ["hidden_size": .int(32), "direction": .string("bidirectional")])
        b.output("y")
        let r = try row(try table(b), "y")
        // 10 steps x 2 directions x 1 batch x 4 gates x 32 hidden x (16 input + 32 hidden) = 122,880
        #expect(r.macs?.value == 122_880)
        // + 10 x 2 x 1 x 32 hidden units x 23 gate FLOPs = 14,720
        #expect(r.flops?.value == Double(245_760 + 14_720))
    }

    @Test func elementwiseConstantsPerElement() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(10), .value(100)])
        b.node("Sigmoid", ["x"], ["s"])
        b.node("Relu", ["s"], ["r"])
        b.node("Softmax", ["r"], ["m"])
        b.node("Reshape", ["m", "shape"], ["z"])
        b.ints("shape", [1000])
        b.output("z")
        let t = try table(b)
        #expect(try row(t, "s").flops?.value == 3000)
        #expect(try row(t, "r").flops?.value == 1000)
        #expect(try row(t, "m").flops?.value == 5000)
        #expect(try row(t, "z").flops?.value == 0)
        #expect(t.totals.flops.value == 9000)
    }

    @Test func poolingCountsTheWindow() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(8), .value(32), .value(32)])
        b.node("MaxPool", ["x"], ["m"], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        b.node("GlobalAveragePool", ["m"], ["g"])
        b.output("g")
        let t = try table(b)
        // MaxPool out 8 x 16 x 16 = 2048 elements x 9 compares = 18,432
        #expect(try row(t, "m").flops?.value == 18_432)
        // GAP: 2048 adds + 8 divides
        #expect(try row(t, "g").flops?.value == 2056)
    }

    @Test func ifCostsItsLargerBranch() throws {
        var then = GraphBuilder()
        then.node("Relu", ["x"], ["t"])
        then.output("t")
        var otherwise = GraphBuilder()
        otherwise.node("Sigmoid", ["x"], ["e"])
        otherwise.output("e")
        var b = GraphBuilder()
        b.input("c", .bool, [])
        b.input("x", .float, [.value(100)])
        b.node("If", ["c"], ["y"], ["then_branch": .graph(then.graph), "else_branch": .graph(otherwise.graph)])
        b.output("y")
        let t = try table(b)
        // Relu 100 FLOPs, Sigmoid 300: the larger counts.
        #expect(try row(t, "y").flops?.value == 300)
        #expect(try row(t, "y").subgraphs.count == 2)
    }

    /// Found by the fuzzer: a Scan claiming more scan inputs than it has made the
    /// formula read input -1. Its cost is unknown instead.
    @Test func scanWithMoreScanInputsThanInputsHasAnUnknownCost() throws {
        var body = GraphBuilder()
        body.input("s", .float, [.value(4)])
        body.node("Relu", ["s"], ["o"])
        body.output("o")
        var b = GraphBuilder()
        b.input("x", .float, [.value(3), .value(4)])
        b.node("Scan", ["x"], ["y"], ["body": .graph(body.graph), "num_scan_inputs": .int(5)])
        b.output("y")
        let t = try table(b)
        #expect(try row(t, "y").flops == nil)
    }

    /// An op that has a shape rule must have a cost formula, and the other way round:
    /// the op's entries are found together by name.
    @Test func everyShapeRuleHasACostFormulaAndBack() {
        let rules = Set(ShapeRules.supportedOps)
        let formulas = Set(CostFormulas.supportedOps)
        #expect(rules.subtracting(formulas).sorted() == [], "shape rules without a cost formula")
        #expect(formulas.subtracting(rules).sorted() == [], "cost formulas without a shape rule")
    }
}

extension CostFormulaTests {
    @Test func paramsTotalCountsWeightsReadOnlyInsideBranches() throws {
        var then = GraphBuilder()
        then.weight("wt", [4, 8])
        then.node("MatMul", ["x", "wt"], ["t"])
        then.output("t")
        var otherwise = GraphBuilder()
        otherwise.node("MatMul", ["x", "we"], ["e"])
        otherwise.output("e")
        var b = GraphBuilder()
        b.weight("we", [4, 8])
        b.input("c", .bool, [])
        b.input("x", .float, [.value(2), .value(4)])
        b.node("If", ["c"], ["y"], ["then_branch": .graph(then.graph), "else_branch": .graph(otherwise.graph)])
        b.output("y")
        // 32 elements in the then branch's own initializer + 32 in the outer one the else branch reads.
        #expect(try table(b).totals.params == 64)
    }
}

extension CostFormulaTests {
    /// QDQ form: x and w each pass QuantizeLinear/DequantizeLinear before the Conv.
    @Test func qdqConvCountsIntegerMacsAndFoldsTheDequantizedWeight() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(8), .value(16), .value(16)])
        b.weight("wq", [16, 8, 3, 3], element: .int8)
        b.floats("scale", [0.1])
        b.weight("zp8", [1], element: .int8)
        b.weight("zpu8", [1], element: .uint8)
        b.node("QuantizeLinear", ["x", "scale", "zpu8"], ["xq"])
        b.node("DequantizeLinear", ["xq", "scale", "zpu8"], ["xd"])
        b.node("DequantizeLinear", ["wq", "scale", "zp8"], ["wd"])
        b.node("Conv", ["xd", "wd"], ["y"], ["pads": .ints([1, 1, 1, 1])])
        b.output("y")
        let t = try table(b)
        let conv = try row(t, "y")
        // 16 x 16 x 16 outputs x (8 x 3 x 3) taps = 294,912 integer MACs, no float MACs.
        #expect(conv.intMacs?.value == 294_912)
        #expect(conv.macs?.value == 0)
        let plan = try #require(t.memory)
        #expect(plan.bufferOf["wd"] == nil, "the dequantized weight is folded, not an activation")
        #expect(plan.bufferOf["xd"] != nil)

        // As a kernel: integer work when the executor fused the pattern into QLinearConv,
        // float work when it ran the plain Conv on the dequantized values.
        let grouping = KernelGrouping(table: t, executedNodes: Set(t.nodes.map(\.name)))
        let dequantizations = t.nodes.filter { $0.opType == "DequantizeLinear" }.map(\.name)
        let fused = grouping.costs(name: "q", opType: "QLinearConv", nodes: dequantizations + [conv.name])
        #expect(fused.intMacs == 294_912 && fused.macs == 0 && fused.isInteger)
        let plain = grouping.costs(name: "c", opType: "Conv", nodes: [conv.name])
        #expect(plain.intMacs == 0 && plain.macs == 294_912 && plain.flops == 2 * 294_912 && !plain.isInteger)
    }

    /// A QDQ conv group records whether its activation's zero point is other than 0 (the
    /// weights' zero point, and the output's, do not count).
    @Test func qdqGroupsRecordTheActivationsZeroPoint() throws {
        for activationZeroPoint: UInt8 in [0, 125] {
            var b = GraphBuilder()
            b.input("xq", .uint8, [.value(1), .value(8), .value(6), .value(6)])
            b.weight("wq", [16, 8, 1, 1], element: .int8)
            b.floats("scale", [0.1])
            b.initializers.append(TensorData(name: "xzp", elementType: .uint8, dims: [], storage: .bytes([activationZeroPoint])))
            b.initializers.append(TensorData(name: "wzp", elementType: .int8, dims: [], storage: .bytes([3])))
            b.initializers.append(TensorData(name: "yzp", elementType: .uint8, dims: [], storage: .bytes([7])))
            b.node("DequantizeLinear", ["xq", "scale", "xzp"], ["xd"])
            b.node("DequantizeLinear", ["wq", "scale", "wzp"], ["wd"])
            b.node("Conv", ["xd", "wd"], ["c"])
            b.node("QuantizeLinear", ["c", "scale", "yzp"], ["y"])
            b.output("y")
            let t = try table(b)
            let grouping = KernelGrouping(table: t, executedNodes: Set(t.nodes.map(\.name)))
            let group = grouping.costs(name: "q", opType: "QLinearConv", nodes: t.nodes.map(\.name))
            #expect(group.sourceZeroPoint == (activationZeroPoint != 0))
            #expect(group.sample.shape.sourceZeroPoint == group.sourceZeroPoint)
        }
    }

    /// com.microsoft.QGemm as ONNX Runtime's quantizer writes it: [M, N] of y_zero_point's
    /// type (fp32 without y_scale), M x N x K integer multiply-adds.
    @Test func qgemmCountsIntegerWorkAndTakesTheOutputsType() throws {
        for requantized in [true, false] {
            var b = GraphBuilder()
            b.input("xq", .uint8, [.value(5), .value(12)])
            b.weight("wq", [7, 12], element: .int8)
            b.floats("s", [0.1])
            b.weight("zu", [1], element: .uint8)
            b.weight("zs", [1], element: .int8)
            b.weight("bias", [7], element: .int32)
            b.node("QGemm", ["xq", "s", "zu", "wq", "s", "zs", "bias"] + (requantized ? ["s", "zs"] : []), ["y"],
                   ["transB": .int(1)])
            b.nodes[0].domain = "com.microsoft"
            b.output("y")
            let gemm = try row(try table(b), "y")
            #expect(gemm.outputTypes.first??.shape == [.value(5), .value(7)])
            #expect(gemm.outputTypes.first??.elementType == (requantized ? .int8 : .float))
            #expect(gemm.intMacs?.value == 420, "5 x 7 outputs x 12 deep")
            #expect(gemm.macs?.value == 0)
        }
    }
}
