/// One operator application.
public struct Node: Sendable {
    /// The name in the file; may be empty.
    public var name: String
    /// `name`, or a generated `<OpType>_<index>` when the file left it empty, unique in its graph.
    public var displayName: String
    public var opType: String
    /// Operator domain; "" is the default ONNX domain (`ai.onnx`).
    public var domain: String
    /// Input value names in order; "" marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [Attribute]
    /// Display names of the original nodes this one stands for after graph passes (a
    /// Conv with its folded BatchNormalization and fused Relu); empty means itself.
    public var sourceNodes: [String] = []

    public init(name: String, displayName: String? = nil, opType: String, domain: String = "",
                inputs: [String], outputs: [String], attributes: [Attribute] = []) {
        self.name = name
        self.displayName = displayName ?? name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// True for the default ONNX domain (spelled "" or "ai.onnx").
    public var isDefaultDomain: Bool { domain.isEmpty || domain == "ai.onnx" }

    /// `Conv`, or `com.microsoft.FusedConv` for custom domains.
    public var qualifiedOpType: String { isDefaultDomain ? opType : "\(domain).\(opType)" }

    /// The original nodes this node stands for: `sourceNodes`, or itself.
    public var originalNodes: [String] { sourceNodes.isEmpty ? [displayName] : sourceNodes }

    /// The input name at `index`, or nil when absent or omitted.
    public func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }
}

/// A computation graph: the top-level graph or a subgraph (If branch, Loop/Scan body).
public struct Graph: Sendable {
    public var name: String
    /// Nodes in file order (ONNX requires topological order; validation checks it).
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [TensorData]
    /// Types the file declares for intermediate values.
    public var valueInfo: [ValueInfo]
    /// Names of initializers that were sparse in the file; `initializers` holds only their
    /// values, so they cannot be written back.
    public var sparseInitializerNames: [String] = []

    public init(name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                initializers: [TensorData] = [], valueInfo: [ValueInfo] = []) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.valueInfo = valueInfo
    }

    /// Graph inputs that are not initializers: what a caller must feed.
    public var runtimeInputs: [ValueInfo] {
        let initialized = Set(initializers.map(\.name))
        return inputs.filter { !initialized.contains($0.name) }
    }

    /// Initializers by name.
    public var initializerIndex: [String: TensorData] {
        Dictionary(initializers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// An operator set the model imports.
public struct OpsetImport: Hashable, Sendable {
    /// "" for the default ONNX domain.
    public var domain: String
    public var version: Int

    public init(domain: String, version: Int) {
        self.domain = domain
        self.version = version
    }
}

/// A model-local function (ONNX `FunctionProto`), kept so its name can be shown.
public struct FunctionInfo: Sendable {
    public var domain: String
    public var name: String
    public var nodeCount: Int
}

/// A loaded ONNX model.
public struct Model: Sendable {
    public var irVersion: Int
    public var opsets: [OpsetImport]
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int
    public var docString: String
    public var metadata: [String: String]
    public var graph: Graph
    public var functions: [FunctionInfo]
    /// The file it came from, when loaded from disk.
    public var path: String?
    /// Size of the model file plus external-data files, in bytes.
    public var fileBytes: Int
    /// Number of external-data files the weights come from.
    public var externalDataFiles: Int = 0

    public init(irVersion: Int, opsets: [OpsetImport], producerName: String = "", producerVersion: String = "",
                domain: String = "", modelVersion: Int = 0, docString: String = "", metadata: [String: String] = [:],
                graph: Graph, functions: [FunctionInfo] = [], path: String? = nil, fileBytes: Int = 0) {
        self.irVersion = irVersion
        self.opsets = opsets
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.metadata = metadata
        self.graph = graph
        self.functions = functions
        self.path = path
        self.fileBytes = fileBytes
    }

    /// The imported version of the default ONNX domain.
    public var defaultOpset: Int {
        opsets.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 1
    }

    /// The imported version of `domain`, if imported.
    public func opset(for domain: String) -> Int? {
        if domain.isEmpty || domain == "ai.onnx" { return defaultOpset }
        return opsets.first { $0.domain == domain }?.version
    }
}
