/// The type of a tensor value: its element type and shape. A nil shape means the rank
/// is not known; a dim may be symbolic.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var elementType: ElementType
    public var shape: [Dim]?

    public init(_ elementType: ElementType, _ shape: [Dim]?) {
        self.elementType = elementType
        self.shape = shape
    }

    public init(_ elementType: ElementType, known dims: [Int]) {
        self.init(elementType, dims.map(Dim.value))
    }

    public var rank: Int? { shape?.count }

    /// True when the rank and every dim are known numbers.
    public var isFullyKnown: Bool { shape?.allSatisfy(\.isConstant) ?? false }

    /// The dims as integers when every one is a known constant.
    public var concreteDims: [Int]? {
        guard let shape else { return nil }
        let known = shape.compactMap(\.intValue)
        return known.count == shape.count ? known : nil
    }

    public var description: String {
        "\(elementType)\(shape.map(\.shapeDescription) ?? "[?]")"
    }
}

/// The type of any graph value: tensors, and the container types ONNX also allows.
public indirect enum ValueType: Hashable, Sendable, CustomStringConvertible {
    case tensor(TensorType)
    case sparseTensor(TensorType)
    case sequence(ValueType?)
    case map(key: ElementType, value: ValueType?)
    case optional(ValueType?)
    case opaque(domain: String, name: String)

    public var tensorType: TensorType? {
        if case .tensor(let t) = self { return t }
        return nil
    }

    public var description: String {
        switch self {
        case .tensor(let t): return t.description
        case .sparseTensor(let t): return "sparse \(t)"
        case .sequence(let e): return "seq(\(e.map(\.description) ?? "?"))"
        case .map(let k, let v): return "map(\(k), \(v.map(\.description) ?? "?"))"
        case .optional(let e): return "optional(\(e.map(\.description) ?? "?"))"
        case .opaque(let d, let n): return "opaque(\(d).\(n))"
        }
    }
}

/// A named value with its declared type (graph inputs, outputs and `value_info`).
public struct ValueInfo: Hashable, Sendable {
    public var name: String
    public var type: ValueType?

    public init(name: String, type: ValueType?) {
        self.name = name
        self.type = type
    }
}
