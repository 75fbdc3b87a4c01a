import Foundation
import ONNXProto
import Testing
import VernierTestSupport
@testable import VernierGraph

struct LoaderTests {
    /// Loading maps large weights in place and gives exactly the bytes a full protobuf
    /// decode gives.
    @Test(arguments: TestPaths.goodModels)
    func weightsAreMappedAndMatchAFullDecode(path: String) throws {
        let model = try ModelLoader().load(path: path)
        let full = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        let reference = Dictionary(full.graph.initializer.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(model.graph.initializers.count == full.graph.initializer.count)
        for tensor in model.graph.initializers {
            let proto = try #require(reference[tensor.name])
            #expect(tensor.dims == proto.dims.map { Int($0) })
            let bytes = tensor.withUnsafeBytes { Array($0) }
            if proto.hasRawData {
                #expect(bytes == Array(proto.rawData), "tensor \(tensor.name)")
                if proto.rawData.count >= LoadOptions().inlineThreshold {
                    guard case .mapped = tensor.storage else {
                        Issue.record("tensor \(tensor.name) of \(proto.rawData.count) bytes was copied, not mapped")
                        continue
                    }
                }
            }
        }
        #expect(model.graph.nodes.count == full.graph.node.count)
    }

    @Test func externalDataIsMappedFromTheSideFile() throws {
        let model = try ModelLoader().load(path: TestPaths.model("external/ext_weights.onnx"))
        #expect(!model.graph.initializers.isEmpty)
        for t in model.graph.initializers {
            guard case .mapped(let file, _, let length) = t.storage else {
                Issue.record("\(t.name) is not mapped")
                continue
            }
            #expect(file.path.hasSuffix("ext_weights.bin"))
            #expect(length == t.elementCount * 4)
        }
    }

    @Test(arguments: [
        ("broken/external_escape.onnx", "leaves the model's folder"),
        ("broken/external_absolute.onnx", "leaves the model's folder"),
        ("broken/bad_initializer_size.onnx", "needs 64 bytes but the file holds 10"),
        ("broken/empty.onnx", "empty"),
        ("broken/truncated.onnx", "truncated"),
        ("broken/garbage.onnx", "not a valid ONNX model"),
    ])
    func brokenFilesFailWithAMessageNamingTheProblem(file: String, phrase: String) {
        do {
            _ = try ModelLoader().load(path: TestPaths.model(file))
            Issue.record("\(file) loaded")
        } catch {
            #expect("\(error)".contains(phrase), "\(file): \(error)")
        }
    }

    /// Writes a one-initializer model whose weight lives in external data at `location`.
    func externalModel(in folder: URL, location: String, offset: Int? = nil, length: Int? = nil) throws -> String {
        var tensor = Onnx_TensorProto()
        tensor.name = "w"
        tensor.dataType = 1
        tensor.dims = [4]
        tensor.dataLocation = .external
        var entries = [("location", location)]
        if let offset { entries.append(("offset", String(offset))) }
        if let length { entries.append(("length", String(length))) }
        tensor.externalData = entries.map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        model.graph.initializer = [tensor]
        model.graph.name = "g"
        let path = folder.appendingPathComponent("model.onnx")
        try Data(try model.serializedBytes() as [UInt8]).write(to: path)
        return path.path
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vernier-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func symlinkLeadingOutOfTheFolderIsRefused() throws {
        let outside = try temporaryFolder()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: outside); try? FileManager.default.removeItem(at: folder) }
        try Data(count: 16).write(to: outside.appendingPathComponent("secret.bin"))
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("weights.bin").path,
                                                   withDestinationPath: outside.appendingPathComponent("secret.bin").path)
        let path = try externalModel(in: folder, location: "weights.bin")
        #expect(throws: LoadError.externalDataEscapes(tensor: "w", location: "weights.bin")) { try ModelLoader().load(path: path) }
    }

    @Test func externalRangesBeyondTheFileAreRefused() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(count: 16).write(to: folder.appendingPathComponent("w.bin"))
        let ok = try externalModel(in: folder, location: "w.bin", offset: 0, length: 16)
        #expect(try ModelLoader().load(path: ok).graph.initializers.first?.byteCount == 16)
        let beyond = try externalModel(in: folder, location: "w.bin", offset: 8, length: 16)
        #expect(throws: LoadError.self) { try ModelLoader().load(path: beyond) }
        let subfolderEscape = try externalModel(in: folder, location: "sub/../../w.bin")
        #expect(throws: LoadError.externalDataEscapes(tensor: "w", location: "sub/../../w.bin")) { try ModelLoader().load(path: subfolderEscape) }
        let missing = try externalModel(in: folder, location: "nope.bin")
        #expect(throws: LoadError.self) { try ModelLoader().load(path: missing) }
    }

    @Test func customDomainOpsLoadAndAreNamed() throws {
        var node = Onnx_NodeProto()
        node.opType = "FusedConv"
        node.domain = "com.microsoft"
        node.input = ["x"]
        node.output = ["y"]
        var model = Onnx_ModelProto()
        model.irVersion = 8
        model.graph.node = [node]
        var x = Onnx_ValueInfoProto()
        x.name = "x"
        model.graph.input = [x]
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("m.onnx").path
        try Data(try model.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: path))
        let loaded = try ModelLoader().load(path: path)
        #expect(loaded.graph.nodes.first?.qualifiedOpType == "com.microsoft.FusedConv")
        #expect(loaded.graph.nodes.first?.displayName == "FusedConv_0")
    }
}

struct ValidationTests {
    func validate(_ file: String) throws -> Model {
        try GraphValidator.validate(try ModelLoader().load(path: TestPaths.model(file)))
    }

    @Test func cycleIsNamed() {
        #expect(throws: ValidationError.cycle(nodes: ["relu", "add"])) { try validate("broken/cycle.onnx") }
    }

    @Test func undefinedInputIsNamed() {
        #expect(throws: ValidationError.undefinedInput(node: "add", opType: "Add", input: "ghost")) { try validate("broken/undefined_input.onnx") }
    }

    @Test func duplicateValueIsNamed() {
        #expect(throws: ValidationError.duplicateValue(name: "y", producers: ["node 'relu'", "node 'neg'"])) { try validate("broken/duplicate_output.onnx") }
    }

    @Test func outputNeverProducedIsNamed() {
        #expect(throws: ValidationError.outputNeverProduced(graph: "missing_graph_output", output: "z")) { try validate("broken/missing_graph_output.onnx") }
    }

    @Test func nodesOutOfOrderAreSortedNotRejected() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(2)])
        b.node("Neg", ["y"], ["z"])
        b.node("Relu", ["x"], ["y"])
        b.output("z")
        let g = try GraphValidator.validate(b.graph, outerScope: [])
        #expect(g.nodes.map(\.opType) == ["Relu", "Neg"])
    }

    @Test func absurdDimsAreRefusedByInference() throws {
        let model = try validate("broken/huge_dims.onnx")
        #expect(throws: InferenceError.self) { try ShapeInference().infer(model) }
    }
}
