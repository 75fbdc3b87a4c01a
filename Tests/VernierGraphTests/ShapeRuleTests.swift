import Testing
import VernierTestSupport
@testable import VernierGraph

/// Hand-computed expectations for the shape rules; the arithmetic is written out here,
/// not taken from the code.
struct ShapeRuleTests {
    @Test func convWithStridesPadsAndDilation() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(3), .value(224), .value(224)])
        b.weight("w", [64, 3, 7, 7])
        b.node("Conv", ["x", "w"], ["y"], ["strides": .ints([2, 2]), "pads": .ints([3, 3, 3, 3])])
        b.weight("w2", [8, 64, 3, 3])
        // dilation 2: effective kernel (3-1)*2+1 = 5; (112 + 0 + 0 - 5)/1 + 1 = 108
        b.node("Conv", ["y", "w2"], ["z"], ["dilations": .ints([2, 2])])
        b.output("z")
        let g = try b.infer()
        // (224 + 3 + 3 - 7) / 2 + 1 = 223/2 + 1 = 111 + 1 = 112
        #expect(g.type(of: "y")?.shape == [1, 64, 112, 112].map(Dim.value))
        #expect(g.type(of: "z")?.shape == [1, 8, 108, 108].map(Dim.value))
    }

    @Test func depthwiseConvKeepsChannelsAndSamePadding() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(32), .value(15), .value(15)])
        b.weight("w", [32, 1, 3, 3])
        b.node("Conv", ["x", "w"], ["y"], ["group": .int(32), "strides": .ints([2, 2]), "auto_pad": .string("SAME_UPPER")])
        b.output("y")
        // SAME_UPPER: ceil(15 / 2) = 8
        #expect(try b.infer().type(of: "y")?.shape == [1, 32, 8, 8].map(Dim.value))
    }

    @Test func convChannelMismatchIsReportedNotFatal() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(4), .value(8), .value(8)])
        b.weight("w", [8, 3, 3, 3])
        b.node("Conv", ["x", "w"], ["y"])
        b.output("y")
        let g = try b.infer()
        #expect(g.type(of: "y") == nil)
        #expect(g.issues.first?.kind == .invalid)
        #expect(g.issues.first?.message.contains("4 channels") == true)
    }

    @Test func convTransposeDoublesTheSize() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(16), .value(32), .value(32)])
        b.weight("w", [16, 8, 2, 2])
        b.node("ConvTranspose", ["x", "w"], ["y"], ["strides": .ints([2, 2])])
        b.weight("w3", [16, 4, 3, 3])
        b.node("ConvTranspose", ["x", "w3"], ["z"], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "output_padding": .ints([1, 1])])
        b.output("y")
        b.output("z")
        let g = try b.infer()
        // 2 * (32 - 1) + 2 = 64
        #expect(g.type(of: "y")?.shape == [1, 8, 64, 64].map(Dim.value))
        // 2 * 31 + 1 + 3 - 2 = 64
        #expect(g.type(of: "z")?.shape == [1, 4, 64, 64].map(Dim.value))
    }

    @Test func maxPoolCeilMode() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(8), .value(112), .value(112)])
        b.node("MaxPool", ["x"], ["y"], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)])
        b.output("y")
        // ceil((112 - 3) / 2) + 1 = ceil(54.5) + 1 = 56
        #expect(try b.infer().type(of: "y")?.shape == [1, 8, 56, 56].map(Dim.value))
    }

    @Test func matmulBroadcastsBatchDimsAndPromotesVectors() throws {
        var b = GraphBuilder()
        b.input("a", .float, [.symbol("batch"), .value(12), .symbol("seq"), .value(64)])
        b.input("k", .float, [.value(1), .value(12), .value(64), .symbol("seq")])
        b.input("v", .float, [.value(64)])
        b.node("MatMul", ["a", "k"], ["s"])
        b.node("MatMul", ["a", "v"], ["p"])
        b.output("s")
        b.output("p")
        let g = try b.infer()
        #expect(g.type(of: "s")?.shape == [.symbol("batch"), .value(12), .symbol("seq"), .symbol("seq")])
        #expect(g.type(of: "p")?.shape == [.symbol("batch"), .value(12), .symbol("seq")])
    }

    @Test func gemmTransposes() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(4), .value(512)])
        b.weight("w", [10, 512])
        b.node("Gemm", ["x", "w"], ["y"], ["transB": .int(1)])
        b.output("y")
        #expect(try b.infer().type(of: "y")?.shape == [4, 10].map(Dim.value))
    }

    /// The exporter pattern: Shape -> Gather -> Unsqueeze -> Concat -> Reshape keeps the
    /// symbolic batch and sequence dims through the head split.
    @Test func shapeChainsKeepSymbolsThroughReshape() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.symbol("batch"), .symbol("seq"), .value(768)])
        b.ints("i0", [0])
        b.ints("i1", [1])
        b.ints("heads", [12, 64])
        b.node("Shape", ["x"], ["s"])
        b.node("Gather", ["s", "i0"], ["b"], ["axis": .int(0)])
        b.node("Gather", ["s", "i1"], ["n"], ["axis": .int(0)])
        b.node("Concat", ["b", "n", "heads"], ["target"], ["axis": .int(0)])
        b.node("Reshape", ["x", "target"], ["y"])
        b.ints("flat", [-1, 768])
        b.node("Reshape", ["x", "flat"], ["z"])
        b.output("y")
        b.output("z")
        let g = try b.infer()
        #expect(g.facts["target"]?.constant == .ints([.symbol("batch"), .symbol("seq"), .value(12), .value(64)]))
        #expect(g.type(of: "y")?.shape == [.symbol("batch"), .symbol("seq"), .value(12), .value(64)])
        #expect(g.type(of: "z")?.shape == [.symbol("batch") * .symbol("seq"), .value(768)])
    }

    @Test func bindingDimsMakesShapesConcrete() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.symbol("batch"), .symbol("seq"), .value(768)])
        b.ints("flat", [-1, 768])
        b.node("Reshape", ["x", "flat"], ["z"])
        b.output("z")
        var options = InferenceOptions()
        options.dimBindings = ["batch": 2, "seq": 128]
        #expect(try b.infer(options).type(of: "z")?.shape == [256, 768].map(Dim.value))
        options = InferenceOptions()
        options.inputShapes = ["x": [1, 7, 768]]
        #expect(try b.infer(options).type(of: "z")?.shape == [7, 768].map(Dim.value))
    }

    @Test func unknownBindingsAreErrorsNamingTheAlternatives() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.symbol("seq")])
        b.node("Relu", ["x"], ["y"])
        b.output("y")
        var options = InferenceOptions()
        options.dimBindings = ["sequence": 3]
        #expect(throws: InferenceError.unknownSymbol(name: "sequence", available: ["seq"])) { try b.infer(options) }
        options = InferenceOptions()
        options.inputShapes = ["x": [1, 2]]
        #expect(throws: InferenceError.inputRankMismatch(name: "x", declared: 1, given: 2)) { try b.infer(options) }
    }

    @Test func sliceOfASymbolicAxisAndClampedEnds() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.symbol("seq"), .value(10)])
        b.ints("starts", [1, -3])
        b.ints("ends", [Int(Int64.max), 100])
        b.ints("axes", [0, 1])
        b.node("Slice", ["x", "starts", "ends", "axes"], ["y"])
        b.output("y")
        // axis 0: seq - 1; axis 1: from 10-3 = 7 to min(100, 10) = 10 -> 3
        #expect(try b.infer().type(of: "y")?.shape == [.symbol("seq") - .value(1), .value(3)])
    }

    @Test func resizeByScalesAndBySizes() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(16), .value(20), .value(20)])
        b.floats("scales", [1, 1, 2, 2])
        b.node("Resize", ["x", "", "scales"], ["y"], ["mode": .string("nearest")])
        b.ints("sizes", [1, 16, 33, 7])
        b.node("Resize", ["x", "", "", "sizes"], ["z"])
        b.output("y")
        b.output("z")
        let g = try b.infer()
        #expect(g.type(of: "y")?.shape == [1, 16, 40, 40].map(Dim.value))
        #expect(g.type(of: "z")?.shape == [1, 16, 33, 7].map(Dim.value))
    }

    /// Scales and Range bounds come from the file as floats: infinite, NaN, negative or
    /// huge ones are reported on their node, not converted into a trapping Int (a
    /// libFuzzer finding: a Resize scale of -3e38 crashed inference).
    @Test(arguments: [Float.infinity, -.infinity, .nan, -3e38, 3e38, 0, -2])
    func resizeScalesThatGiveNoSizeAreReported(_ scale: Float) throws {
        for dims in [[Dim.value(1), .value(2), .value(20), .value(20)], [.value(1), .value(2), .symbol("h"), .value(20)]] {
            var b = GraphBuilder()
            b.input("x", .float, dims)
            b.floats("scales", [1, 1, scale, 1])
            b.node("Resize", ["x", "", "scales"], ["y"], ["mode": .string("nearest")])
            b.output("y")
            let g = try b.infer()
            // A huge but valid scale of a symbolic axis stays an opaque symbol until bound.
            if scale.isFinite && scale > 0 && dims[2].intValue == nil { continue }
            #expect(g.type(of: "y") == nil, "scale \(scale)")
            #expect(g.issues.first?.kind == .invalid, "scale \(scale): \(g.issues)")
        }
    }

    @Test func rangeCountsBeyondIntAreReported() throws {
        var b = GraphBuilder()
        b.floats("start", [0])
        b.floats("limit", [3e38])
        b.floats("delta", [1e-30])
        b.node("Range", ["start", "limit", "delta"], ["r"])
        b.ints("istart", [Int(Int64.min)])
        b.ints("ilimit", [Int(Int64.max)])
        b.ints("idelta", [1])
        b.node("Range", ["istart", "ilimit", "idelta"], ["q"])
        b.output("r")
        b.output("q")
        let g = try b.infer()
        #expect(g.type(of: "r") == nil)
        #expect(g.issues.contains { $0.message.contains("Range from") }, "\(g.issues)")
        #expect(g.type(of: "q") == nil || g.type(of: "q")?.shape?.first?.intValue ?? 0 > 0, "\(String(describing: g.type(of: "q")))")
    }

    @Test func floorAndCeilDivisionAreExactNearTheIntLimits() {
        #expect(Dim.value(Int.max).floorDivided(by: .value(1)) == .value(Int.max))
        #expect(Dim.value(Int.max).ceilDivided(by: .value(2)) == .value(Int.max / 2 + 1))
        #expect(Dim.value(Int.min).floorDivided(by: .value(-1)) == .value(Int.max))
        #expect(Dim.value(-7).floorDivided(by: .value(2)) == .value(-4))
        #expect(Dim.value(-7).ceilDivided(by: .value(2)) == .value(-3))
        #expect(Dim.value(7).floorDivided(by: .value(-2)) == .value(-4))
        #expect(Dim.value(7).ceilDivided(by: .value(-2)) == .value(-3))
        #expect(Dim.value(6).ceilDivided(by: .value(3)) == .value(2))
        #expect(Int(ifRepresentable: 0x1p63) == nil && Int(ifRepresentable: -.nan) == nil && Int(ifRepresentable: -2.7) == -2)
    }

    @Test func lstmOutputsCountBothDirections() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(10), .value(1), .value(16)])
        b.weight("w", [2, 128, 16])
        b.weight("r", [2, 128, 32])
        b.node("LSTM", ["x", "w", "r"], ["y", "h", "c"], ["hidden_size": .int(32), "direction": .string("bidirectional")])
        b.output("y")
        let g = try b.infer()
        #expect(g.type(of: "y")?.shape == [10, 2, 1, 32].map(Dim.value))
        #expect(g.type(of: "h")?.shape == [2, 1, 32].map(Dim.value))
        #expect(g.type(of: "c")?.shape == [2, 1, 32].map(Dim.value))
    }

    @Test func unknownOpsAreListedAndDoNotStopInference() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(2)])
        b.nodes.append(Node(name: "m", opType: "MysteryOp", domain: "com.example", inputs: ["x"], outputs: ["y"]))
        b.node("Relu", ["x"], ["z"])
        b.output("y")
        b.output("z")
        let g = try b.infer()
        #expect(g.issues.contains { $0.kind == .unknownOp && $0.opType == "com.example.MysteryOp" })
        #expect(g.type(of: "z")?.shape == [.value(2)])
    }

    @Test func ifInfersBothBranchesAndMergesDifferingDims() throws {
        var then = GraphBuilder()
        then.node("Relu", ["x"], ["t"])
        then.output("t")
        var otherwise = GraphBuilder()
        otherwise.ints("shape", [4, -1])
        otherwise.node("Reshape", ["x", "shape"], ["e"])
        otherwise.output("e")
        var b = GraphBuilder()
        b.input("c", .bool, [])
        b.input("x", .float, [.value(4), .value(6)])
        b.node("If", ["c"], ["y"], ["then_branch": .graph(then.graph), "else_branch": .graph(otherwise.graph)])
        b.output("y")
        let g = try b.infer()
        #expect(g.type(of: "y")?.shape == [4, 6].map(Dim.value))
        #expect(g.subgraphs["y"]?["then_branch"]?.count == 1)
        #expect(g.subgraphs["y"]?["else_branch"]?.first?.type(of: "e")?.shape == [4, 6].map(Dim.value))
    }

    @Test func elementLimitRefusesAbsurdShapes() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1 << 20), .value(1 << 20)])
        b.node("Relu", ["x"], ["y"])
        b.output("y")
        var options = InferenceOptions()
        options.maxElements = 1 << 30
        #expect(throws: InferenceError.self) { try b.infer(options) }
    }
}

extension ShapeRuleTests {
    /// The legacy PyTorch exporter's dynamic `expand`: Where(Equal(shape, -1 * ones), ones, shape).
    @Test func exporterExpandPatternKeepsSymbols() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.symbol("batch"), .value(1), .value(768)])
        b.node("Shape", ["x"], ["s"])
        b.node("Shape", ["s"], ["n"])
        b.node("ConstantOfShape", ["n"], ["ones"], ["value": .tensor(TensorData(name: "v", elementType: .int64, dims: [1], storage: .bytes([1, 0, 0, 0, 0, 0, 0, 0])))])
        b.ints("minus_one", [-1])
        b.node("Mul", ["ones", "minus_one"], ["neg"])
        b.node("Equal", ["s", "neg"], ["eq"])
        b.node("Where", ["eq", "ones", "s"], ["target"])
        b.node("Expand", ["x", "target"], ["y"])
        b.output("y")
        let g = try b.infer()
        #expect(g.facts["eq"]?.constant == .ints([.value(0), .value(0), .value(0)]))
        #expect(g.type(of: "y")?.shape == [.symbol("batch"), .value(1), .value(768)])
    }
}
