import Foundation
import Testing

/// `vernier distill` as a subprocess: the student is written, the removed blocks named,
/// teacher and student compared; one-line errors with exit code 2.
@Suite struct DistillCommandTests {
    func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "vernier-distill-\(getpid())-\(name)"
    }

    @Test func studentIsWrittenComparedAndRuns() throws {
        let out = temporaryPath("student.onnx")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try CLI.run(["distill", "Models/resnet_mini.onnx", "--width", "0.5", "--depth", "0.5", "--device", "rpi4",
                             "--measure-time", "0.1", "-o", out])
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("removed layer2.1.add"), "\(r)")
        #expect(r.out.contains("kept    layer1.0.add"), "\(r)")
        for row in ["params", "MACs", "file size", "predicted latency on rpi4", "measured latency on this machine"] {
            #expect(r.out.contains(row), "\(row): \(r)")
        }
        let teacher = try CLI.run(["run", "Models/resnet_mini.onnx", "--show", "0"])
        let student = try CLI.run(["run", out, "--show", "0"])
        #expect(student.status == 0, "\(student)")
        #expect(student.out == teacher.out, "same output name and shape")
    }

    @Test(arguments: [
        ["distill", "Models/resnet_mini.onnx", "--width", "0", "-o", "/tmp/vernier-distill-never.onnx"],
        ["distill", "Models/resnet_mini.onnx", "--width", "1", "--depth", "1", "-o", "/tmp/vernier-distill-never.onnx"],
        ["distill", "Models/resnet_mini.onnx", "--depth", "1.5", "-o", "/tmp/vernier-distill-never.onnx"],
        ["distill", "Models/missing.onnx", "--width", "0.5", "-o", "/tmp/vernier-distill-never.onnx"],
        ["distill", "Models/resnet_mini.onnx", "--width", "0.5", "--device", "no-such-device", "-o", "/tmp/vernier-distill-never.onnx"],
    ])
    func errorsExitTwoWithOneLine(arguments: [String]) throws {
        let r = try CLI.run(arguments)
        #expect(r.status == 2, "\(r)")
        #expect(r.stderrIsOneVernierLine, "\(r)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/vernier-distill-never.onnx"), "no student is left behind")
    }
}
