import Foundation
import ONNXProto
import Testing
import VernierGraph
@testable import VernierRuntime

/// The executor against ONNX's backend node tests (Scripts/fetch_node_tests.sh fetches
/// them from the onnx 1.16.0 wheel): every case whose ops all have kernels runs on the
/// test's inputs and must reproduce its outputs within the suite's tolerances.
struct NodeSuiteExecutionTests {
    /// Cases of claimed ops that are skipped on purpose, with the reason.
    static let knownSkips: [String: String] = {
        var skips: [String: String] = [
            "test_scan_sum": "Scan opset 8 (batch axis, sequence_lens); opset 9+ Scan runs",
            "test_training_dropout": "Dropout in training mode (random mask; inference only)",
            "test_training_dropout_default": "Dropout in training mode (random mask; inference only)",
            "test_training_dropout_default_mask": "Dropout in training mode (random mask; inference only)",
            "test_training_dropout_mask": "Dropout in training mode (random mask; inference only)",
        ]
        for name in ["test_dequantizelinear_e4m3fn", "test_dequantizelinear_e4m3fn_float16", "test_dequantizelinear_e4m3fn_zero_point",
                     "test_dequantizelinear_e5m2", "test_quantizelinear_e4m3fn", "test_quantizelinear_e5m2"] {
            skips[name] = "float8 element types are not supported"
        }
        for name in ["test_qlinearmatmul_2D_int8_float16", "test_qlinearmatmul_2D_int8_float32",
                     "test_qlinearmatmul_3D_int8_float16", "test_qlinearmatmul_3D_int8_float32"] {
            skips[name] = "expected output wraps out-of-range int8 values (NumPy astype) where the spec and ONNX Runtime "
                + "saturate; onnx/onnx#7835, fixed in onnx#7868 after the 1.16 test data"
        }
        return skips
    }()

    /// Element types no kernel supports: cases that cast to or from them are skipped.
    static let unsupportedTypeMarkers = ["FLOAT8", "INT4", "UINT4", "STRING"]

    /// The reason to skip `name`, if it is a known skip.
    static func skipReason(_ name: String) -> String? {
        if let reason = knownSkips[name] { return reason }
        if name.hasPrefix("test_cast"), let marker = unsupportedTypeMarkers.first(where: { name.uppercased().contains($0) }) {
            return "\(marker.lowercased()) element type (float8, int4 and string tensors are not supported)"
        }
        return nil
    }

    /// The ONNX backend runner's default tolerances.
    static let relativeTolerance = 1e-3
    static let absoluteTolerance = 1e-7

    struct Outcome {
        var passed: [String] = []
        var failures: [String] = []
        var skipped: [String: String] = [:]
    }

    static var nodeTests: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/Tests/Data/node"
    }

    /// Nodes of a graph and of its subgraphs, recursively.
    static func allNodes(_ graph: Graph) -> [Node] {
        graph.nodes.flatMap { node in [node] + node.subgraphs.flatMap { allNodes($0.graph) } }
    }

    /// The tensors stored in `folder`'s `<prefix>_N.pb` files, in N order; nil when one of
    /// them is not a plain tensor (sequences, optionals) or has no fixed-size type.
    static func tensors(_ folder: String, prefix: String) -> [Tensor]? {
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
        let numbered = files.compactMap { file -> (Int, String)? in
            guard file.hasPrefix(prefix + "_"), file.hasSuffix(".pb"),
                  let n = Int(file.dropFirst(prefix.count + 1).dropLast(3)) else { return nil }
            return (n, file)
        }.sorted { $0.0 < $1.0 }
        var result: [Tensor] = []
        for (_, file) in numbered {
            guard let bytes = FileManager.default.contents(atPath: folder + "/" + file),
                  let proto = try? Onnx_TensorProto(serializedBytes: bytes), proto.hasDataType,
                  let data = try? ModelLoader.tensorData(from: proto), let tensor = Tensor(data) else { return nil }
            result.append(tensor)
        }
        return result
    }

    /// Why `actual` differs from `expected`, or nil when they agree.
    static func mismatch(_ actual: Tensor, _ expected: Tensor) -> String? {
        guard actual.elementType == expected.elementType else {
            return "element type \(actual.elementType), expected \(expected.elementType)"
        }
        guard actual.shape == expected.shape else { return "shape \(actual.shape), expected \(expected.shape)" }
        if expected.elementType.isFloatingPoint {
            guard let a = actual.doubles(), let e = expected.doubles() else { return "cannot compare \(expected.elementType)" }
            for i in e.indices {
                let (x, y) = (a[i], e[i])
                if x.isNaN && y.isNaN { continue }
                if x == y { continue }
                if abs(x - y) > absoluteTolerance + relativeTolerance * abs(y) {
                    return "element \(i): \(x), expected \(y)"
                }
            }
            return nil
        }
        let bytes = expected.byteCount
        if bytes > 0 && memcmp(actual.rawPointer, expected.rawPointer, bytes) != 0 {
            let shown = (actual.integers() ?? []).prefix(8), want = (expected.integers() ?? []).prefix(8)
            return "values \(Array(shown)), expected \(Array(want))"
        }
        return nil
    }

    static func run(only: Set<String>? = nil) -> Outcome {
        var outcome = Outcome()
        let cases = ((try? FileManager.default.contentsOfDirectory(atPath: nodeTests)) ?? [])
            .filter { $0.hasPrefix("test_") }.sorted()
        for name in cases {
            let folder = nodeTests + "/" + name
            guard let model = try? GraphValidator.validate(try ModelLoader().load(path: folder + "/model.onnx")) else {
                outcome.skipped[name] = "does not load"
                continue
            }
            let unclaimed = Set(allNodes(model.graph).filter { KernelRegistry.factory(for: $0) == nil }.map(\.qualifiedOpType))
            if !unclaimed.isEmpty {
                outcome.skipped[name] = "no kernel for \(unclaimed.sorted().joined(separator: ", "))"
                continue
            }
            if let only, !model.graph.nodes.contains(where: { only.contains($0.opType) }) { continue }
            if let reason = skipReason(name) {
                outcome.skipped[name] = "known: " + reason
                continue
            }
            let set = folder + "/test_data_set_0"
            guard let inputs = tensors(set, prefix: "input"), let expected = tensors(set, prefix: "output") else {
                outcome.skipped[name] = "inputs or outputs are not plain tensors"
                continue
            }
            // Shapes bound from the test data, as a user would with --input.
            var options = InferenceOptions()
            var feeds: [String: Tensor] = [:]
            for (input, stored) in zip(model.graph.runtimeInputs, inputs) {
                var tensor = stored
                // The suite stores bfloat16 data as uint16 bit patterns.
                if input.type?.tensorType?.elementType == .bfloat16, tensor.elementType == .uint16 {
                    tensor = Tensor(elementType: .bfloat16, shape: tensor.shape, buffer: tensor.buffer, byteOffset: tensor.byteOffset)
                }
                options.inputShapes[input.name] = tensor.shape
                feeds[input.name] = tensor
            }
            do {
                let plan = try ExecutionPlan.compile(model, inference: options)
                let results = try plan.run(feeds)
                var problems: [String] = []
                for (output, stored) in zip(model.graph.outputs, expected) {
                    guard let got = results[output.name] else { problems.append("\(output.name) missing"); continue }
                    var want = stored
                    if got.elementType == .bfloat16, want.elementType == .uint16 {
                        want = Tensor(elementType: .bfloat16, shape: want.shape, buffer: want.buffer, byteOffset: want.byteOffset)
                    }
                    if let why = mismatch(got, want) { problems.append("\(output.name): \(why)") }
                }
                if problems.isEmpty { outcome.passed.append(name) } else {
                    outcome.failures.append("\(name): " + problems.joined(separator: "; "))
                }
            } catch {
                outcome.failures.append("\(name): \(error)")
            }
        }
        return outcome
    }

    @Test func everyCaseOfEveryOpWithAKernelReproducesTheExpectedOutputs() throws {
        try #require(FileManager.default.fileExists(atPath: Self.nodeTests),
                     "node tests missing: run Scripts/fetch_node_tests.sh (Scripts/test does)")
        let outcome = Self.run()
        print("node suite (execution): \(outcome.passed.count) cases passed, \(outcome.failures.count) failed, "
              + "\(outcome.skipped.count) skipped")
        print("ops with kernels (\(KernelRegistry.supportedOps.count)): \(KernelRegistry.supportedOps.joined(separator: " "))")
        for f in outcome.failures { print("  FAIL \(f)") }
        for (name, reason) in outcome.skipped.sorted(by: { $0.key < $1.key }) where reason.hasPrefix("known: ") {
            print("  skipped \(name): \(reason.dropFirst(7))")
        }
        var reasons: [String: Int] = [:]
        for (_, reason) in outcome.skipped where !reason.hasPrefix("known: ") { reasons[reason, default: 0] += 1 }
        for (reason, count) in reasons.sorted(by: { $0.value > $1.value }).prefix(15) { print("  skipped \(count): \(reason)") }
        #expect(outcome.failures.isEmpty)
    }
}
