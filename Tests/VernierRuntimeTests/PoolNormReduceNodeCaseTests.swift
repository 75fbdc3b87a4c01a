import Foundation
import ONNXProto
import Testing
@testable import VernierGraph
@testable import VernierRuntime

/// The ONNX backend node tests of the Pool, Normalization and Reduce ops, run through
/// `ExecutionPlan` (rtol 1e-3, atol 1e-5), until the shared node-suite runner covers them.
/// A case runs when every op of its model has a kernel; the others are listed as skipped.
struct PoolNormReduceNodeCaseTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Data/node").path

    static let ops: Set<String> = Set(PoolKernels.all.keys).union(NormalizationKernels.all.keys).union(ReduceKernels.all.keys)

    static func tensor(_ path: String) -> Tensor? {
        guard let data = FileManager.default.contents(atPath: path),
              let proto = try? Onnx_TensorProto(serializedBytes: data), proto.hasDataType,
              let tensorData = try? ModelLoader.tensorData(from: proto) else { return nil }
        return Tensor(tensorData)
    }

    /// nil when the case passes, else why not.
    static func run(_ name: String) throws -> String? {
        let dir = folder + "/" + name
        let model = try GraphValidator.validate(try ModelLoader().load(path: dir + "/model.onnx"))
        var options = InferenceOptions()
        var feeds: [String: Tensor] = [:]
        for (i, input) in model.graph.runtimeInputs.enumerated() {
            guard let t = tensor("\(dir)/test_data_set_0/input_\(i).pb") else { return "input \(i) unreadable" }
            options.inputShapes[input.name] = t.shape
            if t.elementCount <= 64, let ints = t.integers() { options.inputValues[input.name] = .ints(ints.map(Dim.value)) }
            feeds[input.name] = t
        }
        let plan = try ExecutionPlan.compile(try ShapeInference(options: options).infer(model), opsets: model.opsets)
        let results = try plan.run(feeds)
        for (i, output) in model.graph.outputs.enumerated() {
            guard let want = tensor("\(dir)/test_data_set_0/output_\(i).pb") else { return "output \(i) unreadable" }
            guard let got = results[output.name] else { return "output \(output.name) missing" }
            guard got.shape == want.shape, got.elementType == want.elementType else {
                return "output \(i): got \(got.elementType)\(got.shape), want \(want.elementType)\(want.shape)"
            }
            guard let g = got.doubles(), let w = want.doubles() else { return "output \(i) not numeric" }
            for j in 0..<g.count {
                let ok = g[j] == w[j] || (g[j].isNaN && w[j].isNaN) || Swift.abs(g[j] - w[j]) <= 1e-5 + 1e-3 * Swift.abs(w[j])
                if !ok { return "output \(i)[\(j)]: got \(g[j]), want \(w[j])" }
            }
        }
        return nil
    }

    @Test func nodeCasesOfTheseOpsPass() throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: Self.folder)) ?? []).sorted()
        var passed = 0
        var failures: [String] = [], skipped: [String] = []
        for name in names {
            guard let model = try? ModelLoader().load(path: Self.folder + "/" + name + "/model.onnx") else { continue }
            let opTypes = Set(model.graph.nodes.map(\.opType))
            guard !opTypes.isDisjoint(with: Self.ops) else { continue }
            let missing = opTypes.filter { KernelRegistry.table[$0] == nil }
            if !missing.isEmpty {
                skipped.append("\(name): no kernel for \(missing.sorted().joined(separator: ", "))")
                continue
            }
            if ProcessInfo.processInfo.environment["NODE_CASE_TRACE"] != nil { FileHandle.standardError.write("case \(name)\n".data(using: .utf8)!) }
            do {
                if let failure = try Self.run(name) { failures.append("\(name): \(failure)") } else { passed += 1 }
            } catch {
                failures.append("\(name): \(error)")
            }
        }
        print("PoolNormReduce node cases: \(passed) passed, \(failures.count) failed, \(skipped.count) skipped")
        for s in skipped { print("  skipped \(s)") }
        for f in failures { print("  FAILED \(f)") }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(passed > 0)
    }
}
