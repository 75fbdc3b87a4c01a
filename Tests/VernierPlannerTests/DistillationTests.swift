import Foundation
import Testing
import VernierGraph
import VernierRuntime
import VernierTestSupport
@testable import VernierPlanner

/// Students built from the teacher's structure: which residual blocks and transformer
/// layers the depth factor removes, that the student keeps the teacher's output shapes
/// and runs, and that its weights are the teacher's. Serialized (one oneDNN stream).
@Suite(.serialized) struct DistillationTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func analyze(_ model: Model) throws -> AnalyzedModel { try ModelAnalyzer().analyze(model: model) }

    /// stem conv (8) -> relu; optionally a downsampling block (stride 2, 1x1 projection
    /// shortcut, 12 channels); then `blocks` identity blocks: conv -> relu -> conv, added
    /// back, relu. Output: a 1x1 head conv.
    /// `sharedNorm`: a LayerNormalization after each Add instead of the ReLU, its scale and
    /// bias read through Identity nodes of one shared tensor (as exporters write them).
    static func residualStage(blocks: Int, downsample: Bool, sharedNorm: Bool = false) -> Model {
        var m = PruningTestModels.Builder()
        m.b.input("x", .float, [.value(1), .value(3), .value(8), .value(8)])
        if sharedNorm {
            m.b.floats("ones", [Float](repeating: 1, count: downsample ? 4 : 8))
            m.b.floats("zeros", [Float](repeating: 0, count: downsample ? 4 : 8))
        }
        m.conv("stem", "x", "s", inChannels: 3, outChannels: 8)
        m.op("Relu", ["s"], "a0")
        var x = "a0", channels = 8
        if downsample {
            m.conv("down.conv1", x, "d1", inChannels: 8, outChannels: 12)
            m.b.nodes[m.b.nodes.count - 1].attributes.append(Attribute(name: "strides", value: .ints([2, 2])))
            m.op("Relu", ["d1"], "d1r")
            m.conv("down.conv2", "d1r", "d2", inChannels: 12, outChannels: 12)
            m.conv("down.proj", x, "dp", inChannels: 8, outChannels: 12, kernel: 1)
            m.b.nodes[m.b.nodes.count - 1].attributes.append(Attribute(name: "strides", value: .ints([2, 2])))
            m.op("Add", ["d2", "dp"], "down.add")
            m.op("Relu", ["down.add"], "down.out")
            x = "down.out"
            channels = 12
        }
        for k in 0..<blocks {
            m.conv("block\(k).conv1", x, "b\(k)c1", inChannels: channels, outChannels: channels)
            m.op("Relu", ["b\(k)c1"], "b\(k)r1")
            m.conv("block\(k).conv2", "b\(k)r1", "b\(k)c2", inChannels: channels, outChannels: channels)
            m.op("Add", ["b\(k)c2", x], "block\(k).add")
            if sharedNorm {
                m.op("Identity", ["ones"], "b\(k)scale")
                m.op("Identity", ["zeros"], "b\(k)bias")
                m.op("LayerNormalization", ["block\(k).add", "b\(k)scale", "b\(k)bias"], "b\(k)out", ["axis": .int(-1)])
            } else {
                m.op("Relu", ["block\(k).add"], "b\(k)out")
            }
            x = "b\(k)out"
        }
        m.conv("head", x, "y", inChannels: channels, outChannels: 4, kernel: 1)
        let side = downsample ? 4 : 8
        return m.finish(output: "y", shape: [1, 4, side, side])
    }

    static func runShapes(_ analyzed: AnalyzedModel) throws -> [String: [Int]] {
        let plan = try ExecutionPlan.compile(analyzed.inferred, opsets: analyzed.model.opsets)
        return try plan.run(try ModelInputs.random(for: analyzed.inferred, seed: 2)).mapValues(\.shape)
    }

    static func removedAdds(_ student: StudentModel) -> [String] {
        student.stages.flatMap { $0.droppedUnits.flatMap { $0.blocks.map(\.addNode) } }
    }

    @Test func keptUnitsRoundToNearestAndKeepOnePerStage() {
        func stage(_ n: Int, transition: Bool) -> BlockStage {
            let block = ResidualBlock(entry: "", exit: "", addNode: "", nodes: [], signature: "")
            return BlockStage(units: Array(repeating: DepthUnit(blocks: [block]), count: n), opensWithTransition: transition)
        }
        #expect(StudentBuilder.keptUnits(of: stage(4, transition: false), depth: 0.75) == 3)
        #expect(StudentBuilder.keptUnits(of: stage(3, transition: false), depth: 0.5) == 2)    // 1.5 rounds up
        #expect(StudentBuilder.keptUnits(of: stage(3, transition: false), depth: 0.1) == 1)    // never empty
        #expect(StudentBuilder.keptUnits(of: stage(1, transition: true), depth: 0.5) == 0)     // the downsampling block stays
        #expect(StudentBuilder.keptUnits(of: stage(3, transition: true), depth: 0.5) == 1)     // 2 of 4, one is the opener
        #expect(StudentBuilder.keptUnits(of: stage(2, transition: false), depth: 1) == 2)
    }

    @Test func depthRemovesTheLaterIdentityBlocksOfAStage() throws {
        let teacher = try Self.analyze(Self.residualStage(blocks: 3, downsample: false))
        let stages = RepeatedBlocks.stages(in: teacher)
        #expect(stages.count == 1)
        #expect(stages.first?.units.map(\.name) == ["block0.add", "block1.add", "block2.add"])
        #expect(stages.first?.opensWithTransition == false)
        let block = try #require(stages.first?.units.last?.blocks.first)
        // conv1, relu, conv2, add and the relu after it.
        #expect(block.nodes.count == 5 && block.entry == "b1out" && block.exit == "b2out")

        let half = try StudentBuilder.build(teacher, options: StudentOptions(depth: 0.5))
        #expect(Self.removedAdds(half) == ["block2.add"])
        let third = try StudentBuilder.build(teacher, options: StudentOptions(depth: 0.34))
        #expect(Self.removedAdds(third) == ["block1.add", "block2.add"])
        let names = Set(third.analyzed.model.graph.nodes.map(\.displayName))
        #expect(names.contains("block0.conv1") && !names.contains("block1.conv1") && !names.contains("block2.conv2"))
        #expect(!third.analyzed.model.graph.initializers.contains { $0.name.hasPrefix("block1.") || $0.name.hasPrefix("block2.") })
        // The head now reads block 0's output.
        #expect(third.analyzed.model.graph.nodes.first { $0.displayName == "head" }?.inputs.first == "b0out")
        #expect(try Self.runShapes(third.analyzed) == Self.runShapes(teacher))
    }

    @Test func normsWhoseWeightsComeThroughIdentityStillEndTheirBlock() throws {
        let teacher = try Self.analyze(Self.residualStage(blocks: 3, downsample: false, sharedNorm: true))
        let stages = RepeatedBlocks.stages(in: teacher)
        #expect(stages.map { $0.units.map(\.name) } == [["block0.add", "block1.add", "block2.add"]])
        let student = try StudentBuilder.build(teacher, options: StudentOptions(depth: 0.34))
        #expect(Self.removedAdds(student) == ["block1.add", "block2.add"])
        // The removed norms' Identity nodes went with them.
        #expect(student.analyzed.model.graph.nodes.filter { $0.opType == "Identity" }.count == 2)
        #expect(try Self.runShapes(student.analyzed) == Self.runShapes(teacher))
    }

    @Test func aDownsamplingBlockOpensTheStageAndStays() throws {
        let teacher = try Self.analyze(Self.residualStage(blocks: 2, downsample: true))
        let stages = RepeatedBlocks.stages(in: teacher)
        // The projection-shortcut Add is no block of its own (its output changes shape).
        #expect(stages.map { $0.units.map(\.name) } == [["block0.add", "block1.add"]])
        #expect(stages.first?.opensWithTransition == true)
        let student = try StudentBuilder.build(teacher, options: StudentOptions(depth: 0.5))
        #expect(Self.removedAdds(student) == ["block1.add"])   // round(0.5 * 3) = 2: the opener and block 0
        #expect(student.analyzed.model.graph.nodes.contains { $0.displayName == "down.proj" })
        #expect(try Self.runShapes(student.analyzed) == Self.runShapes(teacher))
    }

    @Test func transformerLayersAreRemovedWhole() throws {
        var options = InferenceOptions()
        options.dimBindings = ["batch": 1, "seq": 16]
        let analyzer = ModelAnalyzer(inferenceOptions: options)
        let teacher = try analyzer.analyze(path: Self.root + "/Models/bert_mini.onnx")
        let stages = RepeatedBlocks.stages(in: teacher)
        #expect(stages.count == 1)
        // Attention and MLP blocks alternate: each layer is one unit of two blocks.
        #expect(stages.first?.units.map { $0.blocks.count } == [2, 2])
        let student = try StudentBuilder.build(teacher, options: StudentOptions(depth: 0.5), analyzer: analyzer)
        #expect(Self.removedAdds(student) == ["encoder.layer.1.attention.output.residual", "encoder.layer.1.output.residual"])
        let names = student.analyzed.model.graph.nodes.map(\.displayName)
        #expect(!names.contains { $0.hasPrefix("encoder.layer.1.") })
        #expect(names.filter { $0.hasPrefix("encoder.layer.0.") }.count == teacher.model.graph.nodes.filter { $0.displayName.hasPrefix("encoder.layer.0.") }.count)
        #expect(try Self.runShapes(student.analyzed) == Self.runShapes(teacher))
    }

    @Test func widthKeepsTheTeachersLargestChannels() throws {
        let teacher = try Self.analyze(Self.residualStage(blocks: 2, downsample: false))
        let student = try StudentBuilder.build(teacher, options: StudentOptions(width: 0.5))
        #expect(Self.removedAdds(student).isEmpty)
        let conv1 = try #require(student.analyzed.model.graph.initializers.first { $0.name == "block0.conv1.w" })
        #expect(conv1.dims[0] == 4)   // 8 output channels, half kept
        // Each kept output channel is a slice of a teacher channel.
        let teacherWeights = try #require(teacher.model.graph.initializers.first { $0.name == "block0.conv1.w" }?.doubleValues())
        let studentWeights = try #require(conv1.doubleValues())
        // Output channels: block 0's inner group; input channels: the stem's group, which the
        // residual Adds join with every block's second conv.
        let outputs = try #require(student.groups.first { $0.group.producers == ["block0.conv1"] }).keptChannels
        let inputs = try #require(student.groups.first { $0.group.producers.contains("stem") }).keptChannels
        #expect(outputs.count == 4 && inputs.count == 4)
        for (k, c) in outputs.enumerated() {
            for (j, i) in inputs.enumerated() {
                for r in 0..<9 {
                    #expect(studentWeights[(k * 4 + j) * 9 + r] == teacherWeights[(c * 8 + i) * 9 + r], "w[\(k), \(j)] = teacher w[\(c), \(i)]")
                }
            }
        }
        #expect(try Self.runShapes(student.analyzed) == Self.runShapes(teacher))
    }
}
