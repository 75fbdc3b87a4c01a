import Foundation
import Testing
import VernierGraph
import VernierRuntime
import VernierTestSupport
@testable import VernierPlanner

/// Channel groups and structured pruning on small in-memory models: the groups found,
/// the tensors sliced, and that every pruned model is valid ONNX (libonnx's checker),
/// re-infers, runs on Vernier's executor and keeps its graph outputs' shapes.
/// Serialized: the executor's oneDNN engine (one stream, one shared scratchpad) must not
/// run two plans at once, and concurrent runs were seen to give wrong outputs.
@Suite(.serialized) struct ChannelPruningTests {
    // MARK: helpers

    static func analyze(_ model: Model) throws -> AnalyzedModel { try ModelAnalyzer().analyze(model: model) }

    static func prune(_ model: Model, _ options: PruningOptions) throws -> (original: AnalyzedModel, pruned: PrunedModel) {
        let analyzed = try analyze(model)
        let pruned = try ChannelPruner.prune(analyzed, dependencies: ChannelDependencyAnalysis.analyze(analyzed), options: options)
        return (analyzed, pruned)
    }

    static func tensor(_ name: String, in model: Model) -> TensorData? {
        model.graph.initializers.first { $0.name == name }
    }

    static func floats(_ t: TensorData?) -> [Float] { t?.doubleValues()?.map(Float.init) ?? [] }

    /// Runs `analyzed` on the executor with seeded inputs; returns every output.
    static func run(_ analyzed: AnalyzedModel) throws -> [String: Tensor] {
        let plan = try ExecutionPlan.compile(analyzed.inferred, opsets: analyzed.model.opsets)
        var rng = SplitMix64(seed: 3)
        var feeds: [String: Tensor] = [:]
        for input in analyzed.model.graph.runtimeInputs {
            let shape = input.type?.tensorType?.shape?.compactMap(\.intValue) ?? []
            feeds[input.name] = Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in rng.signedUnit() })
        }
        return try plan.run(feeds)
    }

    /// What every pruned model must satisfy: libonnx accepts it, its outputs keep the
    /// original's shapes (inferred and when run), and it runs on the executor.
    static func expectValid(_ pruned: PrunedModel, original: AnalyzedModel, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = try ModelWriter().serialize(pruned.analyzed.model)
        #expect(LibONNX.check(strippedBytes: bytes, full: true) == .valid, sourceLocation: sourceLocation)
        let file = try TemporaryFile(bytes: bytes)
        let reloaded = try withExtendedLifetime(file) { try ModelAnalyzer().analyze(path: file.path) }
        let outputs = try run(pruned.analyzed)
        for output in original.model.graph.outputs {
            let expected = original.inferred.type(of: output.name)?.shape?.compactMap(\.intValue)
            #expect(pruned.analyzed.inferred.type(of: output.name) == original.inferred.type(of: output.name), sourceLocation: sourceLocation)
            #expect(reloaded.inferred.type(of: output.name) == original.inferred.type(of: output.name), sourceLocation: sourceLocation)
            #expect(outputs[output.name]?.shape == expected, "\(output.name)", sourceLocation: sourceLocation)
        }
        // Every node output of the pruned model has a known shape.
        for node in pruned.analyzed.model.graph.nodes {
            for o in node.outputs where !o.isEmpty {
                #expect(pruned.analyzed.inferred.type(of: o)?.isFullyKnown == true, "\(o)", sourceLocation: sourceLocation)
            }
        }
    }

    // MARK: residual

    @Test func residualAddJoinsTheBranchesIntoOneGroup() throws {
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(PruningTestModels.residual()))
        #expect(deps.groups.map(\.name) == ["stem", "conv1", "head"])
        let joined = try #require(deps.group(named: "stem"))
        #expect(joined.producers == ["stem", "conv2"])
        #expect(joined.channels == 8)
        #expect(joined.isPrunable)
        for node in ["stem", "conv1", "conv2", "bn2", "sum", "head"] { #expect(joined.nodes.contains(node), "\(node)") }
        let sliced = Set(joined.slices.map { "\($0.tensor)@\($0.axis)" })
        #expect(sliced == ["stem.w@0", "stem.b@0", "conv1.w@1", "conv2.w@0", "conv2.b@0", "bn2.scale@0", "bn2.bias@0",
                           "bn2.mean@0", "bn2.var@0", "head.w@1"])
        let head = try #require(deps.group(named: "head"))
        #expect(!head.isPrunable)
        #expect(head.blockers.contains { $0.contains("'y' is a graph output") })
    }

    @Test func residualPruningSlicesEveryCoupledTensorAndDropsTheZeroChannel() throws {
        let (original, pruned) = try Self.prune(PruningTestModels.residual(), PruningOptions(ratio: 0.5))
        try Self.expectValid(pruned, original: original)
        let model = pruned.analyzed.model
        let outcome = try #require(pruned.outcomes.first { $0.group.name == "stem" })
        #expect(outcome.kept == 4)
        #expect(!outcome.keptChannels.contains(5), "channel 5 has zero weights and must go first")
        #expect(Self.tensor("stem.w", in: model)?.dims == [4, 3, 3, 3])
        #expect(Self.tensor("conv2.w", in: model)?.dims == [4, 3, 3, 3])   // conv1's group 6 -> 3
        #expect(Self.tensor("conv1.w", in: model)?.dims == [3, 4, 3, 3])
        #expect(Self.tensor("bn2.var", in: model)?.dims == [4])
        #expect(Self.tensor("head.w", in: model)?.dims == [4, 4, 3, 3])
        // The kept stem filters are the original ones, in order.
        let before = Self.floats(Self.tensor("stem.w", in: original.model))
        let after = Self.floats(Self.tensor("stem.w", in: model))
        let expected = outcome.keptChannels.flatMap { Array(before[($0 * 27)..<($0 * 27 + 27)]) }
        #expect(after == expected)
    }

    // MARK: concat

    @Test func concatKeepsEachInputsGroupWithItsOffset() throws {
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(PruningTestModels.dense()))
        #expect(deps.groups.map(\.name) == ["convA", "convB", "convC"])
        let a = try #require(deps.group(named: "convA"))
        let b = try #require(deps.group(named: "convB"))
        #expect(a.isPrunable && b.isPrunable)
        // convC's weight columns: x's 2 channels (fixed), then a's 4 from offset 2, then b's 3 from offset 6.
        #expect(a.slices.contains { $0.tensor == "convC.w" && $0.axis == 1 && $0.offset == 2 })
        #expect(b.slices.contains { $0.tensor == "convC.w" && $0.axis == 1 && $0.offset == 6 })
        #expect(b.slices.contains { $0.tensor == "bn.scale" && $0.offset == 6 })

        let (original, pruned) = try Self.prune(PruningTestModels.dense(), PruningOptions(ratio: 0.5))
        try Self.expectValid(pruned, original: original)
        let model = pruned.analyzed.model
        #expect(Self.tensor("convA.w", in: model)?.dims == [2, 2, 3, 3])
        #expect(Self.tensor("convB.w", in: model)?.dims == [2, 2, 3, 3])   // 3 * 0.5 = 1.5 rounds to 2
        #expect(Self.tensor("convC.w", in: model)?.dims == [5, 6, 1, 1])   // 2 fixed + 2 + 2
        #expect(Self.tensor("bn.mean", in: model)?.dims == [6])
        // The graph input's two channels stay at the front of convC's columns.
        let keptA = try #require(pruned.outcomes.first { $0.group.name == "convA" }).keptChannels
        let beforeC = Self.floats(Self.tensor("convC.w", in: original.model))
        let afterC = Self.floats(Self.tensor("convC.w", in: model))
        #expect(afterC[0..<2] == beforeC[0..<2])
        #expect(afterC[2] == beforeC[2 + keptA[0]])
    }

    // MARK: depthwise

    @Test func depthwiseConvPassesTheGroupThroughAndUpdatesItsGroupAttribute() throws {
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(PruningTestModels.depthwise()))
        #expect(deps.groups.map(\.name) == ["expand", "project", "y"])
        let expand = try #require(deps.group(named: "expand"))
        #expect(expand.nodes.contains("dw"))
        #expect(expand.slices.contains { $0.tensor == "dw.w" && $0.axis == 0 })

        let (original, pruned) = try Self.prune(PruningTestModels.depthwise(), PruningOptions(ratio: 0.3))
        try Self.expectValid(pruned, original: original)
        let model = pruned.analyzed.model
        let dw = try #require(model.graph.nodes.first { $0.name == "dw" })
        #expect(try dw.int("group") == 6)   // 8 * 0.7 = 5.6 -> 6
        #expect(Self.tensor("dw.w", in: model)?.dims == [6, 1, 3, 3])
        #expect(Self.tensor("project.w", in: model)?.dims == [3, 6, 1, 1])
        #expect(Self.tensor("fc.w", in: model)?.dims == [10, 3])
    }

    @Test func groupedConvolutionBlocksItsGroupsNamingTheNode() throws {
        var m = PruningTestModels.Builder()
        m.b.input("x", .float, [.value(1), .value(4), .value(5), .value(5)])
        m.conv("first", "x", "f", inChannels: 4, outChannels: 8)
        m.conv("grouped", "f", "g", inChannels: 8, outChannels: 8, group: 2)
        m.conv("last", "g", "y", inChannels: 8, outChannels: 2)
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(m.finish(output: "y", shape: [1, 2, 5, 5])))
        let first = try #require(deps.group(named: "first"))
        #expect(!first.isPrunable)
        #expect(first.blockers.contains { $0.contains("'grouped'") && $0.contains("group=2") })
        #expect(deps.group(named: "grouped")?.isPrunable == false)
    }

    // MARK: flatten -> gemm

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func flattenIntoGemmRemovesEachChannelsBlockOfFeatures(transB: Bool, reshape: Bool) throws {
        let model = PruningTestModels.flattenGemm(transB: transB, reshape: reshape)
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(model))
        let conv = try #require(deps.group(named: "conv"))
        #expect(conv.isPrunable, "\(conv.blockers)")
        #expect(conv.slices.contains { $0.tensor == "fc1.w" && $0.axis == (transB ? 1 : 0) && $0.span == 16 })

        let (original, pruned) = try Self.prune(model, PruningOptions(ratio: 0.5))
        try Self.expectValid(pruned, original: original)
        let kept = try #require(pruned.outcomes.first { $0.group.name == "conv" }).keptChannels
        let keptOutputs = try #require(pruned.outcomes.first { $0.group.name == "h" }).keptChannels
        #expect(kept.count == 3)
        #expect(keptOutputs.count == 3)   // 5 * 0.5 = 2.5 rounds to 3
        #expect(!kept.contains(2), "channel 2 has zero weights")
        let after = try #require(Self.tensor("fc1.w", in: pruned.analyzed.model))
        #expect(after.dims == (transB ? [3, 48] : [48, 3]))
        // Row/column j of the new weight is feature (kept[j / 16] * 16 + j % 16) of the old one.
        let before = Self.floats(Self.tensor("fc1.w", in: original.model))
        let values = Self.floats(after)
        for j in 0..<48 {
            let old = kept[j / 16] * 16 + j % 16
            let n = keptOutputs[0]   // the first remaining output feature
            let a = transB ? values[j] : values[j * 3]
            let b = transB ? before[n * 96 + old] : before[old * 5 + n]
            #expect(a == b, "feature \(j)")
        }
        if reshape {
            let shape = pruned.analyzed.model.graph.initializers.first { $0.name == "flat_shape" }?.integerValues()
            #expect(shape == [1, 48])
        }
    }

    // MARK: attention

    @Test func attentionPrunesWholeHeadsAcrossQKVAndTheOutputProjection() throws {
        let model = PruningTestModels.attention()
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(model))
        let heads = try #require(deps.group(named: "q_mm"))
        #expect(heads.channels == 4, "four heads")
        #expect(heads.producers == ["q_mm", "k_mm", "v_mm"])
        #expect(heads.isPrunable, "\(heads.blockers)")
        #expect(heads.slices.contains { $0.tensor == "o.w" && $0.axis == 0 && $0.span == 4 })
        #expect(deps.group(named: "o_mm")?.isPrunable == false, "added to the graph input x")
        // A head is 4 elements wide: --round-to 4 (or 2) is any whole number of heads,
        // --round-to 8 pairs of heads; plain channels round to the count itself.
        #expect(heads.channelWidth == 4)
        #expect(heads.channelMultiple(roundTo: 4) == 1 && heads.channelMultiple(roundTo: 2) == 1)
        #expect(heads.channelMultiple(roundTo: 8) == 2)
        #expect(deps.group(named: "o_mm")?.channelMultiple(roundTo: 8) == 8)
        let (_, rounded) = try Self.prune(model, PruningOptions(ratio: 0.25, roundTo: 4))
        #expect(rounded.outcomes.first { $0.group.name == "q_mm" }?.keptChannels.count == 3, "3 of 4 heads: 12 elements, a multiple of 4")

        let (original, pruned) = try Self.prune(model, PruningOptions(ratio: 0.5))
        try Self.expectValid(pruned, original: original)
        let kept = try #require(pruned.outcomes.first { $0.group.name == "q_mm" }).keptChannels
        #expect(kept.count == 2)
        #expect(!kept.contains(1), "head 1 has zero weights")
        let m = pruned.analyzed.model
        for p in ["q", "k", "v"] {
            #expect(Self.tensor("\(p).w", in: m)?.dims == [16, 8])
            #expect(Self.tensor("\(p).b", in: m)?.dims == [8])
            #expect(Self.tensor("\(p)_shape2", in: m)?.integerValues() == [2], "the head count in the split shape")
            #expect(Self.tensor("\(p)_shape3", in: m)?.integerValues() == [4], "the head size stays")
        }
        #expect(Self.tensor("merge_shape", in: m)?.integerValues() == [1, 4, 8])
        #expect(Self.tensor("o.w", in: m)?.dims == [8, 16])
        // Kept columns of Q are whole heads, in order.
        let before = Self.floats(Self.tensor("q.w", in: original.model))
        let after = Self.floats(Self.tensor("q.w", in: m))
        let columns = kept.flatMap { h in (0..<4).map { h * 4 + $0 } }
        for row in 0..<16 {
            #expect(Array(after[(row * 8)..<(row * 8 + 8)]) == columns.map { before[row * 16 + $0] })
        }
    }

    // MARK: ratio 0, shared tensors, blockers, rounding

    @Test(arguments: ["residual", "dense", "depthwise", "flatten", "attention"])
    func ratioZeroGivesBitIdenticalOutputs(name: String) throws {
        let model: Model
        switch name {
        case "residual": model = PruningTestModels.residual()
        case "dense": model = PruningTestModels.dense()
        case "depthwise": model = PruningTestModels.depthwise()
        case "attention": model = PruningTestModels.attention()
        default: model = PruningTestModels.flattenGemm(transB: true, reshape: true)
        }
        let (original, pruned) = try Self.prune(model, PruningOptions(ratio: 0))
        #expect(pruned.outcomes.allSatisfy { $0.kept == $0.group.channels })
        let a = try Self.run(original)
        let b = try Self.run(pruned.analyzed)
        for output in model.graph.outputs {
            let x = try #require(a[output.name]).scalars(as: Float.self)
            let y = try #require(b[output.name]).scalars(as: Float.self)
            #expect(x.map(\.bitPattern) == y.map(\.bitPattern))
        }
        #expect(try ModelWriter().serialize(pruned.analyzed.model) == (try ModelWriter().serialize(original.model)))
    }

    @Test func aTensorSharedThroughIdentityGetsAPrivateCopyPerUse() throws {
        // Two convs whose biases are one tensor forwarded by Identity (as torch exports
        // identical zero biases); only the first conv's group is pruned.
        var m = PruningTestModels.Builder()
        m.b.input("x", .float, [.value(1), .value(2), .value(4), .value(4)])
        m.b.initializers.append(TensorData(floats: [Float](repeating: 0, count: 4), name: "zeros", dims: [4]))
        m.op("Identity", ["zeros"], "zeros_a")
        m.op("Identity", ["zeros"], "zeros_b")
        m.random("c1.w", [4, 2, 1, 1])
        m.op("Conv", ["x", "c1.w", "zeros_a"], "h")
        m.random("c2.w", [4, 4, 1, 1])
        m.op("Conv", ["h", "c2.w", "zeros_b"], "y")
        let model = m.finish(output: "y", shape: [1, 4, 4, 4])
        let (original, pruned) = try Self.prune(model, PruningOptions(ratio: 0.5))
        try Self.expectValid(pruned, original: original)
        let graph = pruned.analyzed.model.graph
        #expect(Self.tensor("zeros", in: pruned.analyzed.model)?.dims == [4], "the second conv still reads all 4")
        let firstConv = try #require(graph.nodes.first { $0.outputs == ["h"] })
        let privateBias = try #require(Self.tensor(firstConv.inputs[2], in: pruned.analyzed.model))
        #expect(privateBias.name != "zeros")
        #expect(privateBias.dims == [2])
    }

    @Test func opsTheAnalysisDoesNotFollowBlockTheirGroupsWithTheNodesName() throws {
        var m = PruningTestModels.Builder()
        m.b.input("x", .float, [.value(1), .value(2), .value(4), .value(4)])
        m.conv("a", "x", "ha", inChannels: 2, outChannels: 4)
        m.b.ints("split_sizes", [2, 2])
        m.b.node("Split", ["ha", "split_sizes"], ["s0", "s1"], ["axis": .int(1)])
        m.b.nodes[m.b.nodes.count - 1].displayName = "channel_split"
        m.conv("b", "s0", "hb", inChannels: 2, outChannels: 4)
        m.op("LpNormalization", ["hb"], "y", ["axis": .int(1)])
        let deps = ChannelDependencyAnalysis.analyze(try Self.analyze(m.finish(output: "y", shape: [1, 4, 4, 4])))
        let a = try #require(deps.group(named: "a"))
        #expect(a.blockers.contains { $0.contains("'channel_split'") && $0.contains("splits the channel axis") })
        let b = try #require(deps.group(named: "b"))
        #expect(b.blockers.contains { $0.contains("'y' (LpNormalization) is not followed") })
    }

    @Test func perGroupRatiosOverrideTheDefaultAndUnknownNamesAreErrors() throws {
        let model = PruningTestModels.residual()
        let (_, pruned) = try Self.prune(model, PruningOptions(ratio: 0.5, groupRatios: ["conv1": 0]))
        #expect(pruned.outcomes.first { $0.group.name == "conv1" }?.kept == 6)
        #expect(pruned.outcomes.first { $0.group.name == "stem" }?.kept == 4)
        #expect(throws: PruningError.self) { try Self.prune(model, PruningOptions(ratio: 0.5, groupRatios: ["nope": 0.1])) }
        #expect(throws: PruningError.badRatio(group: nil, value: 1)) { try Self.prune(model, PruningOptions(ratio: 1)) }
        #expect(throws: PruningError.notPrunable(group: "head", reason: "'y' is a graph output, whose shape must not change")) {
            try Self.prune(model, PruningOptions(groupRatios: ["head": 0.5]))
        }
    }

    @Test func keepCountRoundsToMultiplesAndNeverBelowOne() {
        #expect(ChannelPruner.keepCount(channels: 64, ratio: 0.3, roundTo: 1) == 45)    // 44.8
        #expect(ChannelPruner.keepCount(channels: 64, ratio: 0.3, roundTo: 8) == 48)    // 5.6 eights -> 6
        #expect(ChannelPruner.keepCount(channels: 64, ratio: 0.99, roundTo: 8) == 8)    // at least one multiple
        #expect(ChannelPruner.keepCount(channels: 6, ratio: 0.9, roundTo: 8) == 6)      // fewer than 8: untouched
        #expect(ChannelPruner.keepCount(channels: 10, ratio: 0.99, roundTo: 1) == 1)
        #expect(ChannelPruner.keepCount(channels: 27, ratio: 0, roundTo: 8) == 27)      // ratio 0 never rounds down
    }

    @Test func l2ImportanceCanRankChannelsDifferentlyFromL1() {
        // Channel 0: many small weights (large L1, small L2); channel 1: one large weight.
        let t = TensorData(floats: [0.3, 0.3, 0.3, 0.3, 1.0, 0, 0, 0], name: "w", dims: [2, 4])
        let group = ChannelGroup(name: "g", channels: 2, producers: ["g"], nodes: ["g"],
                                 slices: [CoupledSlice(tensor: "w", node: 0, input: 1, axis: 0, scoresImportance: true)], blockers: [])
        var constants = StoredConstants(Graph())
        constants.tensors["w"] = t
        let l1 = ChannelImportance.scores(of: group, constants: constants, norm: .l1)
        let l2 = ChannelImportance.scores(of: group, constants: constants, norm: .l2)
        #expect(abs(l1[0] - 1.2) < 1e-6 && abs(l1[1] - 1.0) < 1e-6)
        #expect(abs(l2[0] - 0.6) < 1e-6 && abs(l2[1] - 1.0) < 1e-6)
    }

    // MARK: unstructured

    @Test func magnitudePruningZeroesTheSmallestWeightsAndKeepsTheDenseSize() throws {
        let model = PruningTestModels.residual()
        let (sparse, report) = try MagnitudePruning.sparsify(model, sparsity: 0.5)
        #expect(report.tensors.map(\.name).sorted() == ["conv1.w", "conv2.w", "head.w", "stem.w"])
        for t in report.tensors { #expect(t.zeros >= t.elements / 2, "\(t.name)") }
        #expect(report.weightBytes == model.graph.initializers.reduce(0) { $0 + $1.byteCount })
        // CSR spends 8 bytes per non-zero: at 50% it saves nothing (never counted worse than dense)...
        #expect(report.sparseWeightBytes == report.weightBytes)
        // ...at 80% it does.
        let (_, sparser) = try MagnitudePruning.sparsify(model, sparsity: 0.8)
        #expect(sparser.sparseWeightBytes < sparser.weightBytes)
        // The survivors are the largest: every kept |w| >= every zeroed one's original |w|.
        let before = Self.floats(Self.tensor("head.w", in: model))
        let after = Self.floats(Self.tensor("head.w", in: sparse))
        let keptMin = zip(before, after).filter { $0.1 != 0 }.map { abs($0.0) }.min() ?? 0
        let droppedMax = zip(before, after).filter { $0.1 == 0 }.map { abs($0.0) }.max() ?? 0
        #expect(keptMin >= droppedMax)
        #expect(try ModelAnalyzer().analyze(model: sparse).inferred.type(of: "y") == (try Self.analyze(model)).inferred.type(of: "y"))
    }
}

/// Bytes written to a temporary file, removed when the value is released.
final class TemporaryFile {
    let path: String

    init(bytes: [UInt8]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vernier-pruned-\(UUID().uuidString).onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
