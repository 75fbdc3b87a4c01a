import Foundation
import ONNXProto
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

/// Limits and knobs for loading.
public struct LoadOptions: Sendable {
    /// `raw_data` payloads at least this long are read in place from the mapped file.
    public var inlineThreshold: Int = 1024
    /// Deepest nesting of protobuf messages (and so of subgraphs) accepted.
    public var maxNestingDepth: Int = 96

    public init() {}
}

/// Reads an ONNX file into a `Model`. Weights are memory-mapped, not copied: the file
/// is mapped, large `raw_data` payloads are cut out before protobuf decoding (see
/// `RawDataStripper`) and tensors refer back to the mapping.
public struct ModelLoader: Sendable {
    public var options: LoadOptions

    public init(options: LoadOptions = LoadOptions()) {
        self.options = options
    }

    /// Loads the model at `path`. Throws `LoadError`.
    public func load(path: String) throws -> Model {
        let file = try MappedFile(path: path)
        guard file.size > 0 else { throw LoadError.emptyFile(path: path) }
        let stripper = RawDataStripper(threshold: options.inlineThreshold, maxDepth: options.maxNestingDepth)
        let stripped: [UInt8]
        do {
            stripped = try stripper.strip(file.bytes)
        } catch RawDataStripper.Failure.tooDeep {
            throw LoadError.nestingTooDeep(limit: options.maxNestingDepth)
        } catch RawDataStripper.Failure.truncated(let at) {
            throw LoadError.malformedProtobuf(path: path, detail: "truncated or corrupt field at byte \(at)")
        } catch RawDataStripper.Failure.badWireType(let w, let at) {
            throw LoadError.malformedProtobuf(path: path, detail: "invalid wire type \(w) at byte \(at)")
        }
        let proto: Onnx_ModelProto
        do {
            var decoding = BinaryDecodingOptions()
            decoding.messageDepthLimit = options.maxNestingDepth + 4
            proto = try Onnx_ModelProto(serializedBytes: stripped, options: decoding)
        } catch {
            throw LoadError.malformedProtobuf(path: path, detail: "\(error)")
        }
        guard proto.hasGraph else { throw LoadError.noGraph(path: path) }
        let folder = (path as NSString).deletingLastPathComponent
        var context = ConversionContext(modelFile: file, folder: folder.isEmpty ? "." : folder)
        let graph = try context.graph(proto.graph)
        var metadata: [String: String] = [:]
        for entry in proto.metadataProps { metadata[entry.key] = entry.value }
        var model = Model(
            irVersion: Int(proto.irVersion),
            opsets: proto.opsetImport.map { OpsetImport(domain: $0.domain, version: Int($0.version)) },
            producerName: proto.producerName,
            producerVersion: proto.producerVersion,
            domain: proto.domain,
            modelVersion: Int(proto.modelVersion),
            docString: proto.docString,
            metadata: metadata,
            graph: graph,
            functions: proto.functions.map { FunctionInfo(domain: $0.domain, name: $0.name, nodeCount: $0.node.count) },
            path: path,
            fileBytes: file.size + context.externalFiles.values.reduce(0) { $0 + $1.size }
        )
        model.externalDataFiles = context.externalFiles.count
        return model
    }

    /// Converts a standalone TensorProto (e.g. a test-data `.pb` file) held in memory.
    public static func tensorData(from proto: Onnx_TensorProto) throws -> TensorData {
        var context = ConversionContext(modelFile: nil, folder: ".")
        return try context.tensor(proto)
    }

    /// The stripped ModelProto bytes of `path` (weights cut out), as handed to libonnx
    /// for its checker and shape inference.
    public func strippedBytes(path: String) throws -> [UInt8] {
        let file = try MappedFile(path: path)
        guard file.size > 0 else { throw LoadError.emptyFile(path: path) }
        do {
            return try RawDataStripper(threshold: options.inlineThreshold, maxDepth: options.maxNestingDepth).strip(file.bytes)
        } catch {
            throw LoadError.malformedProtobuf(path: path, detail: "\(error)")
        }
    }
}

/// Protobuf-to-IR conversion state: the mapped model file and external-data files.
private struct ConversionContext {
    /// nil when converting a standalone tensor, which has no stripped payloads.
    let modelFile: MappedFile?
    let folder: String
    var externalFiles: [String: MappedFile] = [:]

    mutating func graph(_ g: Onnx_GraphProto) throws -> Graph {
        var usedNames = Set<String>()
        var nodes: [Node] = []
        nodes.reserveCapacity(g.node.count)
        for (index, n) in g.node.enumerated() {
            var display = n.name
            if display.isEmpty || usedNames.contains(display) {
                display = n.name.isEmpty ? "\(n.opType)_\(index)" : "\(n.name)#\(index)"
            }
            usedNames.insert(display)
            nodes.append(Node(
                name: n.name, displayName: display, opType: n.opType, domain: n.domain,
                inputs: n.input, outputs: n.output,
                attributes: try n.attribute.map { try attribute($0, node: display) }
            ))
        }
        var graph = Graph(
            name: g.name,
            nodes: nodes,
            inputs: g.input.map(valueInfo),
            outputs: g.output.map(valueInfo),
            initializers: try g.initializer.map { try tensor($0) }
                + g.sparseInitializer.map { try sparseAsDenseDescription($0) },
            valueInfo: g.valueInfo.map(valueInfo)
        )
        graph.sparseInitializerNames = g.sparseInitializer.map(\.values.name)
        return graph
    }

    func valueInfo(_ v: Onnx_ValueInfoProto) -> ValueInfo {
        ValueInfo(name: v.name, type: v.hasType ? valueType(v.type, value: v.name) : nil)
    }

    func valueType(_ t: Onnx_TypeProto, value: String = "") -> ValueType? {
        switch t.value {
        case .tensorType(let tt)?:
            return .tensor(tensorType(elemType: tt.elemType, shape: tt.hasShape ? tt.shape : nil, value: value))
        case .sparseTensorType(let st)?:
            return .sparseTensor(tensorType(elemType: st.elemType, shape: st.hasShape ? st.shape : nil, value: value))
        case .sequenceType(let s)?:
            return .sequence(s.hasElemType ? valueType(s.elemType, value: value) : nil)
        case .mapType(let m)?:
            return .map(key: ElementType(rawValue: Int(m.keyType)) ?? .undefined, value: m.hasValueType ? valueType(m.valueType, value: value) : nil)
        case .optionalType(let o)?:
            return .optional(o.hasElemType ? valueType(o.elemType, value: value) : nil)
        case .opaqueType(let o)?:
            return .opaque(domain: o.domain, name: o.name)
        case nil:
            return nil
        }
    }

    func tensorType(elemType: Int32, shape: Onnx_TensorShapeProto?, value: String) -> TensorType {
        TensorType(elementCode: elemType, shape: shape, value: value)
    }

    mutating func attribute(_ a: Onnx_AttributeProto, node: String) throws -> Attribute {
        if !a.refAttrName.isEmpty { return Attribute(name: a.name, value: .reference(a.refAttrName)) }
        var kind = a.type
        if kind == .undefined {
            // IR < 3 files omit the discriminator; take the field that is set.
            if a.hasF { kind = .float } else if a.hasI { kind = .int } else if a.hasS { kind = .string }
            else if a.hasT { kind = .tensor } else if a.hasG { kind = .graph }
            else if !a.floats.isEmpty { kind = .floats } else if !a.ints.isEmpty { kind = .ints }
            else if !a.strings.isEmpty { kind = .strings } else if !a.tensors.isEmpty { kind = .tensors }
            else if !a.graphs.isEmpty { kind = .graphs }
        }
        let value: AttributeValue
        switch kind {
        case .float: value = .float(a.f)
        case .int: value = .int(Int(a.i))
        case .string: value = .string(String(decoding: a.s, as: UTF8.self))
        case .tensor: value = .tensor(try tensor(a.t))
        case .graph: value = .graph(try graph(a.g))
        case .sparseTensor: value = .sparseTensor(sparseType(a.sparseTensor))
        case .typeProto: value = .type(valueType(a.tp))
        case .floats: value = .floats(a.floats)
        case .ints: value = .ints(a.ints.map { Int($0) })
        case .strings: value = .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensors: value = .tensors(try a.tensors.map { try tensor($0) })
        case .graphs: value = .graphs(try a.graphs.map { try graph($0) })
        case .sparseTensors: value = .sparseTensors(a.sparseTensors.map(sparseType))
        case .typeProtos: value = .types(a.typeProtos.map { valueType($0) })
        case .undefined: value = .ints([])
        }
        return Attribute(name: a.name, value: value)
    }

    func sparseType(_ s: Onnx_SparseTensorProto) -> TensorType {
        TensorType(ElementType(rawValue: Int(s.values.dataType)) ?? .undefined, known: s.dims.map { Int($0) })
    }

    /// Sparse initializers are kept as their values tensor under the sparse tensor's
    /// name; their dense shape is what consumers see. Rare in practice.
    mutating func sparseAsDenseDescription(_ s: Onnx_SparseTensorProto) throws -> TensorData {
        var values = try tensor(s.values)
        values.dims = [values.elementCount]
        return values
    }

    mutating func tensor(_ t: Onnx_TensorProto) throws -> TensorData {
        let name = t.name
        guard let element = ElementType(rawValue: Int(t.dataType)) else {
            throw LoadError.unsupportedTensorType(tensor: name, code: Int(t.dataType))
        }
        let dims = t.dims.map { Int($0) }
        if dims.contains(where: { $0 < 0 }) { throw LoadError.negativeDim(tensor: name, dims: dims) }
        var count = 1
        for d in dims {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            if o { throw LoadError.tensorTooLarge(tensor: name, dims: dims) }
            count = p
        }
        let storage: TensorStorage
        if t.dataLocation == .external {
            storage = try externalStorage(t, name: name)
        } else if let modelFile, let marker = RawDataStripper.decodeMarker(Array(t.unknownFields.data)) {
            guard marker.offset <= modelFile.size, marker.length <= modelFile.size - marker.offset else {
                throw LoadError.malformedProtobuf(path: modelFile.path, detail: "tensor '\(name)' payload out of range")
            }
            storage = .mapped(modelFile, offset: marker.offset, length: marker.length)
        } else if t.hasRawData {
            storage = .bytes(Array(t.rawData))
        } else {
            storage = try typedFieldStorage(t, element: element, count: count, name: name)
        }
        let data = TensorData(name: name, elementType: element, dims: dims, storage: storage)
        if element != .string {
            let expected = element.byteCount(elements: count)
            guard let expected, expected == data.byteCount else {
                throw LoadError.tensorSizeMismatch(tensor: name, dims: dims, elementType: element.description,
                                                   expectedBytes: expected ?? -1, actualBytes: data.byteCount)
            }
        } else if case .strings(let s) = storage, s.count != count {
            throw LoadError.tensorSizeMismatch(tensor: name, dims: dims, elementType: "string", expectedBytes: count, actualBytes: s.count)
        }
        return data
    }

    /// Packs ONNX's typed repeated fields into little-endian bytes.
    func typedFieldStorage(_ t: Onnx_TensorProto, element: ElementType, count: Int, name: String) throws -> TensorStorage {
        var out: [UInt8] = []
        func append<T: FixedWidthInteger>(_ v: T) {
            withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        }
        switch element {
        case .float, .complex64:
            out.reserveCapacity(t.floatData.count * 4)
            for v in t.floatData { append(v.bitPattern) }
        case .double, .complex128:
            for v in t.doubleData { append(v.bitPattern) }
        case .int64:
            for v in t.int64Data { append(v) }
        case .uint32:
            for v in t.uint64Data { append(UInt32(truncatingIfNeeded: v)) }
        case .uint64:
            for v in t.uint64Data { append(v) }
        case .int32:
            for v in t.int32Data { append(v) }
        case .int16, .uint16, .float16, .bfloat16:
            for v in t.int32Data { append(UInt16(truncatingIfNeeded: v)) }
        case .int8, .uint8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
            for v in t.int32Data { out.append(UInt8(truncatingIfNeeded: v)) }
        case .int4, .uint4, .float4e2m1, .int2, .uint2, .float6e2m3, .float6e3m2:
            // Packed sub-byte types store whole packed bytes in int32_data.
            for v in t.int32Data { out.append(UInt8(truncatingIfNeeded: v)) }
        case .string:
            return .strings(t.stringData.map { Array($0) })
        case .undefined:
            throw LoadError.unsupportedTensorType(tensor: name, code: 0)
        }
        return .bytes(out)
    }

    /// Resolves and maps an external-data tensor, refusing locations outside the model's folder.
    mutating func externalStorage(_ t: Onnx_TensorProto, name: String) throws -> TensorStorage {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in t.externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let v = Int(entry.value), v >= 0 else { throw LoadError.externalDataMalformed(tensor: name, detail: "offset '\(entry.value)' is not a non-negative integer") }
                offset = v
            case "length":
                guard let v = Int(entry.value), v >= 0 else { throw LoadError.externalDataMalformed(tensor: name, detail: "length '\(entry.value)' is not a non-negative integer") }
                length = v
            default: break
            }
        }
        guard let location, !location.isEmpty else {
            throw LoadError.externalDataMalformed(tensor: name, detail: "has no 'location'")
        }
        let path = try ExternalDataPath.resolve(location: location, folder: folder, tensor: name)
        let file: MappedFile
        if let cached = externalFiles[path] {
            file = cached
        } else {
            do {
                file = try MappedFile(path: path)
            } catch LoadError.fileNotFound {
                throw LoadError.externalDataMissing(tensor: name, path: path)
            }
            externalFiles[path] = file
        }
        let size = length ?? (file.size - min(offset, file.size))
        guard offset <= file.size, size <= file.size - offset else {
            throw LoadError.externalDataOutOfRange(tensor: name, path: path, offset: offset, length: size, fileSize: file.size)
        }
        return .mapped(file, offset: offset, length: size)
    }
}

/// External-data locations are relative to the model's folder and must stay inside it
/// (the path-traversal class of CVE-2022-25882).
enum ExternalDataPath {
    static func resolve(location: String, folder: String, tensor: String) throws -> String {
        if location.hasPrefix("/") || location.contains("\0") {
            throw LoadError.externalDataEscapes(tensor: tensor, location: location)
        }
        let components = location.split(separator: "/", omittingEmptySubsequences: true)
        if components.contains("..") || location.contains("\\") {
            throw LoadError.externalDataEscapes(tensor: tensor, location: location)
        }
        let joined = folder + "/" + location
        guard let realFolder = realPath(folder) else {
            throw LoadError.externalDataMissing(tensor: tensor, path: joined)
        }
        guard let realFile = realPath(joined) else {
            throw LoadError.externalDataMissing(tensor: tensor, path: joined)
        }
        let prefix = realFolder.hasSuffix("/") ? realFolder : realFolder + "/"
        guard realFile.hasPrefix(prefix) else {
            throw LoadError.externalDataEscapes(tensor: tensor, location: location)
        }
        return realFile
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension TensorType {
    /// A tensor type from its protobuf form. A dim with neither value nor name becomes a
    /// fresh symbol named after the value and axis (`?logits[0]`), so two unknown dims
    /// are never taken to be equal.
    init(elementCode: Int32, shape: Onnx_TensorShapeProto?, value: String) {
        let element = ElementType(rawValue: Int(elementCode)) ?? .undefined
        guard let shape else {
            self.init(element, nil)
            return
        }
        let dims: [Dim] = shape.dim.enumerated().map { axis, d in
            switch d.value {
            case .dimValue(let v)?: return .value(Int(v))
            case .dimParam(let p)? where !p.isEmpty: return .symbol(p)
            default: return .symbol("?\(value)[\(axis)]")
            }
        }
        self.init(element, dims)
    }
}
