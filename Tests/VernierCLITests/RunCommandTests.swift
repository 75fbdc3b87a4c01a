import Foundation
import Testing

/// `vernier run` as a subprocess: outputs, deterministic random inputs, .npz round trips,
/// and the errors a user meets (unbound dims, wrong input data, ops without kernels).
@Suite struct RunCommandTests {
    func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "vernier-run-\(getpid())-\(name)"
    }

    @Test func printsEachOutputWithShapeAndValues() throws {
        let r = try CLI.run(["run", "Models/cifar_cnn.onnx", "--threads", "1"])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.hasPrefix("logits  float[1, 10]  ["), "\(r)")
        let r2 = try CLI.run(["run", "Models/bert_mini.onnx", "--dim", "batch=2", "--dim", "seq=8"])
        #expect(r2.status == 0, "\(r2)")
        #expect(r2.out.contains("last_hidden_state  float[2, 8, 64]"), "\(r2)")
    }

    @Test func randomInputsAreTheSameOnEveryRun() throws {
        let a = try CLI.run(["run", "Models/resnet_mini.onnx", "--show", "10"])
        let b = try CLI.run(["run", "Models/resnet_mini.onnx", "--show", "10", "--threads", "1"])
        #expect(a.status == 0 && b.status == 0)
        #expect(a.out == b.out, "same seed, same inputs, same outputs at any thread count")
        let c = try CLI.run(["run", "Models/resnet_mini.onnx", "--show", "10", "--seed", "7"])
        #expect(c.out != a.out, "another seed gives other inputs")
    }

    @Test func savedInputsReplayToTheSameOutputs() throws {
        let inputs = temporaryPath("in.npz"), first = temporaryPath("out1.npz"), second = temporaryPath("out2.npz")
        defer { for p in [inputs, first, second] { try? FileManager.default.removeItem(atPath: p) } }
        let r = try CLI.run(["run", "Models/yolo_mini.onnx", "--save-inputs", inputs, "--save-outputs", first, "--show", "0"])
        #expect(r.status == 0, "\(r)")
        let replay = try CLI.run(["run", "Models/yolo_mini.onnx", "--input-data", inputs, "--save-outputs", second, "--show", "0"])
        #expect(replay.status == 0, "\(replay)")
        let one = try #require(FileManager.default.contents(atPath: first))
        let two = try #require(FileManager.default.contents(atPath: second))
        #expect(one == two)
        #expect(one.count > 320 * 8 * 4, "the detections array is in the archive")
    }

    @Test func inputDataThatDoesNotFitIsAClearError() throws {
        let wrong = temporaryPath("wrong.npz")
        defer { try? FileManager.default.removeItem(atPath: wrong) }
        // Saved inputs of another model: the name does not exist in cifar_cnn.
        let r = try CLI.run(["run", "Models/tiny_if.onnx", "--save-inputs", wrong, "--show", "0"])
        #expect(r.status == 0, "\(r)")
        let bad = try CLI.run(["run", "Models/cifar_cnn.onnx", "--input-data", wrong])
        #expect(bad.status == 2, "\(bad)")
        #expect(bad.stderrIsOneVernierLine, "\(bad)")
        let garbage = try CLI.run(["run", "Models/cifar_cnn.onnx", "--input-data", "Models/README.md"])
        #expect(garbage.status == 2 && garbage.stderrIsOneVernierLine, "\(garbage)")
    }

    @Test func unboundDimsSayHowToBindThem() throws {
        let r = try CLI.run(["run", "Models/bert_mini.onnx"])
        #expect(r.status == 2)
        #expect(r.err.contains("--dim"), "\(r)")
        #expect(r.stderrIsOneVernierLine)
    }

    @Test func anOpWithoutAKernelExitsTwoNamingIt() throws {
        let model = CLI.root + "/Tests/Data/node/test_nonmaxsuppression_center_point_box_format/model.onnx"
        try #require(FileManager.default.fileExists(atPath: model), "node tests missing: run Scripts/fetch_node_tests.sh")
        let r = try CLI.run(["run", model])
        #expect(r.status == 2, "\(r)")
        #expect(r.err.contains("no kernel for op NonMaxSuppression"), "\(r)")
        #expect(r.stderrIsOneVernierLine)
        let summary = try CLI.run(["summary", model])
        #expect(summary.status == 0, "summary still works: \(summary)")
    }

    @Test func aModelNeedingTerabytesIsRefusedBeforeAllocating() throws {
        // BERT-mini at batch 1024 x seq 8192: attention scores alone are 1024 x 4 x 8192^2 floats (1 TiB).
        let huge = try CLI.run(["run", "Models/bert_mini.onnx", "--dim", "batch=1024", "--dim", "seq=8192",
                                "--max-elements", "1000000000000"], timeout: 120)
        #expect(huge.status == 2 && huge.stderrIsOneVernierLine, "\(huge)")
        #expect(huge.err.contains("of activations") && huge.err.contains("--max-memory"), "\(huge)")
        let limited = try CLI.run(["profile", "Models/resnet_mini.onnx", "--max-memory", "0.1", "--no-roofline"])
        #expect(limited.status == 2 && limited.err.contains("over the 0.1 MiB limit"), "\(limited)")
        let fits = try CLI.run(["run", "Models/resnet_mini.onnx", "--max-memory", "1", "--show", "0"])
        #expect(fits.status == 0, "\(fits)")
    }
}
