import Foundation
import Testing
@testable import VernierGraph

/// ModelWriter: every model in Models/ survives load -> write -> load unchanged, and
/// libonnx's checker accepts what we write.
struct ModelWriterTests {
    static var roundTripModels: [String] { TestPaths.goodModels + [TestPaths.model("external/ext_weights.onnx")] }

    @Test(arguments: roundTripModels)
    func writtenModelLoadsBackEqual(path: String) throws {
        let original = try ModelLoader().load(path: path)
        let bytes = try ModelWriter().serialize(original)
        let written = try TemporaryModelFile(bytes: bytes)
        let reloaded = try withExtendedLifetime(written) { try ModelLoader().load(path: written.path) }

        #expect(reloaded.irVersion == original.irVersion)
        #expect(reloaded.opsets == original.opsets)
        #expect(reloaded.producerName == original.producerName)
        #expect(reloaded.producerVersion == original.producerVersion)
        #expect(reloaded.metadata == original.metadata)
        #expect(reloaded.docString == original.docString)
        var differences: [String] = []
        GraphComparison.compare(original.graph, reloaded.graph, at: "graph", into: &differences)
        #expect(differences.isEmpty, "\(differences.prefix(10).joined(separator: "\n"))")

        // Weights are written inline: no external files are needed any more.
        #expect(reloaded.externalDataFiles == 0)
        let verdict = LibONNX.check(strippedBytes: bytes)
        #expect(verdict == .valid, "libonnx checker: \(verdict)")
        // Writing is deterministic: the reloaded model writes the same bytes.
        #expect(try ModelWriter().serialize(reloaded) == bytes)
    }

    @Test func reloadedModelInfersTheSameShapes() throws {
        var options = InferenceOptions()
        options.dimBindings = ["batch": 2, "seq": 7]
        let path = TestPaths.model("bert_mini.onnx")
        let original = try ModelAnalyzer(inferenceOptions: options).analyze(path: path)
        let written = try TemporaryModelFile(bytes: try ModelWriter().serialize(original.model))
        let reloaded = try withExtendedLifetime(written) { try ModelAnalyzer(inferenceOptions: options).analyze(path: written.path) }
        #expect(original.inferred.facts.count == reloaded.inferred.facts.count)
        for (name, facts) in original.inferred.facts {
            #expect(reloaded.inferred.facts[name]?.type == facts.type, "\(name)")
        }
    }

    @Test func symbolicAndBlankDimsAreWrittenAsParamsAndBlanks() throws {
        let shape = ModelWriter.shapeProto([.value(3), .symbol("batch"), .symbol("?x[2]"), .symbol("seq") * .value(2)])
        #expect(shape.dim.count == 4)
        #expect(shape.dim[0].dimValue == 3)
        #expect(shape.dim[1].dimParam == "batch")
        #expect(shape.dim[2].value == nil)
        #expect(shape.dim[3].dimParam == (Dim.symbol("seq") * .value(2)).description)
    }

    @Test func modelsOverTwoGigabytesAreRefused() throws {
        // A sparse file: mapped, never read, so the test needs no memory.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vernier-big-\(getpid()).bin").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        let size = Int(Int32.max) + 1
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
        let file = try MappedFile(path: path)
        let weight = TensorData(name: "w", elementType: .float, dims: [size / 4], storage: .mapped(file, offset: 0, length: size))
        let graph = Graph(name: "big", inputs: [], outputs: [ValueInfo(name: "w", type: .tensor(weight.type))], initializers: [weight])
        let model = Model(irVersion: 8, opsets: [OpsetImport(domain: "", version: 17)], graph: graph)
        #expect(throws: WriteError.tooLarge(weightBytes: size, limit: ModelWriter.protobufLimit)) {
            try ModelWriter().serialize(model)
        }
    }

    @Test func sparseInitializersAreRefusedByName() throws {
        var graph = Graph(name: "g")
        graph.sparseInitializerNames = ["embedding"]
        let model = Model(irVersion: 8, opsets: [OpsetImport(domain: "", version: 17)], graph: graph)
        #expect(throws: WriteError.sparseInitializer(name: "embedding")) { try ModelWriter().serialize(model) }
    }

    @Test func modelLocalFunctionsAreRefusedByName() throws {
        var model = Model(irVersion: 8, opsets: [OpsetImport(domain: "", version: 17)], graph: Graph(name: "g"))
        model.functions = [FunctionInfo(domain: "custom", name: "Gelu", nodeCount: 3)]
        #expect(throws: WriteError.localFunctions(names: ["custom.Gelu"])) { try ModelWriter().serialize(model) }
    }
}

/// A model written to a temporary file, removed when the value is released.
final class TemporaryModelFile {
    let path: String

    init(bytes: [UInt8]) throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("vernier-written-\(UUID().uuidString).onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Structural equality of two graphs, listing every difference with its place.
enum GraphComparison {
    static func compare(_ a: Graph, _ b: Graph, at place: String, into out: inout [String]) {
        if a.name != b.name { out.append("\(place): name \(a.name) vs \(b.name)") }
        if a.inputs != b.inputs { out.append("\(place): inputs differ") }
        if a.outputs != b.outputs { out.append("\(place): outputs differ") }
        if a.valueInfo != b.valueInfo { out.append("\(place): value_info differs") }
        if a.nodes.count != b.nodes.count { out.append("\(place): \(a.nodes.count) vs \(b.nodes.count) nodes") }
        for (x, y) in zip(a.nodes, b.nodes) {
            let here = "\(place)/\(x.displayName)"
            if x.name != y.name || x.displayName != y.displayName || x.opType != y.opType || x.domain != y.domain
                || x.inputs != y.inputs || x.outputs != y.outputs {
                out.append("\(here): node header differs")
            }
            if x.attributes.map(\.name) != y.attributes.map(\.name) { out.append("\(here): attribute names differ") }
            for (p, q) in zip(x.attributes, y.attributes) { compare(p.value, q.value, at: "\(here).\(p.name)", into: &out) }
        }
        if a.initializers.count != b.initializers.count { out.append("\(place): initializer counts differ") }
        for (x, y) in zip(a.initializers, b.initializers) { compare(x, y, at: "\(place)/\(x.name)", into: &out) }
    }

    static func compare(_ a: AttributeValue, _ b: AttributeValue, at place: String, into out: inout [String]) {
        switch (a, b) {
        case let (.float(x), .float(y)): if x.bitPattern != y.bitPattern { out.append(place) }
        case let (.int(x), .int(y)): if x != y { out.append(place) }
        case let (.string(x), .string(y)): if x != y { out.append(place) }
        case let (.floats(x), .floats(y)): if x.map(\.bitPattern) != y.map(\.bitPattern) { out.append(place) }
        case let (.ints(x), .ints(y)): if x != y { out.append(place) }
        case let (.strings(x), .strings(y)): if x != y { out.append(place) }
        case let (.tensor(x), .tensor(y)): compare(x, y, at: place, into: &out)
        case let (.tensors(x), .tensors(y)):
            if x.count != y.count { out.append(place) }
            for (p, q) in zip(x, y) { compare(p, q, at: place, into: &out) }
        case let (.graph(x), .graph(y)): compare(x, y, at: place, into: &out)
        case let (.graphs(x), .graphs(y)):
            if x.count != y.count { out.append(place) }
            for (p, q) in zip(x, y) { compare(p, q, at: place, into: &out) }
        case let (.type(x), .type(y)): if x != y { out.append(place) }
        case let (.types(x), .types(y)): if x != y { out.append(place) }
        case let (.reference(x), .reference(y)): if x != y { out.append(place) }
        default: out.append("\(place): kinds \(a.kindName) vs \(b.kindName)")
        }
    }

    static func compare(_ a: TensorData, _ b: TensorData, at place: String, into out: inout [String]) {
        if a.name != b.name || a.elementType != b.elementType || a.dims != b.dims {
            out.append("\(place): tensor header \(a.name) \(a.elementType)\(a.dims) vs \(b.name) \(b.elementType)\(b.dims)")
        }
        if case .strings(let x) = a.storage {
            guard case .strings(let y) = b.storage, x == y else { return out.append("\(place): strings differ") }
            return
        }
        let same = a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
        if !same { out.append("\(place): tensor bytes differ") }
    }
}
