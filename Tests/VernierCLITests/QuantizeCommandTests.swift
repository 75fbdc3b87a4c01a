import Foundation
import Testing

/// `vernier quantize` as a subprocess: an int8 QDQ and a float16 model written, reported
/// and run by `vernier run`; one-line errors with exit code 2.
@Suite struct QuantizeCommandTests {
    func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "vernier-quantize-\(getpid())-\(name)"
    }

    @Test func int8ModelIsWrittenReportedAndRuns() throws {
        let out = temporaryPath("resnet_int8.onnx")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["quantize", "Models/resnet_mini.onnx", "--int8", "--per-channel", "--calibration-runs", "3", "-o", out])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("random-input calibration: 3 random input sets"), "\(r)")
        #expect(r.out.contains("quantized (9 nodes)"), "\(r)")
        #expect(r.out.contains("fidelity on probe inputs"), "\(r)")
        #expect(r.out.contains("top-1 agreement"), "\(r)")
        for row in ["params", "weight bytes", "file size", "int8 MACs"] { #expect(r.out.contains("\n" + row), "\(row): \(r)") }
        let original = try CLI.run(["run", "Models/resnet_mini.onnx", "--show", "0"])
        let quantized = try CLI.run(["run", out, "--show", "0"])
        #expect(quantized.status == 0, "\(quantized)")
        #expect(quantized.out == original.out, "same output name and shape")
        let size = (try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? .max
        let before = (try FileManager.default.attributesOfItem(atPath: CLI.root + "/Models/resnet_mini.onnx")[.size] as? Int) ?? 0
        #expect(size * 2 < before, "int8 weights: \(size) vs \(before) bytes")
    }

    @Test func calibrationDataIsSplitIntoSamples() throws {
        let data = temporaryPath("inputs.npz"), out = temporaryPath("calibrated.onnx")
        defer { for p in [data, out] { try? FileManager.default.removeItem(atPath: p) } }
        let saved = try CLI.run(["run", "Models/cifar_cnn.onnx", "--save-inputs", data, "--show", "0"])
        #expect(saved.status == 0, "\(saved)")
        let r = try CLI.run(["quantize", "Models/cifar_cnn.onnx", "--int8", "--calibration-data", data, "-o", out])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("calibration: \(data): 1 sample"), "\(r)")
        #expect(!r.out.contains("random-input calibration"), "\(r)")
    }

    @Test func float16ModelIsAboutHalfTheSize() throws {
        let out = temporaryPath("cifar_fp16.onnx")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["quantize", "Models/cifar_cnn.onnx", "--fp16", "-o", out])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("float16 weight storage"), "\(r)")
        let run = try CLI.run(["run", out, "--show", "0"])
        #expect(run.status == 0, "\(run)")
    }

    @Test(arguments: [
        ["quantize", "Models/resnet_mini.onnx", "-o", "/tmp/vernier-quantize-never.onnx"],
        ["quantize", "Models/resnet_mini.onnx", "--int8", "--fp16", "-o", "/tmp/vernier-quantize-never.onnx"],
        ["quantize", "Models/resnet_mini.onnx", "--fp16", "--per-channel", "-o", "/tmp/vernier-quantize-never.onnx"],
        ["quantize", "Models/resnet_mini.onnx", "--int8", "--calibration-runs", "0", "-o", "/tmp/vernier-quantize-never.onnx"],
        ["quantize", "Models/missing.onnx", "--int8", "-o", "/tmp/vernier-quantize-never.onnx"],
        ["quantize", "Models/resnet_mini.onnx", "--int8", "--calibration-data", "Models/missing.npz", "-o", "/tmp/vernier-quantize-never.onnx"],
    ])
    func errorsExitTwoWithOneLine(arguments: [String]) throws {
        let r = try CLI.run(arguments)
        #expect(r.status == 2, "\(r)")
        #expect(r.stderrIsOneVernierLine, "\(r)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/vernier-quantize-never.onnx"))
    }
}
