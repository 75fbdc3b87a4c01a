import Foundation
import Testing

/// `vernier prune` as a subprocess: listing groups, writing a pruned model that `run`
/// and `summary` accept, unstructured sparsity's honest report, and one-line errors.
@Suite struct PruneCommandTests {
    func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "vernier-prune-\(getpid())-\(name)"
    }

    @Test func listGroupsPrintsEachGroupWithoutWriting() throws {
        let r = try CLI.run(["prune", "Models/resnet_mini.onnx", "--list-groups", "--ratio", "0.5"])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("channel groups"), "\(r)")
        // The stem and the residual branch it is added to form one group.
        let stem = try #require(r.out.split(separator: "\n").firstIndex { $0.hasPrefix("stem.conv ") })
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines[stem].contains("16 -> 8") && lines[stem].contains("prunable"), "\(lines[stem])")
        #expect(lines[stem + 1].contains("layer1.0.add"), "\(lines[stem + 1])")
        #expect(r.out.contains("not prunable: 'logits' is a graph output"), "\(r)")
    }

    @Test func prunedModelIsWrittenAndRunsWithTheSameOutputShape() throws {
        let out = temporaryPath("cifar.onnx")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["prune", "Models/cifar_cnn.onnx", "--ratio", "0.3", "--round-to", "4", "--importance", "l2", "-o", out])
        #expect(r.status == 0, "\(r)")
        for row in ["params", "MACs", "weight bytes", "file size"] { #expect(r.out.contains("\n" + row), "\(row): \(r)") }
        // No temporary file is left beside the output.
        let folder = (out as NSString).deletingLastPathComponent
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".vernier-prune-\(getpid())") }
        #expect(leftovers.isEmpty)
        let original = try CLI.run(["run", "Models/cifar_cnn.onnx", "--show", "0"])
        let pruned = try CLI.run(["run", out, "--show", "0"])
        #expect(pruned.status == 0, "\(pruned)")
        #expect(pruned.out == original.out, "same output name and shape")
        let summary = try CLI.run(["summary", out, "--format", "json"])
        #expect(summary.status == 0, "\(summary)")
        let before = try CLI.run(["summary", "Models/cifar_cnn.onnx", "--format", "json"])
        let paramsAfter = J.int(try J.parse(summary.stdout)["totals"].flatMap { ($0 as? [String: Any])?["params"] })
        let paramsBefore = J.int(try J.parse(before.stdout)["totals"].flatMap { ($0 as? [String: Any])?["params"] })
        #expect((paramsAfter ?? .max) < (paramsBefore ?? 0))
    }

    @Test func sparsityReportsThatTheDenseSizeAndLatencyDoNotChange() throws {
        let out = temporaryPath("sparse.onnx")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["prune", "Models/resnet_mini.onnx", "--sparsity", "0.9", "-o", out])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("unchanged"), "\(r)")
        #expect(r.out.contains("latency"), "\(r)")
        let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int
        let original = try FileManager.default.attributesOfItem(atPath: CLI.root + "/Models/resnet_mini.onnx")[.size] as? Int
        #expect(abs((size ?? 0) - (original ?? 0)) < 4096, "zeroed weights keep the dense size")
    }

    @Test(arguments: [
        (["prune", "Models/resnet_mini.onnx", "--ratio", "0.3"], "--output"),
        (["prune", "Models/resnet_mini.onnx", "--ratio", "1.5", "--list-groups"], "--ratio"),
        (["prune", "Models/resnet_mini.onnx", "--group", "nope=0.5", "--list-groups"], "no channel group named 'nope'"),
        (["prune", "Models/resnet_mini.onnx", "--round-to", "0", "--list-groups"], "--round-to"),
        (["prune", "Models/resnet_mini.onnx", "--group", "fc=0.5", "--list-groups"], "group 'fc' cannot be pruned: 'logits' is a graph output"),
        (["prune", "Models/broken/truncated.onnx", "--list-groups"], "truncated"),
        (["prune", "Models/resnet_mini.onnx", "--sparsity", "0.5", "--ratio", "0.2", "-o", "/tmp/x.onnx"], "--sparsity"),
    ])
    func badRequestsExitTwoWithOneLine(arguments: [String], mentions: String) throws {
        let r = try CLI.run(arguments)
        #expect(r.status == 2, "\(r)")
        #expect(r.stderrIsOneVernierLine, "\(r)")
        #expect(r.err.contains(mentions), "\(r)")
    }
}
