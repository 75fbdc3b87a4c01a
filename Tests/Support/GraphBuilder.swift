import VernierGraph

/// Builds small in-memory models for tests, without files.
public struct GraphBuilder {
    public var nodes: [Node] = []
    public var inputs: [ValueInfo] = []
    public var outputs: [ValueInfo] = []
    public var initializers: [TensorData] = []
    public var opset = 17

    public init() {}

    public mutating func input(_ name: String, _ element: ElementType = .float, _ dims: [Dim]) {
        inputs.append(ValueInfo(name: name, type: .tensor(TensorType(element, dims))))
    }

    public mutating func output(_ name: String) { outputs.append(ValueInfo(name: name, type: nil)) }

    public mutating func weight(_ name: String, _ dims: [Int], element: ElementType = .float) {
        let count = dims.reduce(1, *)
        initializers.append(TensorData(name: name, elementType: element, dims: dims,
                                       storage: .bytes([UInt8](repeating: 0, count: count * (element.bitWidth ?? 8) / 8))))
    }

    public mutating func ints(_ name: String, _ values: [Int]) {
        var bytes: [UInt8] = []
        for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) } }
        initializers.append(TensorData(name: name, elementType: .int64, dims: [values.count], storage: .bytes(bytes)))
    }

    public mutating func floats(_ name: String, _ values: [Float]) {
        initializers.append(TensorData(floats: values, name: name, dims: [values.count]))
    }

    public mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], _ attributes: [String: AttributeValue] = [:]) {
        nodes.append(Node(name: outputs.first ?? op, opType: op, inputs: inputs, outputs: outputs,
                          attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) }))
    }

    public var graph: Graph { Graph(name: "test", nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers) }
    public var model: Model { Model(irVersion: 8, opsets: [OpsetImport(domain: "", version: opset)], graph: graph) }

    public func infer(_ options: InferenceOptions = InferenceOptions()) throws -> InferredGraph {
        try ShapeInference(options: options).infer(try GraphValidator.validate(model))
    }
}
