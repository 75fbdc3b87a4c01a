import Foundation
import ONNXProto
import SwiftProtobuf

/// Why a model could not be written. Each message says what to change.
public enum WriteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The weights alone exceed protobuf's 2 GB message limit; external data is not written yet.
    case tooLarge(weightBytes: Int, limit: Int)
    /// The loader keeps only the names of model-local functions, so their bodies cannot be written back.
    case localFunctions(names: [String])
    /// The loader keeps only the type of sparse tensor attributes, not their values.
    case sparseTensorAttribute(node: String, attribute: String)
    /// The loader keeps only the values of sparse initializers, not their indices.
    case sparseInitializer(name: String)
    case serializationFailed(detail: String)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit):
            return "the model's weights take \(bytes) bytes, over protobuf's \(limit)-byte limit for one file; "
                + "writing weights as external data is not supported yet"
        case .localFunctions(let names):
            return "the model defines local functions (\(names.joined(separator: ", "))), which Vernier cannot write back yet"
        case .sparseTensorAttribute(let node, let attribute):
            return "node '\(node)': attribute '\(attribute)' holds a sparse tensor, which Vernier cannot write back yet"
        case .sparseInitializer(let name):
            return "initializer '\(name)' is stored sparse, which Vernier cannot write back yet"
        case .serializationFailed(let detail):
            return "cannot serialize the model: \(detail)"
        }
    }
}

/// Turns a `Model` back into ONNX: `Model` -> `Onnx_ModelProto` -> bytes. Weights are
/// written inline (`raw_data`), whether they were inline, mapped from the model file or
/// from external data, so the result is one self-contained file.
public struct ModelWriter: Sendable {
    /// Protobuf refuses messages of 2 GB or more.
    public static let protobufLimit = Int(Int32.max)

    public init() {}

    /// The serialized model. Throws `WriteError`.
    public func serialize(_ model: Model) throws -> [UInt8] {
        let proto = try self.proto(model)
        do {
            return try proto.serializedBytes()
        } catch {
            throw WriteError.serializationFailed(detail: "\(error)")
        }
    }

    /// The model as a protobuf message. Throws `WriteError`.
    public func proto(_ model: Model) throws -> Onnx_ModelProto {
        if !model.functions.isEmpty {
            throw WriteError.localFunctions(names: model.functions.map { $0.domain.isEmpty ? $0.name : "\($0.domain).\($0.name)" })
        }
        // Checked before copying anything: a 3 GB model should fail fast, not after copying 2 GB.
        let weightBytes = Self.tensorBytes(in: model.graph)
        if weightBytes >= Self.protobufLimit {
            throw WriteError.tooLarge(weightBytes: weightBytes, limit: Self.protobufLimit)
        }
        var p = Onnx_ModelProto()
        p.irVersion = Int64(model.irVersion)
        p.opsetImport = model.opsets.map { o in
            var op = Onnx_OperatorSetIdProto()
            op.domain = o.domain
            op.version = Int64(o.version)
            return op
        }
        if !model.producerName.isEmpty { p.producerName = model.producerName }
        if !model.producerVersion.isEmpty { p.producerVersion = model.producerVersion }
        if !model.domain.isEmpty { p.domain = model.domain }
        if model.modelVersion != 0 { p.modelVersion = Int64(model.modelVersion) }
        if !model.docString.isEmpty { p.docString = model.docString }
        // The IR keeps metadata as a dictionary; sorted keys make the output deterministic.
        p.metadataProps = model.metadata.sorted { $0.key < $1.key }.map { entry in
            var e = Onnx_StringStringEntryProto()
            e.key = entry.key
            e.value = entry.value
            return e
        }
        p.graph = try graph(model.graph)
        return p
    }

    /// Bytes of every tensor payload in the graph, its subgraphs and tensor attributes.
    static func tensorBytes(in graph: Graph) -> Int {
        var total = graph.initializers.reduce(0) { $0 + $1.byteCount }
        for node in graph.nodes {
            for a in node.attributes {
                switch a.value {
                case .tensor(let t): total += t.byteCount
                case .tensors(let ts): total += ts.reduce(0) { $0 + $1.byteCount }
                case .graph(let g): total += tensorBytes(in: g)
                case .graphs(let gs): total += gs.reduce(0) { $0 + tensorBytes(in: $1) }
                default: break
                }
            }
        }
        return total
    }

    func graph(_ g: Graph) throws -> Onnx_GraphProto {
        if let sparse = g.sparseInitializerNames.first { throw WriteError.sparseInitializer(name: sparse) }
        var p = Onnx_GraphProto()
        p.name = g.name
        p.node = try g.nodes.map(node)
        p.input = g.inputs.map(valueInfo)
        p.output = g.outputs.map(valueInfo)
        p.valueInfo = g.valueInfo.map(valueInfo)
        p.initializer = g.initializers.map(tensor)
        return p
    }

    func node(_ n: Node) throws -> Onnx_NodeProto {
        var p = Onnx_NodeProto()
        // `name`, not `displayName`: the generated names are Vernier's, not the file's.
        if !n.name.isEmpty { p.name = n.name }
        p.opType = n.opType
        if !n.domain.isEmpty { p.domain = n.domain }
        p.input = n.inputs
        p.output = n.outputs
        p.attribute = try n.attributes.map { try attribute($0, node: n.displayName) }
        return p
    }

    func attribute(_ a: Attribute, node: String) throws -> Onnx_AttributeProto {
        var p = Onnx_AttributeProto()
        p.name = a.name
        switch a.value {
        case .float(let v): p.type = .float; p.f = v
        case .int(let v): p.type = .int; p.i = Int64(v)
        case .string(let v): p.type = .string; p.s = Data(v.utf8)
        case .tensor(let t): p.type = .tensor; p.t = tensor(t)
        case .graph(let g): p.type = .graph; p.g = try graph(g)
        case .type(let t): p.type = .typeProto; p.tp = typeProto(t)
        case .floats(let v): p.type = .floats; p.floats = v
        case .ints(let v): p.type = .ints; p.ints = v.map { Int64($0) }
        case .strings(let v): p.type = .strings; p.strings = v.map { Data($0.utf8) }
        case .tensors(let ts): p.type = .tensors; p.tensors = ts.map(tensor)
        case .graphs(let gs): p.type = .graphs; p.graphs = try gs.map(graph)
        case .types(let ts): p.type = .typeProtos; p.typeProtos = ts.map(typeProto)
        case .sparseTensor, .sparseTensors:
            throw WriteError.sparseTensorAttribute(node: node, attribute: a.name)
        case .reference(let r): p.refAttrName = r
        }
        return p
    }

    func tensor(_ t: TensorData) -> Onnx_TensorProto {
        var p = Onnx_TensorProto()
        if !t.name.isEmpty { p.name = t.name }
        p.dataType = Int32(t.elementType.rawValue)
        p.dims = t.dims.map { Int64($0) }
        switch t.storage {
        case .strings(let s): p.stringData = s.map { Data($0) }
        case .bytes, .mapped: p.rawData = t.withUnsafeBytes { Data($0) }
        }
        return p
    }

    func valueInfo(_ v: ValueInfo) -> Onnx_ValueInfoProto {
        var p = Onnx_ValueInfoProto()
        p.name = v.name
        if let type = v.type { p.type = typeProto(type) }
        return p
    }

    func typeProto(_ t: ValueType?) -> Onnx_TypeProto {
        var p = Onnx_TypeProto()
        switch t {
        case .tensor(let tt)?: p.tensorType = tensorType(tt)
        case .sparseTensor(let tt)?:
            var s = Onnx_TypeProto.SparseTensor()
            s.elemType = Int32(tt.elementType.rawValue)
            if let shape = tt.shape { s.shape = Self.shapeProto(shape) }
            p.sparseTensorType = s
        case .sequence(let e)?:
            var s = Onnx_TypeProto.Sequence()
            if let e { s.elemType = typeProto(e) }
            p.sequenceType = s
        case .map(let key, let value)?:
            var m = Onnx_TypeProto.Map()
            m.keyType = Int32(key.rawValue)
            if let value { m.valueType = typeProto(value) }
            p.mapType = m
        case .optional(let e)?:
            var o = Onnx_TypeProto.Optional()
            if let e { o.elemType = typeProto(e) }
            p.optionalType = o
        case .opaque(let domain, let name)?:
            var o = Onnx_TypeProto.Opaque()
            o.domain = domain
            o.name = name
            p.opaqueType = o
        case nil: break
        }
        return p
    }

    func tensorType(_ t: TensorType) -> Onnx_TypeProto.Tensor {
        var p = Onnx_TypeProto.Tensor()
        p.elemType = Int32(t.elementType.rawValue)
        if let shape = t.shape { p.shape = Self.shapeProto(shape) }
        return p
    }

    /// Known dims become `dim_value`, named ones `dim_param`. The loader names a dim the
    /// file left blank `?value[axis]`; it is written blank again. A polynomial dim
    /// (`2*seq`) has no ONNX spelling and is written as a `dim_param` of its text.
    static func shapeProto(_ dims: [Dim]) -> Onnx_TensorShapeProto {
        var p = Onnx_TensorShapeProto()
        p.dim = dims.map { d in
            var pd = Onnx_TensorShapeProto.Dimension()
            if let v = d.intValue {
                pd.dimValue = Int64(v)
            } else if d.symbols.count == 1, let s = d.symbols.first, d == Dim.symbol(s) {
                if !s.hasPrefix("?") { pd.dimParam = s }
            } else {
                pd.dimParam = d.description
            }
            return pd
        }
        return p
    }
}
