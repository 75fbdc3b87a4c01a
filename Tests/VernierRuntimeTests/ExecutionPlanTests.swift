import Foundation
import Testing
import VernierGraph
import VernierTestSupport
@testable import VernierRuntime

/// The executor's plan-level choices (graph passes, blocked layouts, the arena) must not
/// change results: the same graph runs with each switched off and agrees.
struct ExecutionPlanTests {
    /// A CNN block touching every blocked kernel: conv, max pool, a squeeze-and-excitation
    /// scale (per-channel Mul), a channel concat, average pool, residual add, global pool.
    static func cnn() -> GraphBuilder {
        var rng = SplitMix64(seed: 11)
        var b = GraphBuilder()
        func weights(_ name: String, _ dims: [Int]) {
            let count = dims.reduce(1, *)
            b.initializers.append(TensorData(floats: (0..<count).map { _ in rng.signedUnit() * 0.3 }, name: name, dims: dims))
        }
        b.input("x", .float, [1, 3, 20, 20].map(Dim.value))
        weights("w0", [16, 3, 3, 3]); weights("b0", [16])
        weights("w1", [16, 16, 3, 3])
        weights("w2", [16, 32, 1, 1])
        weights("w3", [16, 16, 3, 3])
        weights("se_w", [16, 16, 1, 1])
        b.node("Conv", ["x", "w0", "b0"], ["c0"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Relu", ["c0"], ["r0"])
        b.node("MaxPool", ["r0"], ["p0"], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        b.node("Conv", ["p0", "w1"], ["c1"], ["pads": .ints([1, 1, 1, 1])])
        b.node("GlobalAveragePool", ["c1"], ["g1"])
        b.node("Conv", ["g1", "se_w"], ["s1"])
        b.node("Sigmoid", ["s1"], ["sig1"])
        b.node("Mul", ["c1", "sig1"], ["m1"])
        b.node("Concat", ["m1", "p0"], ["cat"], ["axis": .int(1)])
        b.node("Conv", ["cat", "w2"], ["c2"])
        // ceil_mode windows that run past the padding, divided by the whole window.
        b.node("AveragePool", ["c2"], ["a2"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]),
                                               "strides": .ints([2, 2]), "ceil_mode": .int(1), "count_include_pad": .int(1)])
        b.node("Conv", ["a2", "w3"], ["c3"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Add", ["c3", "a2"], ["sum"])
        b.node("Relu", ["sum"], ["r3"])
        b.node("GlobalMaxPool", ["r3"], ["y"])
        b.output("y")
        return b
    }

    func run(_ options: ExecutionOptions) throws -> (plan: ExecutionPlan, output: Tensor) {
        let b = Self.cnn()
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: options)
        var rng = SplitMix64(seed: 3)
        let x = Tensor(shape: [1, 3, 20, 20], values: (0..<1200).map { _ in rng.signedUnit() })
        let output = try #require(try plan.run(["x": x])["y"])
        return (plan, output)
    }

    /// The plan names the library implementation each oneDNN convolution runs on, and a
    /// profile's steps carry it; the executor's own kernels name none.
    @Test func plansNameTheImplementationsTheirConvolutionsRunOn() throws {
        let plan = try run(ExecutionOptions()).plan
        let implementations = plan.implementations
        let convolutions = Set(plan.steps.filter { $0.opType == "Conv" }.map(\.name))
        #expect(!implementations.isEmpty && Set(implementations.keys).isSubset(of: convolutions), "\(implementations)")
        #expect(implementations.values.allSatisfy { !$0.isEmpty && $0 != "unknown" })
        let runs = MeasurementSession(plan: plan, inputs: ["x": Tensor(shape: [1, 3, 20, 20])]).result
        #expect(Dictionary(runs.steps.compactMap { s in s.implementation.map { (s.name, $0) } }, uniquingKeysWith: { a, _ in a })
                == implementations)
    }

    @Test func blockedLayoutsFusionAndTheArenaDoNotChangeResults() throws {
        var plain = ExecutionOptions()
        plain.blockedLayouts = false
        plain.optimizeGraph = false
        plain.useArena = false
        let reference = try run(plain).output

        let full = try run(ExecutionOptions())
        #expect(full.plan.channelBlockedValues.count >= 8, "the CNN should run mostly blocked: \(full.plan.channelBlockedValues.sorted())")
        // The squeeze-and-excitation Mul writes its result in place in the blocked Concat.
        #expect(full.plan.memoryPlan?.innerSpans.isEmpty == false)
        #expect(full.plan.arenaBytes > 0)
        #expect(relativeError(full.output, reference) < 1e-5)

        var noBlocking = ExecutionOptions()
        noBlocking.blockedLayouts = false
        #expect(relativeError(try run(noBlocking).output, reference) < 1e-5)
    }

    /// Channel counts that do not fill whole blocks (24 = 16 + 8, 40 = 32 + 8 on AVX-512;
    /// whole blocks of 8 on AVX2) run blocked with padding channels: a conv chain through
    /// a squeeze-and-excitation Mul, a per-channel Div, a Sigmoid, max and average
    /// pooling, a residual Add, a BatchNormalization and a global pool agrees with the
    /// plain executor, and the
    /// padding never reaches a result (a NaN there would spread through the next conv).
    @Test(arguments: [24, 40])
    func paddedChannelBlocksMatchThePlainExecutor(channels c: Int) throws {
        var rng = SplitMix64(seed: 17)
        var b = GraphBuilder()
        func weights(_ name: String, _ dims: [Int], scale: Float = 0.3) {
            let count = dims.reduce(1, *)
            b.initializers.append(TensorData(floats: (0..<count).map { _ in rng.signedUnit() * scale }, name: name, dims: dims))
        }
        b.input("x", .float, [1, 3, 18, 18].map(Dim.value))
        weights("w0", [c, 3, 3, 3]); weights("w1", [c, 1, 3, 3]); weights("w2", [c, c, 1, 1]); weights("se", [c, c, 1, 1])
        weights("w3", [c, c, 3, 3]); weights("w4", [5, c, 1, 1])
        b.initializers.append(TensorData(floats: (0..<c).map { Float($0 % 7) + 1.5 }, name: "divisor", dims: [1, c, 1, 1]))
        b.node("Conv", ["x", "w0"], ["c0"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Sigmoid", ["c0"], ["s0"])
        b.node("MaxPool", ["s0"], ["p0"], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        // Depthwise, then a squeeze-and-excitation scale of its output.
        b.node("Conv", ["p0", "w1"], ["d1"], ["pads": .ints([1, 1, 1, 1]), "group": .int(c)])
        b.node("GlobalAveragePool", ["d1"], ["g1"])
        b.node("Conv", ["g1", "se"], ["e1"])
        b.node("Sigmoid", ["e1"], ["es1"])
        b.node("Mul", ["d1", "es1"], ["m1"])
        b.node("Div", ["m1", "divisor"], ["q1"])
        b.node("Conv", ["q1", "w2"], ["c2"])
        b.node("AveragePool", ["c2"], ["a2"], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])
        b.node("Conv", ["a2", "w3"], ["c3"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Add", ["c3", "p0"], ["sum"])
        // A BatchNormalization no conv precedes (DenseNet's pre-activation), then ReLU.
        for (name, offset) in [("bn_scale", 0.5), ("bn_bias", -0.2), ("bn_mean", 0.1), ("bn_var", 0.8)] {
            b.initializers.append(TensorData(floats: (0..<c).map { Float(offset) + Float($0 % 5) * 0.1 }, name: name, dims: [c]))
        }
        b.node("BatchNormalization", ["sum", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"])
        b.node("Relu", ["bn"], ["act"])
        b.node("Conv", ["act", "w4"], ["y"])
        b.node("GlobalMaxPool", ["sum"], ["pooled"])
        b.output("y"); b.output("pooled")
        let x = Tensor(shape: [1, 3, 18, 18], values: (0..<(3 * 18 * 18)).map { _ in rng.signedUnit() })
        var plain = ExecutionOptions()
        plain.blockedLayouts = false
        plain.optimizeGraph = false
        let reference = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        for value in ["p0", "d1", "m1", "q1", "c2", "a2", "sum", "act"] {
            #expect(plan.channelBlockedValues.contains(value), "\(value) runs blocked")
        }
        let normalization = try #require(plan.steps.first { $0.opType == "BatchNormalization" })
        #expect(normalization.sourceNodes.count == 2, "the Relu should fuse into the BatchNormalization")
        #expect(TensorLayout.channelBlocked(preferredChannelBlock).pads([1, c, 9, 9]) == (c % preferredChannelBlock != 0))
        let outputs = try plan.run(["x": x])
        for name in ["y", "pooled"] {
            let output = try #require(outputs[name]), expected = try #require(reference[name])
            #expect(output.shape == expected.shape)
            #expect(output.scalars(as: Float.self).allSatisfy { $0.isFinite })
            #expect(relativeError(output, expected) < 1e-5, "\(name)")
        }
    }

    /// Convolutions on small maps with large weights run as one matrix product over the
    /// windows (`WindowGemmConvPlan`: padding, stride 2, a fused residual and ReLU, a bias
    /// and Sigmoid, a 1x1 kernel) and agree with oneDNN's direct convolution in the plain
    /// executor.
    @Test func smallMapConvolutionsAsMatrixProductsMatchThePlainExecutor() throws {
        var rng = SplitMix64(seed: 29)
        var b = GraphBuilder()
        func weights(_ name: String, _ dims: [Int], scale: Float = 0.05) {
            let count = dims.reduce(1, *)
            b.initializers.append(TensorData(floats: (0..<count).map { _ in rng.signedUnit() * scale }, name: name, dims: dims))
        }
        let c = 256
        b.input("x", .float, [1, 16, 16, 16].map(Dim.value))
        weights("w0", [c, 16, 3, 3], scale: 0.3); weights("w1", [c, c, 3, 3]); weights("w2", [c, c, 3, 3])
        weights("b2", [c]); weights("w3", [2048, c, 1, 1]); weights("w4", [8, 2048, 1, 1])
        b.node("Conv", ["x", "w0"], ["c0"], ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
        b.node("Relu", ["c0"], ["r0"])
        b.node("Conv", ["r0", "w1"], ["c1"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Add", ["c1", "r0"], ["s1"])
        b.node("Relu", ["s1"], ["r1"])
        b.node("Conv", ["r1", "w2", "b2"], ["c2"], ["pads": .ints([1, 0, 1, 2]), "strides": .ints([2, 2])])
        b.node("Sigmoid", ["c2"], ["g2"])
        b.node("Conv", ["g2", "w3"], ["c3"])
        b.node("Conv", ["c3", "w4"], ["y"])
        b.output("y")
        let x = Tensor(shape: [1, 16, 16, 16], values: (0..<(16 * 16 * 16)).map { _ in rng.signedUnit() })
        var plain = ExecutionOptions()
        plain.blockedLayouts = false
        plain.optimizeGraph = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain)
            .run(["x": x])["y"])
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        let lowered = plan.steps.filter { ($0.kernel as? ConvKernel)?.windowPlan != nil }.map(\.name)
        #expect(lowered.count == 3, "the 3x3 convolutions on 8x8 and 4x4 maps and the 256 -> 2048 1x1: \(lowered)")
        // Twice: the second run reuses the plan's windows and copies.
        for _ in 0..<2 {
            let output = try #require(try plan.run(["x": x])["y"])
            #expect(output.shape == reference.shape)
            #expect(relativeError(output, reference) < 1e-5)
        }
    }

    /// Nearest-neighbour Resize between convolutions runs on the blocked layout (padded
    /// too, at 24 channels) and agrees with the plain executor: x -> Conv -> Resize ->
    /// Conv -> y, under the coordinate and rounding modes detectors export (2x upsampling
    /// by scales, by sizes, and a non-integer 1.5x).
    @Test(arguments: [
        (24, "asymmetric", "floor", [1, 1, 2, 2] as [Float], [] as [Int], [14, 14]),
        (32, "half_pixel", "round_prefer_floor", [1, 1, 1.5, 1.5] as [Float], [] as [Int], [10, 10]),
        (24, "pytorch_half_pixel", "round_prefer_ceil", [] as [Float], [1, 24, 21, 14], [21, 14]),
    ])
    func nearestResizeRunsBlockedBetweenConvolutions(channels c: Int, coordinates: String, rounding: String,
                                                     scales: [Float], sizes: [Int], spatial: [Int]) throws {
        var rng = SplitMix64(seed: 23)
        var b = GraphBuilder()
        b.input("x", .float, [1, 3, 7, 7].map(Dim.value))
        for (name, dims) in [("w0", [c, 3, 3, 3]), ("w1", [5, c, 3, 3])] {
            let count = dims.reduce(1, *)
            b.initializers.append(TensorData(floats: (0..<count).map { _ in rng.signedUnit() * 0.3 }, name: name, dims: dims))
        }
        b.floats("roi", [])
        b.floats("scales", scales)
        var resizeInputs = ["c0", "roi", "scales"]
        if !sizes.isEmpty {
            b.ints("sizes", sizes)
            resizeInputs = ["c0", "", "", "sizes"]
        }
        b.node("Conv", ["x", "w0"], ["c0"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Resize", resizeInputs, ["r0"], ["mode": .string("nearest"), "coordinate_transformation_mode": .string(coordinates),
                                                "nearest_mode": .string(rounding)])
        b.node("Conv", ["r0", "w1"], ["y"], ["pads": .ints([1, 1, 1, 1])])
        b.output("y")
        let x = Tensor(shape: [1, 3, 7, 7], values: (0..<(3 * 49)).map { _ in rng.signedUnit() })
        var plain = ExecutionOptions()
        plain.blockedLayouts = false
        let reference = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.channelBlockedValues.isSuperset(of: ["c0", "r0"]))
        let output = try #require(try plan.run(["x": x])["y"]), expected = try #require(reference["y"])
        #expect(output.shape == expected.shape && output.shape == [1, 5] + spatial)
        #expect(relativeError(output, expected) < 1e-5)
    }

    /// Window pooling on blocked tensors against the plain kernels, over windows whose
    /// outputs fall inside, across and past the input's edges: x -> Conv 1x1 (16 ch) ->
    /// pool -> Conv 1x1 -> y, so the pool runs blocked and every pooled value reaches y.
    /// Windows of more than four taps combine rows first (`BlockedPoolRow.separable`),
    /// 2x2 ones on this narrow map go tap by tap.
    @Test(arguments: [
        ("MaxPool", [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 0, 0),
        ("MaxPool", [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 0, 0),
        ("MaxPool", [2, 3], [2, 1], [0, 1, 1, 0], [2, 1], 1, 0),
        ("MaxPool", [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], 1, 0),
        ("AveragePool", [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 1, 1),
        ("AveragePool", [3, 2], [1, 2], [1, 0, 0, 1], [1, 1], 0, 0),
        ("AveragePool", [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], 0, 0),
        ("AveragePool", [2, 2], [2, 2], [0, 1, 0, 1], [1, 1], 0, 1),
    ])
    func blockedWindowPoolingMatchesThePlainKernel(op: String, kernel: [Int], strides: [Int], pads: [Int], dilations: [Int],
                                                   ceil: Int, includePad: Int) throws {
        try blockedPoolMatchesPlain(op: op, kernel: kernel, strides: strides, pads: pads, dilations: dilations, ceil: ceil,
                                    includePad: includePad, width: 17)
    }

    /// 2x2 windows on a map at least `BlockedWindowPoolKernel.separableWidth` wide combine
    /// rows first, and agree with the plain kernels too.
    @Test func wideTwoByTwoPoolsCombineRowsFirst() throws {
        let width = BlockedWindowPoolKernel.separableWidth + 3
        try blockedPoolMatchesPlain(op: "MaxPool", kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil: 1,
                                    includePad: 0, width: width)
        try blockedPoolMatchesPlain(op: "AveragePool", kernel: [2, 2], strides: [2, 2], pads: [1, 0, 0, 1], dilations: [1, 1], ceil: 0,
                                    includePad: 0, width: width)
    }

    func blockedPoolMatchesPlain(op: String, kernel: [Int], strides: [Int], pads: [Int], dilations: [Int], ceil: Int,
                                 includePad: Int, width: Int) throws {
        var rng = SplitMix64(seed: 29)
        var b = GraphBuilder()
        b.input("x", .float, [1, 8, 13, width].map(Dim.value))
        b.initializers.append(TensorData(floats: (0..<128).map { _ in rng.signedUnit() }, name: "w0", dims: [16, 8, 1, 1]))
        b.initializers.append(TensorData(floats: (0..<64).map { _ in rng.signedUnit() }, name: "w1", dims: [4, 16, 1, 1]))
        b.node("Conv", ["x", "w0"], ["c"])
        var attributes: [String: AttributeValue] = ["kernel_shape": .ints(kernel), "strides": .ints(strides), "pads": .ints(pads),
                                                    "ceil_mode": .int(ceil)]
        if op == "MaxPool" { attributes["dilations"] = .ints(dilations) } else { attributes["count_include_pad"] = .int(includePad) }
        b.node(op, ["c"], ["p"], attributes)
        b.node("Conv", ["p", "w1"], ["y"])
        b.output("y")
        let x = Tensor(shape: [1, 8, 13, width], values: (0..<(8 * 13 * width)).map { _ in rng.signedUnit() })
        var plain = ExecutionOptions()
        plain.blockedLayouts = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])["y"])
        let blocked = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(blocked.channelBlockedValues.contains("p"), "the pool runs blocked")
        let output = try #require(try blocked.run(["x": x])["y"])
        #expect(output.shape == reference.shape)
        #expect(relativeError(output, reference) < 1e-5, "\(op) \(kernel) width \(width)")
    }

    /// A transformer feed-forward block (`GraphBuilder.feedForward`) with random weights
    /// and enough rows (70) and hidden columns (800) that the up-projection runs as
    /// column panels.
    static func feedForward() -> GraphBuilder {
        var rng = SplitMix64(seed: 5)
        return GraphBuilder.feedForward([1, 70, 32], hidden: 800) { name, dims in
            TensorData(floats: (0..<dims.reduce(1, *)).map { _ in rng.signedUnit() * 0.2 }, name: name, dims: dims)
        }
    }

    /// Concat inputs written in place in the output (a Concat nested in another, an
    /// input with a second reader, one taken by an earlier Concat, along a later axis
    /// behind dims of 1, reshapes of values written in place) give the outputs of
    /// separate buffers, run after run.
    @Test func concatInputsWrittenInPlaceGiveTheSameOutputs() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 6, 5, 8].map(Dim.value))
        b.nestedConcats(of: "x")
        b.node("Exp", ["x"], ["g"])
        b.node("Concat", ["a", "g"], ["h"], ["axis": .int(3)])  // a is taken: copied
        b.input("z", .float, [1, 1, 5, 16].map(Dim.value))
        b.node("Sin", ["z"], ["k"])
        b.node("Cos", ["z"], ["c"])
        b.node("Concat", ["k", "c"], ["m"], ["axis": .int(2)])
        b.node("Erf", ["x"], ["q"])
        b.node("Atan", ["x"], ["o"])
        b.ints("flat", [1, 240])
        b.node("Reshape", ["q", "flat"], ["qr"])
        b.node("Reshape", ["o", "flat"], ["or"])
        b.node("Concat", ["qr", "or"], ["p"], ["axis": .int(1)])
        b.output("e"); b.output("f"); b.output("h"); b.output("m"); b.output("p")
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: [1, 6, 5, 8], values: (0..<240).map { _ in rng.signedUnit() * 2 })
        let z = Tensor(shape: [1, 1, 5, 16], values: (0..<80).map { _ in rng.signedUnit() * 2 })
        var separate = ExecutionOptions()
        separate.useArena = false
        let reference = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: separate).run(["x": x, "z": z])
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.memoryPlan?.innerSpans["t"] != nil && plan.memoryPlan?.innerSpans["k"] != nil)
        #expect(plan.memoryPlan?.innerSpans["o"] != nil)
        // The Concats all of whose inputs are written in place copy nothing: e (d and t),
        // m (behind dims of 1) and p (reshapes); d keeps n's copy (Abs reads n too) and h
        // concatenates along the last axis. The Reshapes return views. Prediction, which
        // runs no plan, finds the same.
        let inferred = try b.infer()
        func node(_ output: String) throws -> String {
            try #require(inferred.graph.nodes.first { $0.outputs.first == output }).displayName
        }
        #expect(plan.copyFreeSteps == Set(try ["e", "m", "p", "qr", "or"].map(node)), "\(plan.copyFreeSteps)")
        #expect(ExecutionPlan.copyFreeSteps(GraphPasses.optimize(inferred), channelBlock: preferredChannelBlock) == plan.copyFreeSteps)
        for _ in 0..<2 {
            let outputs = try plan.run(["x": x, "z": z])
            for name in ["e", "f", "h", "m", "p"] {
                let got = try #require(outputs[name]), want = try #require(reference[name])
                #expect(got.shape == want.shape && got.scalars(as: Float.self) == want.scalars(as: Float.self), "\(name)")
            }
        }
    }

    @Test func transformerFusionsDoNotChangeResults() throws {
        let b = Self.feedForward()
        var rng = SplitMix64(seed: 8)
        let x = Tensor(shape: [1, 70, 32], values: (0..<2240).map { _ in rng.signedUnit() })
        var plain = ExecutionOptions()
        plain.optimizeGraph = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])["y"])
        let fused = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(fused.steps.map(\.sourceNodes.count) == [7, 3, 1], "\(fused.steps.map(\.sourceNodes))")
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(relativeError(output, reference) < 1e-5)
    }

    /// A sigmoid moved ahead of a reshape and a transpose into the Conv (a YOLO head),
    /// and the reshape and transpose then fused into it too, give the same outputs as
    /// the graph run as written.
    @Test func anActivationMovedAheadOfReshapesGivesTheSameOutputs() throws {
        var rng = SplitMix64(seed: 21)
        let b = GraphBuilder.detectHead(channels: 8, anchors: 3, fields: 4, size: 5) { name, dims in
            TensorData(floats: (0..<dims.reduce(1, *)).map { _ in rng.signedUnit() }, name: name, dims: dims)
        }
        let x = Tensor(shape: [1, 8, 5, 5], values: (0..<200).map { _ in rng.signedUnit() * 3 })
        var plain = ExecutionOptions()
        plain.optimizeGraph = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])["y"])
        let fused = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(fused.steps.map(\.opType) == ["Conv"])
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.shape == [1, 3, 5, 5, 4])
        #expect(relativeError(output, reference) < 1e-5)
    }

    /// A head's split into anchors and move of channels last, fused into its Conv, gives
    /// exactly the graph's values: from a channel-blocked result (255 channels, the last
    /// block padded by one), from a plain one (18 channels would pad 16-channel blocks by
    /// 14), with two images, and on the second run of the plan as on the first.
    @Test(arguments: [(64, 3, 85, 12, 1), (8, 3, 6, 5, 2), (16, 2, 16, 7, 2)])
    func aHeadsAnchorSplitFusedIntoItsConvGivesTheGraphsValues(channels: Int, anchors: Int, fields: Int, size: Int, batch: Int) throws {
        var rng = SplitMix64(seed: 29)
        let b = GraphBuilder.detectHead(channels: channels, anchors: anchors, fields: fields, size: size, batch: batch) { name, dims in
            TensorData(floats: (0..<dims.reduce(1, *)).map { _ in rng.signedUnit() }, name: name, dims: dims)
        }
        let count = batch * channels * size * size
        let x = Tensor(shape: [batch, channels, size, size], values: (0..<count).map { _ in rng.signedUnit() * 3 })
        var plain = ExecutionOptions()
        plain.optimizeGraph = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])["y"])
        let fused = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(fused.steps.map(\.opType) == ["Conv"])
        #expect(fused.steps.first?.kernel is SplitTransposeConvKernel)
        #expect(Set(fused.steps.first?.sourceNodes ?? []) == ["c", "r", "t", "y"])
        for _ in 0..<2 {
            let output = try #require(try fused.run(["x": x])["y"])
            #expect(output.shape == [batch, anchors, size, size, fields])
            #expect(relativeError(output, reference) < 1e-6)
        }
    }

    /// A ConvTranspose with a BatchNormalization folded in and a Relu fused after it
    /// runs as one step with the graph's values: kernel equal to the stride (a DBNet
    /// head, the patch kernel), an overlapping kernel with padding (oneDNN), and two
    /// groups.
    @Test(arguments: [(6, 5, [2, 2], [2, 2], [0, 0, 0, 0], 1), (4, 6, [3, 3], [2, 2], [1, 1, 1, 1], 1),
                      (4, 6, [2, 2], [2, 2], [0, 0, 0, 0], 2)])
    func aBatchNormFoldedIntoAConvTransposeGivesTheGraphsValues(inputs ic: Int, outputs oc: Int, kernel: [Int], strides: [Int],
                                                                pads: [Int], group: Int) throws {
        var rng = SplitMix64(seed: 41)
        func values(_ n: Int, _ scale: Float = 1, offset: Float = 0) -> [Float] { (0..<n).map { _ in rng.signedUnit() * scale + offset } }
        var b = GraphBuilder()
        b.input("x", .float, [1, ic, 7, 6].map(Dim.value))
        let weightDims = [ic, oc / group] + kernel
        b.initializers.append(TensorData(floats: values(weightDims.reduce(1, *)), name: "W", dims: weightDims))
        b.floats("bias", values(oc))
        b.floats("scale", values(oc, 2))
        b.floats("shift", values(oc))
        b.floats("mean", values(oc))
        b.floats("var", values(oc, 0.5, offset: 1))
        b.node("ConvTranspose", ["x", "W", "bias"], ["c"],
               ["kernel_shape": .ints(kernel), "strides": .ints(strides), "pads": .ints(pads), "group": .int(group)])
        b.node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"])
        b.node("Relu", ["n"], ["y"])
        b.output("y")
        let x = Tensor(shape: [1, ic, 7, 6], values: values(ic * 42, 3))
        var plain = ExecutionOptions()
        plain.optimizeGraph = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])["y"])
        let fused = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(fused.steps.map(\.opType) == ["ConvTranspose"])
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.shape == reference.shape)
        #expect(relativeError(output, reference) < 1e-5)
        #expect(reference.scalars(as: Float.self).contains(0) && reference.scalars(as: Float.self).contains { $0 > 0 },
                "the Relu should clip some values and keep others")
    }

    /// A transpose that does not move the channels last keeps its own step.
    @Test func aReshapeAndTransposeOfAnotherOrderStay() throws {
        var b = GraphBuilder.detectHead(channels: 8, anchors: 3, fields: 4, size: 5) { name, dims in
            TensorData(floats: Array(repeating: 0.1, count: dims.reduce(1, *)), name: name, dims: dims)
        }
        let t = try #require(b.nodes.firstIndex { $0.opType == "Transpose" })
        b.nodes[t].attributes = [Attribute(name: "perm", value: .ints([0, 1, 2, 4, 3]))]
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.steps.map(\.opType) == ["Conv", "Reshape", "Transpose"])
    }

    /// Runs of one plan from several threads at once are serialized (one arena, one
    /// oneDNN stream): each caller gets exactly the output a lone run gives.
    @Test func runsFromSeveralThreadsAtOnceGiveTheLoneRunsOutputs() throws {
        let (plan, _) = try run(ExecutionOptions())
        let inputs = (0..<8).map { k -> Tensor in
            var rng = SplitMix64(seed: UInt64(100 + k))
            return Tensor(shape: [1, 3, 20, 20], values: (0..<1200).map { _ in rng.signedUnit() })
        }
        let expected = try inputs.map { try #require(try plan.run(["x": $0])["y"]).scalars(as: Float.self) }
        let results = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: inputs.count * 4)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: inputs.count * 4) { i in
            results[i] = (try? plan.run(["x": inputs[i % inputs.count]])["y"]?.scalars(as: Float.self)) ?? []
        }
        // Within rounding (another suite may change the thread count between runs); a
        // run that read or wrote another's buffers would be off by the data itself.
        for i in 0..<results.count {
            let want = expected[i % inputs.count]
            let close = results[i].count == want.count
                && zip(results[i], want).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }
            #expect(close, "concurrent run \(i) differs from its lone run")
        }
    }

    @Test func fusedStepsNameEveryOriginalNode() throws {
        let (plan, _) = try run(ExecutionOptions())
        let named = plan.steps.flatMap(\.sourceNodes)
        let original = Self.cnn().nodes.map(\.displayName)
        #expect(Set(named) == Set(original), "every original node is named by exactly the steps that run it")
        #expect(named.count == original.count)
        #expect(plan.steps.contains { $0.sourceNodes == ["c0", "r0"] })
        #expect(plan.steps.contains { $0.sourceNodes == ["c3", "sum", "r3"] })
    }

    @Test func anOpWithoutAKernelIsNamedWithItsNodes() throws {
        var b = GraphBuilder()
        b.input("x", .float, [2, 3].map(Dim.value))
        b.node("Relu", ["x"], ["r"])
        b.node("Celu", ["r"], ["c"])
        b.node("NonMaxSuppression", ["r", "c"], ["y"])
        b.output("y")
        do {
            _ = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
            Issue.record("compiled a graph with an op that has no kernel")
        } catch let error as ExecutionError {
            #expect("\(error)".contains("NonMaxSuppression (1 node: 'y')"))
        }
    }

    @Test func nodesOfConstantsAloneAreFoldedAtPlanTime() throws {
        var b = GraphBuilder()
        b.input("x", .float, [3].map(Dim.value))
        b.floats("a", [1, 2, 3])
        b.floats("b", [10, 20, 30])
        b.node("Add", ["a", "b"], ["c"])          // constants only: folded
        b.node("Neg", ["c"], ["n"])               // still constants only: folded
        b.node("Mul", ["x", "n"], ["y"])          // runs
        b.output("y")
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.foldedNodeCount == 2)
        #expect(plan.steps.map(\.opType) == ["Mul"])
        let y = try #require(try plan.run(["x": Tensor(shape: [3], values: [1, 0.5, -1])])["y"])
        #expect(y.scalars(as: Float.self) == [-11, -11, 33])
    }

    /// Outputs are copied out of the arena into a buffer the next run reuses only once
    /// the caller has let go of it: a kept result never changes under the caller.
    /// The caller's input is read where it is (no copy into the arena) and never
    /// written, though the plan computes the next value in the input's planned place;
    /// an input off a 64-byte boundary is copied in and gives the same outputs.
    @Test func inputsAreReadInPlaceAndNeverWritten() throws {
        var b = GraphBuilder()
        b.input("x", .float, [20].map(Dim.value))
        b.node("Neg", ["x"], ["n"])
        b.node("Relu", ["n"], ["y"])
        b.output("y")
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.memoryPlan?.bufferOf["n"] == plan.memoryPlan?.bufferOf["x"], "Neg should be planned in the input's place")
        let values = (0..<20).map { Float($0) - 9.5 }
        let expected = values.map { max(-$0, 0) }
        let x = Tensor(shape: [20], values: values)
        #expect(try plan.run(["x": x])["y"]?.scalars(as: Float.self) == expected)
        #expect(x.scalars(as: Float.self) == values, "the run wrote into the caller's input")

        let shifted = TensorBuffer(byteCount: 21 * 4)
        let misaligned = Tensor(elementType: .float, shape: [20], buffer: shifted, byteOffset: 4)
        misaligned.rawPointer.copyMemory(from: values, byteCount: 80)
        #expect(try plan.run(["x": misaligned])["y"]?.scalars(as: Float.self) == expected)
        #expect(misaligned.scalars(as: Float.self) == values)
    }

    /// A graph output whose Concat inputs are written in place inside it: the whole
    /// planned buffer goes to the output's own buffer, the Concat's producers write
    /// there, and the values match the graph run without fusion, arena or regions, on
    /// every run, whether the caller keeps the last outputs or not.
    @Test func anOutputWithConcatInputsWrittenInPlaceLeavesTheArenaWhole() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 6, 4, 4].map(Dim.value))
        b.node("Relu", ["x"], ["r"])
        b.node("Neg", ["x"], ["n"])
        b.node("Sigmoid", ["x"], ["s"])
        b.node("Concat", ["r", "n", "s"], ["y"], ["axis": .int(1)])
        b.output("y")
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.memoryPlan?.innerSpans.count == 3, "the Concat's inputs should be planned inside it")
        #expect(plan.outputRegions.count == 1 && plan.outputRegions.first?.slots.count == 4)
        var plain = ExecutionOptions()
        plain.useArena = false
        let reference = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain)
        var rng = SplitMix64(seed: 43)
        var kept: [Tensor] = []
        for round in 0..<4 {
            let x = Tensor(shape: [1, 6, 4, 4], values: (0..<96).map { _ in rng.signedUnit() * 4 })
            let got = try #require(try plan.run(["x": x])["y"]), want = try #require(try reference.run(["x": x])["y"])
            #expect(got.scalars(as: Float.self) == want.scalars(as: Float.self))
            if round % 2 == 0 { kept.append(got) }
        }
        #expect(kept.count == 2 && kept[0].buffer !== kept[1].buffer)
    }

    @Test func outputsKeptByTheCallerAreNeverOverwrittenAndReleasedOnesAreReused() throws {
        var b = GraphBuilder()
        b.input("x", .float, [3].map(Dim.value))
        b.node("Neg", ["x"], ["n"])
        b.node("Relu", ["n"], ["y"])
        b.output("y")
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        #expect(plan.arenaBytes > 0, "the output must come out of the arena for this test to mean anything")
        let first = try #require(try plan.run(["x": Tensor(shape: [3], values: [-1, -2, 3])])["y"])
        let second = try #require(try plan.run(["x": Tensor(shape: [3], values: [-4, -5, 6])])["y"])
        #expect(first.buffer !== second.buffer)
        #expect(first.scalars(as: Float.self) == [1, 2, 0], "the first result, still held, was overwritten")
        #expect(second.scalars(as: Float.self) == [4, 5, 0])
        // Results let go of before the next run: the plan keeps their buffer (a weak
        // reference shows it alive) and the next run writes into that same object.
        func runAndRelease(_ values: [Float]) throws -> (buffer: TensorBuffer?, values: [Float]) {
            let y = try #require(try plan.run(["x": Tensor(shape: [3], values: values)])["y"])
            return (y.buffer, y.scalars(as: Float.self))
        }
        var third = try runAndRelease([-7, -8, 9])
        weak var kept = third.buffer
        third.buffer = nil
        #expect(kept != nil, "the plan let go of the output buffer")
        let fourth = try runAndRelease([-1, 0, 1])
        #expect(third.values == [7, 8, 0] && fourth.values == [1, 0, 0])
        #expect(kept != nil && fourth.buffer === kept, "a released output buffer was not reused")
        #expect(first.scalars(as: Float.self) == [1, 2, 0])
    }
}
