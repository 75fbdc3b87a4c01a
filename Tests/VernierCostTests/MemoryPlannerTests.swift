import Foundation
import Testing
import VernierTestSupport
import VernierGraph
@testable import VernierCost

struct MemoryPlannerTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var models: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Models")) ?? []
        return names.filter { $0.hasSuffix(".onnx") }.sorted()
    }

    /// Checks a plan by brute force: no two buffers that are live at the same step
    /// overlap in the arena, the arena holds the largest live set, and each value's
    /// buffer is live over the value's whole lifetime.
    func verify(_ plan: MemoryPlan, _ inferred: InferredGraph) {
        for (i, a) in plan.buffers.enumerated() {
            #expect(a.offset >= 0 && a.offset + a.size <= plan.arenaBytes)
            for b in plan.buffers[(i + 1)...] {
                let timeOverlap = a.firstStep <= b.lastStep && b.firstStep <= a.lastStep
                let spaceOverlap = a.offset < b.offset + b.size && b.offset < a.offset + a.size
                #expect(!(timeOverlap && spaceOverlap), "buffers \(a.values) and \(b.values) overlap")
            }
        }
        let steps = inferred.graph.nodes.count
        var live = [Int](repeating: 0, count: steps)
        for b in plan.buffers { for s in b.firstStep...min(b.lastStep, steps - 1) { live[s] += b.size } }
        #expect(plan.arenaBytes >= (live.max() ?? 0))
        #expect(plan.liveBytes == live)
        // Lifetimes: a value is defined at its producer's step and read until its last consumer.
        for (step, node) in inferred.graph.nodes.enumerated() {
            for input in node.inputs {
                guard let b = plan.bufferOf[input] else { continue }
                #expect(plan.buffers[b].lastStep >= step, "\(input) freed before node \(node.displayName) reads it")
                // No other value in the same buffer was written between the definition and this read
                // unless it is an alias or in-place result of this very value.
            }
        }
    }

    @Test(arguments: models)
    func plansAreValidOnEveryModel(name: String) throws {
        var options = InferenceOptions()
        if name == "bert_mini.onnx" { options.dimBindings = ["batch": 2, "seq": 16] }
        let analyzed = try ModelAnalyzer(inferenceOptions: options).analyze(path: Self.root + "/Models/" + name)
        let plan = try MemoryPlanner.plan(analyzed.inferred)
        verify(plan, analyzed.inferred)
        #expect(plan.arenaBytes <= plan.naiveBytes)
    }

    @Test func aChainOfElementwiseOpsRunsInPlace() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1000)])
        b.node("Relu", ["x"], ["a"])
        b.node("Sigmoid", ["a"], ["b"])
        b.node("Neg", ["b"], ["c"])
        b.output("c")
        let inferred = try ShapeInference().infer(try GraphValidator.validate(b.model))
        let plan = try MemoryPlanner.plan(inferred)
        // x, a, b, c share one 4000-byte buffer (4000 is a multiple of 64 rounded up to 4032).
        #expect(Set(["x", "a", "b", "c"].compactMap { plan.bufferOf[$0] }).count == 1)
        #expect(plan.arenaBytes == 4032)
        #expect(plan.naiveBytes == 4 * 4032)
    }

    /// A conv with a fused residual sum writes into its addend's buffer when nothing
    /// reads the addend afterwards, and not when the conv's own input is the addend.
    @Test func aFusedResidualSumAccumulatesInPlace() throws {
        for sameInput in [false, true] {
            var b = GraphBuilder()
            b.input("x", .float, [1, 4, 6, 6].map(Dim.value))
            b.initializers.append(TensorData(floats: (0..<16).map { Float($0) * 0.1 }, name: "w", dims: [4, 4, 1, 1]))
            b.node("Relu", ["x"], ["r"])
            if !sameInput { b.node("Sigmoid", ["r"], ["s"]) }
            b.node("Conv", [sameInput ? "r" : "s", "w"], ["c"])
            b.node("Add", ["c", "r"], ["y"])
            b.node("Softmax", ["y"], ["z"])
            b.output("z")
            let optimized = GraphPasses.optimize(try ShapeInference().infer(try GraphValidator.validate(b.model)))
            #expect(optimized.graph.nodes.map(\.opType) == (sameInput ? ["Relu", "Conv", "Softmax"] : ["Relu", "Sigmoid", "Conv", "Softmax"]))
            let plan = try MemoryPlanner.plan(optimized)
            verify(plan, optimized)
            #expect((plan.bufferOf["y"] == plan.bufferOf["r"]) == !sameInput, "conv input is the addend: \(sameInput)")
        }
    }

    @Test func aResidualInputStaysAliveAcrossTheBranch() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(256)])
        b.node("Relu", ["x"], ["a"])
        b.node("Sigmoid", ["a"], ["s"])
        b.ints("shape", [16, 16])
        b.node("Reshape", ["s", "shape"], ["r"])
        b.ints("flat", [256])
        b.node("Reshape", ["r", "flat"], ["f"])
        b.node("Add", ["f", "a"], ["y"])
        b.output("y")
        let inferred = try ShapeInference().infer(try GraphValidator.validate(b.model))
        let plan = try MemoryPlanner.plan(inferred)
        verify(plan, inferred)
        // `a` is read by the Add at the end, so Sigmoid cannot overwrite it.
        #expect(plan.bufferOf["a"] != plan.bufferOf["s"])
        // The reshapes alias `s`.
        #expect(plan.bufferOf["r"] == plan.bufferOf["s"])
        #expect(plan.bufferOf["f"] == plan.bufferOf["s"])
        // Two 1 KiB buffers live at once at most.
        #expect(plan.arenaBytes == 2 * 1024)
    }

    /// With `contiguousConcat`, a Concat's inputs that only it reads are planned inside
    /// its output at their offsets, through a Concat nested in another; an input read
    /// elsewhere too, or one that would start off a 64-byte boundary, keeps a buffer of
    /// its own; a Reshape's source only the Reshape reads is planned there with it.
    /// Without it (static analysis) nothing moves.
    @Test func concatInputsArePlannedInsideTheOutput() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 16, 4, 4].map(Dim.value))     // 1024 bytes per 16 channels
        b.input("v", .float, [1, 3].map(Dim.value))
        b.nestedConcats(of: "x")
        b.node("Relu", ["v"], ["v1"])
        b.node("Neg", ["v"], ["v2"])
        b.node("Concat", ["v1", "v2"], ["w"], ["axis": .int(1)])  // v2 would start at byte 12
        // Reshapes of values only they read: the values are written in place.
        b.node("Exp", ["x"], ["q"])
        b.node("Cos", ["x"], ["o"])
        b.ints("flat", [1, 256])
        b.node("Reshape", ["q", "flat"], ["qr"])
        b.node("Reshape", ["o", "flat"], ["or"])
        b.node("Concat", ["qr", "or"], ["p"], ["axis": .int(1)])
        b.output("e"); b.output("f"); b.output("w"); b.output("p")
        let inferred = try ShapeInference().infer(try GraphValidator.validate(b.model))
        let plan = try MemoryPlanner.plan(inferred, contiguousConcat: { _ in true })
        verify(plan, inferred)
        let e = try #require(plan.span(of: "e"))
        #expect(e.size == 4096)
        for (name, offset) in [("a", 0), ("s", 1024), ("d", 0), ("t", 3072)] {
            let span = try #require(plan.span(of: name))
            #expect(span.offset == e.offset + offset, "\(name)")
            #expect(plan.bufferOf[name] == plan.bufferOf["e"], "\(name)")
        }
        #expect(plan.span(of: "d")?.size == 3072)
        #expect(plan.bufferOf["n"] != plan.bufferOf["e"])
        #expect(plan.span(of: "v1")?.offset == plan.span(of: "w")?.offset)
        #expect(plan.bufferOf["v2"] != plan.bufferOf["w"])
        let p = try #require(plan.span(of: "p"))
        for (name, offset) in [("q", 0), ("qr", 0), ("o", 1024), ("or", 1024)] {
            #expect(plan.span(of: name)?.offset == p.offset + offset, "\(name)")
        }
        // The output's buffer is live from its first input's production.
        #expect(plan.buffers[try #require(plan.bufferOf["e"])].firstStep == 0)

        let separate = try MemoryPlanner.plan(inferred)
        #expect(separate.innerSpans.isEmpty)
        #expect(Set(["a", "s", "d", "t", "e", "q", "o", "p"].compactMap { separate.bufferOf[$0] }).count == 8)
    }
}
