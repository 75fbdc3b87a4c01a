/// A small tensor whose contents inference knows: shape-computing chains
/// (Shape -> Gather -> Concat -> Reshape) and constant inputs such as Resize scales.
public enum ConstantValue: Hashable, Sendable {
    /// Integer (and bool) elements, each possibly symbolic (a dim taken by Shape).
    case ints([Dim])
    /// Floating-point elements.
    case floats([Double])

    public var count: Int {
        switch self {
        case .ints(let v): return v.count
        case .floats(let v): return v.count
        }
    }

    /// Elements as dims; floats are truncated toward zero.
    public var dims: [Dim] {
        switch self {
        case .ints(let v): return v
        case .floats(let v): return v.map { .value(Int($0)) }
        }
    }

    /// Elements as known integers; nil if any is symbolic.
    public var knownInts: [Int]? {
        switch self {
        case .ints(let v):
            var out: [Int] = []
            out.reserveCapacity(v.count)
            for d in v { guard let x = d.intValue else { return nil }; out.append(x) }
            return out
        case .floats(let v): return v.map { Int($0) }
        }
    }

    /// Elements as doubles; nil if any is symbolic.
    public var doubles: [Double]? {
        switch self {
        case .ints: return knownInts?.map(Double.init)
        case .floats(let v): return v
        }
    }
}

/// What shape inference knows about one value.
public struct ValueFacts: Hashable, Sendable {
    /// nil when not a tensor or not inferred.
    public var type: TensorType?
    /// Set for small tensors whose contents are known.
    public var constant: ConstantValue?

    public init(type: TensorType?, constant: ConstantValue? = nil) {
        self.type = type
        self.constant = constant
    }

    public static let unknown = ValueFacts(type: nil)
}

/// A problem inference met at one node. None is fatal: the node's outputs stay unknown.
public struct ShapeIssue: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// No shape rule of ours, and libonnx did not know the op either.
        case unknownOp = "unknown op"
        /// libonnx inferred the outputs (no rule of ours).
        case inferredByLibONNX = "inferred by libonnx"
        /// The rule found the inputs inconsistent or an attribute malformed.
        case invalid = "invalid"
        /// An input's shape was unknown, so the outputs are too.
        case incomplete = "incomplete"
    }

    public var node: String
    public var opType: String
    public var kind: Kind
    public var message: String

    public var description: String { "node '\(node)' (\(opType)): \(kind.rawValue): \(message)" }
}

/// Inconsistent inputs or attributes, thrown by a shape rule.
public struct ShapeError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
