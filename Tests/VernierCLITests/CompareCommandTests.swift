import Foundation
import Testing

/// `vernier compare` as a subprocess: totals with deltas, per-layer pairs, output agreement.
@Suite struct CompareCommandTests {
    static let quick = ["--runs", "3", "--warmup", "1", "--min-time", "0", "--threads", "1", "--no-roofline"]

    @Test func aModelAgainstItselfAgreesExactlyLayerByLayer() throws {
        let folder = try CLI.makeTempFolder("compare")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let copy = folder + "/copy.onnx"
        try FileManager.default.copyItem(atPath: CLI.root + "/Models/cifar_cnn.onnx", toPath: copy)
        let r = try CLI.run(["compare", "Models/cifar_cnn.onnx", copy, "--format", "json"] + Self.quick)
        #expect(r.status == 0, "\(r)")
        let json = try J.parse(r.stdout)
        #expect(json["schema"] as? String == "vernier.compare/1")
        let models = try #require(json["models"] as? [[String: Any]])
        #expect(models.count == 2 && models[0]["baseline"] as? Bool == true)
        let agreement = try #require(models[1]["agreement"] as? [[String: Any]])
        #expect(agreement.count == 1)
        #expect(agreement.first?["max_abs_diff"] as? Double == 0 && agreement.first?["cosine"] as? Double == 1)
        #expect(agreement.first?["top1_agreement"] as? Double == 1, "logits [1, 10] are classifier-shaped")
        let deltas = try #require(models[1]["deltas"] as? [String: Any])
        #expect((deltas["params"] as? [String: Double])?["abs"] == 0 && (deltas["file_bytes"] as? [String: Double])?["abs"] == 0)
        let layers = try #require(models[1]["layers"] as? [[String: Any]])
        #expect(!layers.isEmpty && layers.allSatisfy { $0["matched_by"] as? String == "name" })
    }

    @Test func differentModelsListLayersOnlyOneHasAndSayWhyOutputsAreNotCompared() throws {
        let r = try CLI.run(["compare", "Models/resnet_mini.onnx", "Models/cifar_cnn.onnx", "--baseline", "cifar_cnn.onnx"] + Self.quick)
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("baseline cifar_cnn.onnx"), "\(r)")
        #expect(r.out.contains("only in base") || r.out.contains("only here"), "\(r)")
        #expect(r.out.contains("its inputs differ from the baseline's"), "\(r)")
    }

    @Test func errors() throws {
        let one = try CLI.run(["compare", "Models/cifar_cnn.onnx"])
        #expect(one.status == 2 && one.stderrIsOneVernierLine, "\(one)")
        let base = try CLI.run(["compare", "Models/cifar_cnn.onnx", "Models/resnet_mini.onnx", "--baseline", "x.onnx"])
        #expect(base.status == 2 && base.err.contains("--baseline") && base.stderrIsOneVernierLine, "\(base)")
        let missing = try CLI.run(["compare", "Models/cifar_cnn.onnx", "Models/none.onnx"] + Self.quick)
        #expect(missing.status == 2 && missing.stderrIsOneVernierLine, "\(missing)")
    }
}
