/// A node attribute's value, one case per ONNX `AttributeType`.
public indirect enum AttributeValue: Sendable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(TensorData)
    case graph(Graph)
    case sparseTensor(TensorType)
    case type(ValueType?)
    case floats([Float])
    case ints([Int])
    case strings([String])
    case tensors([TensorData])
    case graphs([Graph])
    case sparseTensors([TensorType])
    case types([ValueType?])
    /// Inside a function body: refers to the caller's attribute of that name.
    case reference(String)

    /// The ONNX name of the kind (`INT`, `FLOATS`, ...), for error messages.
    public var kindName: String {
        switch self {
        case .float: return "FLOAT"
        case .int: return "INT"
        case .string: return "STRING"
        case .tensor: return "TENSOR"
        case .graph: return "GRAPH"
        case .sparseTensor: return "SPARSE_TENSOR"
        case .type: return "TYPE_PROTO"
        case .floats: return "FLOATS"
        case .ints: return "INTS"
        case .strings: return "STRINGS"
        case .tensors: return "TENSORS"
        case .graphs: return "GRAPHS"
        case .sparseTensors: return "SPARSE_TENSORS"
        case .types: return "TYPE_PROTOS"
        case .reference(let r): return "reference to '\(r)'"
        }
    }
}

/// A named attribute of a node.
public struct Attribute: Sendable {
    public var name: String
    public var value: AttributeValue

    public init(name: String, value: AttributeValue) {
        self.name = name
        self.value = value
    }
}

/// An attribute that is missing or has the wrong kind; the message names the node.
public struct AttributeError: Error, CustomStringConvertible, Sendable {
    public var node: String
    public var opType: String
    public var attribute: String
    public var problem: String

    public var description: String {
        "node '\(node)' (\(opType)): attribute '\(attribute)' \(problem)"
    }
}

extension Node {
    /// The attribute named `name`, if present.
    public func attribute(_ name: String) -> AttributeValue? {
        attributes.first { $0.name == name }?.value
    }

    public func hasAttribute(_ name: String) -> Bool { attribute(name) != nil }

    private func wrongKind(_ name: String, _ expected: String, _ found: AttributeValue) -> AttributeError {
        AttributeError(node: name_, opType: opType, attribute: name, problem: "should be \(expected), found \(found.kindName)")
    }

    private var name_: String { displayName }

    /// An INT attribute, or `defaultValue` when absent.
    public func int(_ name: String, default defaultValue: Int? = nil) throws -> Int {
        switch attribute(name) {
        case .int(let v)?: return v
        case nil:
            if let defaultValue { return defaultValue }
            throw AttributeError(node: displayName, opType: opType, attribute: name, problem: "is required but missing")
        case let other?: throw wrongKind(name, "INT", other)
        }
    }

    public func float(_ name: String, default defaultValue: Float? = nil) throws -> Float {
        switch attribute(name) {
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        case nil:
            if let defaultValue { return defaultValue }
            throw AttributeError(node: displayName, opType: opType, attribute: name, problem: "is required but missing")
        case let other?: throw wrongKind(name, "FLOAT", other)
        }
    }

    public func string(_ name: String, default defaultValue: String? = nil) throws -> String {
        switch attribute(name) {
        case .string(let v)?: return v
        case nil:
            if let defaultValue { return defaultValue }
            throw AttributeError(node: displayName, opType: opType, attribute: name, problem: "is required but missing")
        case let other?: throw wrongKind(name, "STRING", other)
        }
    }

    /// An INTS attribute; nil when absent.
    public func ints(_ name: String) throws -> [Int]? {
        switch attribute(name) {
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        case nil: return nil
        case let other?: throw wrongKind(name, "INTS", other)
        }
    }

    public func floats(_ name: String) throws -> [Float]? {
        switch attribute(name) {
        case .floats(let v)?: return v
        case .float(let v)?: return [v]
        case nil: return nil
        case let other?: throw wrongKind(name, "FLOATS", other)
        }
    }

    public func strings(_ name: String) throws -> [String]? {
        switch attribute(name) {
        case .strings(let v)?: return v
        case nil: return nil
        case let other?: throw wrongKind(name, "STRINGS", other)
        }
    }

    public func tensor(_ name: String) throws -> TensorData? {
        switch attribute(name) {
        case .tensor(let v)?: return v
        case nil: return nil
        case let other?: throw wrongKind(name, "TENSOR", other)
        }
    }

    public func graph(_ name: String) throws -> Graph? {
        switch attribute(name) {
        case .graph(let v)?: return v
        case nil: return nil
        case let other?: throw wrongKind(name, "GRAPH", other)
        }
    }

    /// Every subgraph held in attributes (If branches, Loop/Scan bodies), with the attribute name.
    public var subgraphs: [(attribute: String, graph: Graph)] {
        attributes.flatMap { a -> [(String, Graph)] in
            switch a.value {
            case .graph(let g): return [(a.name, g)]
            case .graphs(let gs): return gs.map { (a.name, $0) }
            default: return []
            }
        }
    }
}
