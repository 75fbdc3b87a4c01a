import Foundation
import Testing

/// A minimal protobuf writer for the few ONNX messages these tests need (field numbers from
/// onnx.proto), so that models that the ONNX checker rejects can be built without Python.
struct Proto {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    /// Field with wire type 0 (varint); negative values as 10-byte two's complement, as protobuf does.
    mutating func int(_ field: Int, _ value: Int64) {
        varint(UInt64(field << 3))
        varint(UInt64(bitPattern: value))
    }

    /// Field with wire type 2 (length-delimited).
    mutating func bytes(_ field: Int, _ payload: [UInt8]) {
        varint(UInt64(field << 3 | 2))
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ m: Proto) { bytes(field, m.bytes) }

    // MARK: ONNX messages

    /// ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 { dim_value = 1 | dim_param = 2 } } } } }
    static func tensorValue(_ name: String, elemType: Int64 = 1, dims: [Int64]) -> Proto {
        var shape = Proto()
        for d in dims {
            var dim = Proto()
            dim.int(1, d)
            shape.message(1, dim)
        }
        var tensor = Proto()
        tensor.int(1, elemType)
        tensor.message(2, shape)
        var type = Proto()
        type.message(1, tensor)
        var info = Proto()
        info.string(1, name)
        info.message(2, type)
        return info
    }

    /// NodeProto { input = 1; output = 2; name = 3; op_type = 4 }
    static func node(_ op: String, name: String, inputs: [String], outputs: [String]) -> Proto {
        var n = Proto()
        for i in inputs { n.string(1, i) }
        for o in outputs { n.string(2, o) }
        n.string(3, name)
        n.string(4, op)
        return n
    }

    /// ModelProto { ir_version = 1; producer_name = 2; graph = 7 { node = 1; name = 2; input = 11; output = 12 }; opset_import = 8 { domain = 1; version = 2 } }
    static func model(irVersion: Int64? = 8, opset: Int64? = 17, nodes: [Proto], inputs: [Proto], outputs: [Proto]) -> Data {
        var graph = Proto()
        for n in nodes { graph.message(1, n) }
        graph.string(2, "hand_built")
        for i in inputs { graph.message(11, i) }
        for o in outputs { graph.message(12, o) }
        var model = Proto()
        if let irVersion { model.int(1, irVersion) }
        model.string(2, "vernier-tests")
        model.message(7, graph)
        if let opset {
            var id = Proto()
            id.string(1, "")
            id.int(2, opset)
            model.message(8, id)
        }
        return Data(model.bytes)
    }

    /// Relu(x) -> y, both float with the same dims, [2,3] unless told otherwise.
    static func relu(irVersion: Int64? = 8, opset: Int64? = 17, inputDims: [Int64] = [2, 3],
                     extraInputs: [Proto] = []) -> Data {
        model(irVersion: irVersion, opset: opset,
              nodes: [node("Relu", name: "relu", inputs: ["x"], outputs: ["y"])],
              inputs: [tensorValue("x", dims: inputDims)] + extraInputs,
              outputs: [tensorValue("y", dims: inputDims)])
    }
}

/// Models that are invalid in ways the files in Models/broken do not cover, written by hand.
/// Each is rejected by `onnx.checker.check_model` (onnx 1.23, checked once while writing these
/// tests with the same models built by onnx.helper); vernier must exit 2 with one message line.
@Suite struct HandBuiltModelTests {
    static func run(_ name: String, _ data: Data) throws -> CLI.Result {
        let folder = try CLI.makeTempFolder("handbuilt")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + name + ".onnx"
        try data.write(to: URL(fileURLWithPath: path))
        return try CLI.run(["summary", path, "--format", "json"])
    }

    static func expectRejected(_ r: CLI.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        guard r.exitedNormally && r.status == 2 else {
            Issue.record("want exit 2 for an invalid model, got: \(r.description.prefix(700))", sourceLocation: sourceLocation)
            return
        }
        let oneLine = r.stderrIsOneVernierLine
        #expect(oneLine, "want one 'vernier: ' line on stderr, got: \(r.err)", sourceLocation: sourceLocation)
    }

    @Test("control: the hand-built Relu model is accepted and read back correctly")
    func control() throws {
        let r = try Self.run("relu", Proto.relu())
        try #require(r.exitedNormally && r.status == 0, "\(r)")
        let doc = try J.parse(r.stdout)
        #expect(J.int(doc["ir_version"]) == 8)
        #expect(J.int((doc["totals"] as? [String: Any])?["nodes"]) == 1)
        let node = try #require((doc["nodes"] as? [[String: Any]])?.first)
        #expect(node["op"] as? String == "Relu")
        #expect(((node["output_shapes"] as? [Any]) ?? []).map(J.shape) == [J.ints([2, 3])])
    }

    @Test("a model without opset_import is rejected")
    func noOpsetImport() throws {
        // checker: "model with IR version >= 3 must specify opset_import for ONNX". Without it
        // the op set (and so every shape rule's version) is undefined.
        Self.expectRejected(try Self.run("no_opset", Proto.relu(opset: nil)))
    }

    @Test("cifar_cnn without its trailing opset_import field is rejected")
    func cifarWithoutOpset() throws {
        // Found by MutatedModelTests (a truncation of the last 6 bytes exited 0). The file ends
        // with the opset_import field: 0x42 (field 8, length-delimited) 0x04, then domain ""
        // (0x0A 0x00) and version 17 (0x10 0x11). Dropping it leaves a well-formed protobuf.
        let original = try Data(contentsOf: URL(fileURLWithPath: CLI.root + "/Models/cifar_cnn.onnx"))
        try #require(Array(original.suffix(6)) == [0x42, 0x04, 0x0A, 0x00, 0x10, 0x11], "the file's layout changed")
        Self.expectRejected(try Self.run("cifar_no_opset", original.dropLast(6)))
    }

    @Test("a graph input declared twice is rejected")
    func duplicateGraphInput() throws {
        // checker: "Graph must be in single static assignment (SSA) form, however 'x' has been
        // used as graph input names multiple times." (vernier rejects a value produced twice by
        // nodes: Models/broken/duplicate_output.onnx.)
        Self.expectRejected(try Self.run("dup_input", Proto.relu(extraInputs: [Proto.tensorValue("x", dims: [2, 3])])))
    }

    @Test("a negative dim in an input shape is rejected")
    func negativeDim() throws {
        // dim_value -5: a tensor cannot have a negative extent (checker: shape inference error).
        Self.expectRejected(try Self.run("neg_dim", Proto.relu(inputDims: [-5, 3])))
    }

    @Test("a model without ir_version is rejected")
    func noIRVersion() throws {
        // checker: "The model does not have an ir_version set properly."
        Self.expectRejected(try Self.run("no_ir", Proto.relu(irVersion: nil)))
    }
}
