import Foundation
import ONNXProto
import Testing

/// A model's external data truncated by another process while `vernier run` reads it:
/// the mapped pages beyond the new end fault (SIGBUS); the run must end with one line
/// and exit code 2, not a crash.
@Suite struct ShrinkingFileTests {
    /// `y = x + w` with w (4 MiB) in `w.bin`: the Add reads the mapped weight on every run.
    func writeModel(in folder: String, elements: Int) throws -> String {
        let values = (0..<elements).map { Float($0 % 97) }
        try values.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: folder + "/w.bin"))
        var w = Onnx_TensorProto()
        w.name = "w"
        w.dataType = 1
        w.dims = [Int64(elements)]
        w.dataLocation = .external
        w.externalData = [("location", "w.bin")].map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
        func info(_ name: String) -> Onnx_ValueInfoProto {
            var v = Onnx_ValueInfoProto()
            v.name = name
            var dim = Onnx_TensorShapeProto.Dimension()
            dim.dimValue = Int64(elements)
            v.type.tensorType.elemType = 1
            v.type.tensorType.shape.dim = [dim]
            return v
        }
        var add = Onnx_NodeProto()
        add.opType = "Add"
        add.name = "add"
        add.input = ["x", "w"]
        add.output = ["y"]
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        model.graph.name = "g"
        model.graph.node = [add]
        model.graph.input = [info("x")]
        model.graph.output = [info("y")]
        model.graph.initializer = [w]
        let path = folder + "/model.onnx"
        try Data(try model.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func externalDataTruncatedMidRunEndsWithOneLineAndExitTwo() throws {
        let folder = try CLI.makeTempFolder("shrink")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = try writeModel(in: folder, elements: 1 << 20)
        let intact = try CLI.run(["run", model, "--repeat", "3"])
        #expect(intact.status == 0, "\(intact)")
        let result = try CLI.run(["run", model, "--repeat", "1000000", "--show", "0"], timeout: 120) {
            // Long enough to be inside the run loop; then cut the file to nothing.
            Thread.sleep(forTimeInterval: 1.5)
            _ = truncate(folder + "/w.bin", 0)
        }
        #expect(!result.signaled && !result.timedOut, "\(result)")
        #expect(result.status == 2 && result.stderrIsOneVernierLine, "\(result)")
        #expect(result.err.contains("became shorter"), "\(result)")
    }
}
