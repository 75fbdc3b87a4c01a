/// What a shape rule sees of one node: its inputs' facts, attributes and opset.
public struct RuleContext {
    public let node: Node
    /// Facts for each input position; `.unknown` for omitted optional inputs.
    public let inputs: [ValueFacts]
    /// Version of the node's domain that the model imports.
    public let opset: Int
    /// Infers a subgraph (If/Loop/Scan) with the given input facts; returns its output facts.
    let inferSubgraph: (_ attribute: String, _ graph: Graph, _ inputs: [ValueFacts]) throws -> [ValueFacts]

    /// Number of inputs present in the node (trailing omitted ones included).
    public var inputCount: Int { node.inputs.count }

    public func hasInput(_ i: Int) -> Bool { node.input(i) != nil }

    /// The input's type; throws `Incomplete` when unknown, which marks the node's
    /// outputs unknown without calling it an error.
    public func type(_ i: Int) throws -> TensorType {
        guard i < inputs.count, let t = inputs[i].type else { throw Incomplete(input: i) }
        return t
    }

    /// The input's shape; throws `Incomplete` when the rank is unknown.
    public func shape(_ i: Int) throws -> [Dim] {
        guard let s = try type(i).shape else { throw Incomplete(input: i) }
        return s
    }

    public func elementType(_ i: Int) throws -> ElementType { try type(i).elementType }

    /// The input's rank.
    public func rank(_ i: Int) throws -> Int { try shape(i).count }

    /// The input's contents when known (constants and shape chains).
    public func constant(_ i: Int) -> ConstantValue? {
        i < inputs.count && hasInput(i) ? inputs[i].constant : nil
    }

    /// The input's contents as dims, or throws `Incomplete` when not known.
    public func requireDims(_ i: Int) throws -> [Dim] {
        guard let c = constant(i) else { throw Incomplete(input: i, needsValue: true) }
        return c.dims
    }

    /// The input's contents as known integers, or throws `Incomplete`.
    public func requireInts(_ i: Int) throws -> [Int] {
        guard let c = constant(i)?.knownInts else { throw Incomplete(input: i, needsValue: true) }
        return c
    }

    /// Normalizes a possibly negative axis (counted from the end, -1 the last) against
    /// `rank`, or throws. `allowEnd` also accepts `rank` itself (Flatten's axis).
    public func axis(_ axis: Int, rank: Int, allowEnd: Bool = false) throws -> Int {
        let limit = allowEnd ? rank + 1 : rank
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < limit else {
            throw ShapeError("axis \(axis) is out of range for rank \(rank)")
        }
        return a
    }

    /// Axes for ops whose `axes` moved from an attribute to an input at `sinceOpset`.
    /// nil when neither is given.
    public func axesAttributeOrInput(inputIndex: Int, sinceOpset: Int) throws -> [Int]? {
        if opset >= sinceOpset {
            guard hasInput(inputIndex) else { return nil }
            return try requireInts(inputIndex)
        }
        return try node.ints("axes")
    }

    public func runSubgraph(_ attribute: String, inputs: [ValueFacts]) throws -> [ValueFacts] {
        guard let g = try node.graph(attribute) else {
            throw ShapeError("attribute '\(attribute)' (a subgraph) is missing")
        }
        return try inferSubgraph(attribute, g, inputs)
    }
}

/// An input's shape or value is unknown, so the outputs cannot be inferred. Not an error.
public struct Incomplete: Error {
    public var input: Int
    public var needsValue = false
}

/// One op's shape rule: from the inputs' facts to each output's facts.
public typealias ShapeRule = (RuleContext) throws -> [ValueFacts]

extension ValueFacts {
    /// A tensor of the given element type and shape.
    public static func tensor(_ element: ElementType, _ shape: [Dim], constant: ConstantValue? = nil) -> ValueFacts {
        ValueFacts(type: TensorType(element, shape), constant: constant)
    }
}
