import Foundation
import ONNXProto
import SwiftProtobuf
import Testing
import VernierGraph
@testable import VernierRuntime

/// The ONNX backend node tests whose ops all belong to the Elementwise family, run
/// through `ExecutionPlan` (until the shared NodeSuiteExecution runner lands).
struct ElementwiseNodeSuiteTests {
    static let nodeTests: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/Tests/Data/node"
    }()

    static func tensor(_ path: String) -> Tensor? {
        guard let data = FileManager.default.contents(atPath: path),
              let proto = try? Onnx_TensorProto(serializedBytes: data), proto.hasDataType,
              let tensorData = try? ModelLoader.tensorData(from: proto) else { return nil }
        return Tensor(tensorData)
    }

    /// Whether two tensors agree within rtol 1e-3, atol 1e-5 (NaN equals NaN).
    static func mismatch(_ got: Tensor, _ want: Tensor) -> String? {
        guard got.shape == want.shape else { return "shape \(got.shape), expected \(want.shape)" }
        // The suite stores bfloat16 as uint16 bit patterns.
        let sameType = got.elementType == want.elementType || (got.elementType == .bfloat16 && want.elementType == .uint16)
        guard sameType else { return "type \(got.elementType), expected \(want.elementType)" }
        if got.elementType == .bfloat16 {
            return got.scalars(as: UInt16.self) == want.scalars(as: UInt16.self) ? nil : "bfloat16 bits differ"
        }
        guard let x = got.doubles(), let y = want.doubles() else { return "values not comparable" }
        for (i, (p, q)) in zip(x, y).enumerated() {
            if p.isNaN && q.isNaN || p == q { continue }
            if abs(p - q) > 1e-5 + 1e-3 * abs(q) { return "element \(i): \(p), expected \(q)" }
        }
        return nil
    }

    @Test func elementwiseNodeCasesPass() throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: Self.nodeTests)) ?? []).filter { $0.hasPrefix("test_") }.sorted()
        try #require(!names.isEmpty, "node tests missing: run Scripts/fetch_node_tests.sh")
        let claimed = Set(ElementwiseKernels.all.keys)
        var passed: [String] = [], failed: [String] = [], skipped: [String] = []
        for name in names {
            let folder = Self.nodeTests + "/" + name
            guard let model = try? GraphValidator.validate(try ModelLoader().load(path: folder + "/model.onnx")) else { continue }
            let ops = Set(model.graph.nodes.map(\.opType))
            guard !ops.isEmpty, ops.isSubset(of: claimed) else { continue }
            let set = folder + "/test_data_set_0"
            var inputs: [String: Tensor] = [:]
            var readable = true
            for (i, input) in model.graph.runtimeInputs.enumerated() {
                guard var t = Self.tensor("\(set)/input_\(i).pb") else { readable = false; break }
                // The suite stores bfloat16 as uint16 bit patterns.
                if t.elementType == .uint16, case .tensor(let declared)? = input.type, declared.elementType == .bfloat16 {
                    t = Tensor(elementType: .bfloat16, shape: t.shape, buffer: t.buffer, byteOffset: t.byteOffset)
                }
                inputs[input.name] = t
            }
            guard readable else { skipped.append("\(name): inputs are not plain tensors"); continue }
            do {
                var options = ExecutionOptions()
                options.useArena = ProcessInfo.processInfo.environment["VERNIER_NO_ARENA"] == nil
                let plan = try ExecutionPlan.compile(model, options: options)
                let results = try plan.run(inputs)
                var problems: [String] = []
                for (i, output) in model.graph.outputs.enumerated() {
                    guard let want = Self.tensor("\(set)/output_\(i).pb") else { problems.append("\(output.name): unreadable"); continue }
                    guard let got = results[output.name] else { problems.append("\(output.name): missing"); continue }
                    if let m = Self.mismatch(got, want) { problems.append("\(output.name): \(m)") }
                }
                if problems.isEmpty { passed.append(name) } else { failed.append("\(name): \(problems.joined(separator: "; "))") }
            } catch {
                failed.append("\(name): \(error)")
            }
        }
        print("elementwise node cases: \(passed.count) passed, \(failed.count) failed, \(skipped.count) skipped")
        for f in failed { print("  FAIL \(f)") }
        for s in skipped { print("  SKIP \(s)") }
        #expect(passed.count > 100)
    }
}
