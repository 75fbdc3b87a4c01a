/// Settings for shape inference.
public struct InferenceOptions: Sendable {
    /// `--input NAME=1x3x224x224`: replaces a graph input's dims.
    public var inputShapes: [String: [Int]] = [:]
    /// `--dim SYMBOL=N`: binds a symbolic dim everywhere.
    public var dimBindings: [String: Int] = [:]
    /// Known contents of runtime inputs (e.g. from an input-data file), which let
    /// value-dependent rules (Reshape's shape, Reduce axes) resolve.
    public var inputValues: [String: ConstantValue] = [:]
    /// Largest element count a value may have (default 2^34).
    public var maxElements: Int = 1 << 34
    /// Constants with at most this many elements are propagated (shape chains, scales).
    public var constantElementLimit: Int = 1 << 16
    /// Deepest nesting of subgraphs inferred.
    public var maxSubgraphDepth: Int = 32

    public init() {}
}

/// A fatal problem with the user's bindings or with the model's sizes.
public enum InferenceError: Error, CustomStringConvertible, Sendable, Equatable {
    case unknownInput(name: String, available: [String])
    case inputRankMismatch(name: String, declared: Int, given: Int)
    case unknownSymbol(name: String, available: [String])
    case tooManyElements(node: String, value: String, shape: String, limit: Int)
    case subgraphsTooDeep(limit: Int)
    case conflictingBinding(symbol: String, first: Int, second: Int)

    public var description: String {
        switch self {
        case .unknownInput(let n, let a):
            return "--input names '\(n)', which is not a graph input; inputs are: \(a.joined(separator: ", "))"
        case .inputRankMismatch(let n, let d, let g):
            return "--input \(n): the model declares rank \(d) but \(g) dims were given"
        case .unknownSymbol(let n, let a):
            return "--dim names '\(n)', which no input uses; symbols are: \(a.isEmpty ? "(none)" : a.joined(separator: ", "))"
        case .tooManyElements(let node, let v, let s, let l):
            return "node '\(node)': value '\(v)' would have shape \(s), more than the limit of \(l) elements"
        case .subgraphsTooDeep(let l):
            return "subgraphs nest more than \(l) levels deep"
        case .conflictingBinding(let s, let a, let b):
            return "dim '\(s)' is bound to both \(a) and \(b) (by --dim and --input); give it one value"
        }
    }
}

/// Shapes of every value of a graph, with the issues met on the way.
public struct InferredGraph: Sendable {
    public var graph: Graph
    /// Facts for every value: inputs, initializers, node outputs.
    public var facts: [String: ValueFacts]
    public var issues: [ShapeIssue]
    /// Inferred subgraphs by owning node's display name, then attribute name
    /// (several for attributes holding graph lists, in order).
    public var subgraphs: [String: [String: [InferredGraph]]]

    public init(graph: Graph, facts: [String: ValueFacts], issues: [ShapeIssue] = [],
                subgraphs: [String: [String: [InferredGraph]]] = [:]) {
        self.graph = graph
        self.facts = facts
        self.issues = issues
        self.subgraphs = subgraphs
    }

    /// The type of `name`, if inferred.
    public func type(of name: String) -> TensorType? { facts[name]?.type }

    /// Input types of a node, in input order (nil for omitted or unknown).
    public func inputTypes(of node: Node) -> [TensorType?] {
        node.inputs.map { $0.isEmpty ? nil : facts[$0]?.type }
    }

    public func outputTypes(of node: Node) -> [TensorType?] {
        node.outputs.map { $0.isEmpty ? nil : facts[$0]?.type }
    }

    /// Symbols left unbound anywhere in the graph's value shapes.
    public var unboundSymbols: [String] {
        var set = Set<String>()
        for f in facts.values { for d in f.type?.shape ?? [] { set.formUnion(d.symbols) } }
        return set.sorted()
    }
}

/// Infers the shape of every value, using our rule for each op (`ShapeRules`), and
/// propagating small integer constants so that exporter-style shape chains give
/// concrete shapes. Ops without a rule get the shapes libonnx inferred, when given.
public struct ShapeInference {
    public var options: InferenceOptions
    /// Output types libonnx inferred, by value name; used for ops without a rule.
    public var fallbackTypes: [String: TensorType]

    public init(options: InferenceOptions = InferenceOptions(), fallbackTypes: [String: TensorType] = [:]) {
        self.options = options
        self.fallbackTypes = fallbackTypes
    }

    /// Infers the model's top-level graph (and its subgraphs).
    public func infer(_ model: Model) throws -> InferredGraph {
        let graph = model.graph
        let declared = Dictionary(graph.runtimeInputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, dims) in options.inputShapes {
            guard let info = declared[name] else {
                throw InferenceError.unknownInput(name: name, available: graph.runtimeInputs.map(\.name))
            }
            if let rank = info.type?.tensorType?.rank, rank != dims.count {
                throw InferenceError.inputRankMismatch(name: name, declared: rank, given: dims.count)
            }
        }
        let inputSymbols = Set(graph.runtimeInputs.flatMap { $0.type?.tensorType?.shape?.flatMap(\.symbols) ?? [] })
        for symbol in options.dimBindings.keys where !inputSymbols.contains(symbol) {
            throw InferenceError.unknownSymbol(name: symbol, available: inputSymbols.sorted())
        }
        // `--input x=1x16` on an input declared [batch, seq] also binds batch and seq
        // everywhere else, as a user expects; a clash with another binding is an error.
        var resolved = self
        for input in graph.runtimeInputs {
            guard let dims = options.inputShapes[input.name], let declared = input.type?.tensorType?.shape else { continue }
            for (d, v) in zip(declared, dims) where d.terms.count == 1 && d.terms.values.first == 1 {
                guard let symbol = d.symbols.first, d == .symbol(symbol) else { continue }
                if let bound = resolved.options.dimBindings[symbol], bound != v {
                    throw InferenceError.conflictingBinding(symbol: symbol, first: bound, second: v)
                }
                resolved.options.dimBindings[symbol] = v
            }
        }
        var initial: [String: ValueFacts] = [:]
        for input in graph.runtimeInputs {
            var type = input.type?.tensorType
            if let dims = options.inputShapes[input.name] {
                type = TensorType(type?.elementType ?? .float, known: dims)
            }
            initial[input.name] = ValueFacts(type: type.map(resolved.bind), constant: options.inputValues[input.name])
        }
        return try resolved.inferGraph(graph, scope: initial, opsets: model.opsets, depth: 0)
    }

    private func bind(_ type: TensorType) -> TensorType {
        guard !options.dimBindings.isEmpty, let shape = type.shape else { return type }
        return TensorType(type.elementType, shape.map { $0.substituting(options.dimBindings) })
    }

    /// Facts of a known tensor (initializer or Constant value), with its contents when small.
    func facts(of tensor: TensorData) -> ValueFacts {
        var constant: ConstantValue?
        if tensor.elementCount <= options.constantElementLimit {
            if tensor.elementType.isInteger || tensor.elementType == .bool {
                constant = tensor.integerValues().map { .ints($0.map(Dim.value)) }
            } else if tensor.elementType.isFloatingPoint {
                constant = tensor.doubleValues().map(ConstantValue.floats)
            }
        }
        return ValueFacts(type: tensor.type, constant: constant)
    }

    func inferGraph(_ graph: Graph, scope: [String: ValueFacts], opsets: [OpsetImport], depth: Int) throws -> InferredGraph {
        guard depth <= options.maxSubgraphDepth else { throw InferenceError.subgraphsTooDeep(limit: options.maxSubgraphDepth) }
        var facts = scope
        for t in graph.initializers { facts[t.name] = self.facts(of: t) }
        // Subgraph inputs not fed by the caller keep their declared types.
        for input in graph.inputs where facts[input.name] == nil {
            facts[input.name] = ValueFacts(type: input.type?.tensorType.map(bind))
        }
        var issues: [ShapeIssue] = []
        var subgraphs: [String: [String: [InferredGraph]]] = [:]
        let opsetByDomain = Dictionary(opsets.map { ($0.domain == "ai.onnx" ? "" : $0.domain, $0.version) }, uniquingKeysWith: max)

        for node in graph.nodes {
            let inputs = node.inputs.map { $0.isEmpty ? ValueFacts.unknown : (facts[$0] ?? .unknown) }
            let domainKey = node.isDefaultDomain ? "" : node.domain
            let opset = opsetByDomain[domainKey] ?? (node.isDefaultDomain ? 1 : 1)
            // Only nodes with subgraphs need the scope; capturing it for every node would
            // copy the whole dictionary on the next write.
            let currentFacts = node.attributes.contains(where: { if case .graph = $0.value { return true }; if case .graphs = $0.value { return true }; return false }) ? facts : [:]
            let context = RuleContext(node: node, inputs: inputs, opset: opset) { attribute, subgraph, subInputs in
                var subScope = currentFacts
                for (info, f) in zip(subgraph.inputs, subInputs) { subScope[info.name] = f }
                let inferred = try self.inferGraph(subgraph, scope: subScope, opsets: opsets, depth: depth + 1)
                subgraphs[node.displayName, default: [:]][attribute, default: []].append(inferred)
                return subgraph.outputs.map { inferred.facts[$0.name] ?? .unknown }
            }
            var outputs: [ValueFacts] = []
            let rule = node.isDefaultDomain ? ShapeRules.rule(for: node.opType) : ShapeRules.customRule(domain: node.domain, op: node.opType)
            if let rule {
                do {
                    outputs = try rule(context)
                } catch let incomplete as Incomplete {
                    let what = incomplete.needsValue ? "value" : "shape"
                    let name = incomplete.input < node.inputs.count ? node.inputs[incomplete.input] : "#\(incomplete.input)"
                    issues.append(ShapeIssue(node: node.displayName, opType: node.qualifiedOpType, kind: .incomplete,
                                             message: "the \(what) of input '\(name)' is not known"))
                } catch let error as InferenceError {
                    throw error
                } catch {
                    issues.append(ShapeIssue(node: node.displayName, opType: node.qualifiedOpType, kind: .invalid, message: "\(error)"))
                }
            } else {
                let fromLibONNX = node.outputs.map { fallbackTypes[$0] }
                if fromLibONNX.contains(where: { $0 != nil }) {
                    outputs = fromLibONNX.map { ValueFacts(type: $0.map(bind)) }
                    issues.append(ShapeIssue(node: node.displayName, opType: node.qualifiedOpType, kind: .inferredByLibONNX,
                                             message: "no Vernier shape rule; shapes from libonnx"))
                } else {
                    issues.append(ShapeIssue(node: node.displayName, opType: node.qualifiedOpType, kind: .unknownOp,
                                             message: "no shape rule for this op; its outputs are unknown"))
                }
            }
            for (i, name) in node.outputs.enumerated() where !name.isEmpty {
                var f = i < outputs.count ? outputs[i] : .unknown
                if let shape = f.type?.shape {
                    if let limitError = elementLimitError(shape, node: node, value: name) { throw limitError }
                    if f.constant != nil, let n = shape.knownElementCount, n > options.constantElementLimit { f.constant = nil }
                }
                facts[name] = f
            }
        }
        return InferredGraph(graph: graph, facts: facts, issues: issues, subgraphs: subgraphs)
    }

    private func elementLimitError(_ shape: [Dim], node: Node, value: String) -> InferenceError? {
        var total = 1
        for d in shape {
            guard let v = d.intValue else { return nil }
            guard v >= 0 else { continue }
            let (p, o) = total.multipliedReportingOverflow(by: v)
            if o || p > options.maxElements {
                return .tooManyElements(node: node.displayName, value: value, shape: shape.shapeDescription, limit: options.maxElements)
            }
            total = p
        }
        return nil
    }
}
