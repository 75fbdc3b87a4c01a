import Foundation
import ONNXProto
import Testing
@testable import VernierGraph

/// Our shape rules against the expected outputs of ONNX's backend node tests
/// (fetched by Scripts/fetch_node_tests.sh from the onnx 1.16.0 wheel).
struct NodeSuiteShapeTests {
    struct Outcome {
        var checked = 0
        var failures: [String] = []
        var skipped: [String: String] = [:]
    }

    /// Output tensors' dims of test_data_set_0.
    static func expectedOutputs(_ folder: String) -> [(name: String, dims: [Int], elementType: Int)]? {
        let set = folder + "/test_data_set_0"
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: set) else { return nil }
        let outputs = files.filter { $0.hasPrefix("output_") && $0.hasSuffix(".pb") }
            .sorted { Int($0.dropFirst(7).dropLast(3)) ?? 0 < Int($1.dropFirst(7).dropLast(3)) ?? 0 }
        var result: [(String, [Int], Int)] = []
        for f in outputs {
            guard let data = FileManager.default.contents(atPath: set + "/" + f) else { return nil }
            // Sequence/optional outputs are other message types; tensors only here.
            guard let t = try? Onnx_TensorProto(serializedBytes: data), t.hasDataType else { return nil }
            result.append((t.name, t.dims.map { Int($0) }, Int(t.dataType)))
        }
        return result
    }

    /// Symbols that stand for sizes known only at run time (NonZero's count, the boxes
    /// NonMaxSuppression keeps, a Loop's trip count): such a dim matches any size, the
    /// rank and every other dim must still agree.
    static let dataDependentPrefixes = ["nonzero(", "selected(", "compress(", "trips("]

    static func matches(_ got: [Dim]?, _ want: [Dim]) -> Bool {
        guard let got, got.count == want.count else { return false }
        return zip(got, want).allSatisfy { g, w in
            g == w || (!g.isConstant && dataDependentPrefixes.contains { g.description.hasPrefix($0) })
        }
    }

    static func run() -> Outcome {
        var outcome = Outcome()
        let cases = ((try? FileManager.default.contentsOfDirectory(atPath: TestPaths.nodeTests)) ?? []).filter { $0.hasPrefix("test_") }.sorted()
        for name in cases {
            let folder = TestPaths.nodeTests + "/" + name
            let analyzer = ModelAnalyzer(useLibONNXFallback: false)
            guard let model = try? GraphValidator.validate(try ModelLoader().load(path: folder + "/model.onnx")) else {
                outcome.skipped[name] = "does not load"
                continue
            }
            let ops = Set(model.graph.nodes.map(\.qualifiedOpType))
            let unclaimed = ops.filter { ShapeRules.rule(for: $0) == nil }
            if !unclaimed.isEmpty {
                outcome.skipped[name] = "no rule for \(unclaimed.sorted().joined(separator: ", "))"
                continue
            }
            guard let expected = expectedOutputs(folder) else {
                outcome.skipped[name] = "outputs are not plain tensors"
                continue
            }
            // Bind the inputs to the test data's shapes, as a user would with --input.
            var options = InferenceOptions()
            let set = folder + "/test_data_set_0"
            for (i, input) in model.graph.runtimeInputs.enumerated() {
                guard case .tensor? = input.type else { continue }
                if let data = FileManager.default.contents(atPath: "\(set)/input_\(i).pb"),
                   let t = try? Onnx_TensorProto(serializedBytes: data), t.hasDataType {
                    options.inputShapes[input.name] = t.dims.map { Int($0) }
                    // Small integer inputs (axes, shapes, K) are given by value too, as
                    // the test data fixes them.
                    if t.dims.reduce(1, *) <= 64, let data = try? ModelLoader.tensorData(from: t) {
                        if data.elementType.isInteger || data.elementType == .bool {
                            options.inputValues[input.name] = data.integerValues().map { .ints($0.map(Dim.value)) }
                        } else if data.elementType.isFloatingPoint {
                            options.inputValues[input.name] = data.doubleValues().map(ConstantValue.floats)
                        }
                    }
                }
            }
            var a = analyzer
            a.inferenceOptions = options
            do {
                let inferred = try ShapeInference(options: options).infer(model)
                outcome.checked += 1
                for (index, output) in model.graph.outputs.enumerated() where index < expected.count {
                    guard case .tensor? = output.type else { continue }
                    let want = expected[index].dims.map(Dim.value)
                    let got = inferred.type(of: output.name)
                    if !Self.matches(got?.shape, want) {
                        // The first issue is the root cause; later ones follow from it.
                        let why = inferred.issues.first.map(\.description) ?? ""
                        outcome.failures.append("\(name): output \(output.name) expected \(want.shapeDescription), got \(got.map(\.description) ?? "unknown") \(why)")
                    } else if let g = got, g.elementType.rawValue != expected[index].elementType,
                              !(g.elementType == .bfloat16 && expected[index].elementType == ElementType.uint16.rawValue) {
                        // (The suite stores bfloat16 outputs as uint16 bit patterns.)
                        outcome.failures.append("\(name): output \(output.name) expected element type \(expected[index].elementType), got \(g.elementType)")
                    }
                }
            } catch {
                outcome.failures.append("\(name): \(error)")
            }
        }
        return outcome
    }

    @Test func everyCaseOfEveryClaimedOpInfersTheExpectedShapes() throws {
        try #require(FileManager.default.fileExists(atPath: TestPaths.nodeTests),
                     "node tests missing: run Scripts/fetch_node_tests.sh (Scripts/test does)")
        let outcome = Self.run()
        print("node suite: \(outcome.checked) cases checked, \(outcome.failures.count) failed, \(outcome.skipped.count) skipped")
        for f in outcome.failures { print("  FAIL \(f)") }
        var reasons: [String: Int] = [:]
        for reason in outcome.skipped.values { reasons[reason, default: 0] += 1 }
        for (reason, count) in reasons.sorted(by: { $0.value > $1.value }) { print("  skipped \(count): \(reason)") }
        #expect(outcome.checked > 500)
        #expect(outcome.failures.isEmpty)
    }
}
