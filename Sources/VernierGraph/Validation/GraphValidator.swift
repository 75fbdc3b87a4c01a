/// A structural problem that makes a graph unusable. Each message names the node or
/// value and what is wrong.
public enum ValidationError: Error, CustomStringConvertible, Sendable, Equatable {
    case cycle(nodes: [String])
    case undefinedInput(node: String, opType: String, input: String)
    case duplicateValue(name: String, producers: [String])
    case outputNeverProduced(graph: String, output: String)
    case emptyOpType(node: String)
    case noIRVersion
    case noOpsetImport
    case negativeDim(value: String, shape: String)

    public var description: String {
        switch self {
        case .cycle(let nodes):
            let shown = nodes.prefix(8).joined(separator: " -> ")
            return "the graph has a cycle through nodes \(shown)\(nodes.count > 8 ? " ..." : "")"
        case .undefinedInput(let n, let op, let i):
            return "node '\(n)' (\(op)) reads '\(i)', which no node, graph input or initializer defines"
        case .duplicateValue(let name, let producers):
            return "value '\(name)' is defined more than once (by \(producers.joined(separator: ", ")))"
        case .outputNeverProduced(let g, let o):
            return "graph\(g.isEmpty ? "" : " '\(g)'") output '\(o)' is never produced"
        case .emptyOpType(let n):
            return "node '\(n)' has no op type"
        case .noIRVersion:
            return "the model has no IR version (ir_version is missing or 0); the file is probably not an ONNX model"
        case .noOpsetImport:
            return "the model imports no operator set (opset_import is empty), so its ops have no defined meaning"
        case .negativeDim(let v, let s):
            return "value '\(v)' is declared with shape \(s), which has a negative dim"
        }
    }
}

/// Checks a graph's structure and returns it with nodes in topological order (ONNX
/// requires that order; files that break it but have no cycle are reordered).
public enum GraphValidator {
    public static func validate(_ model: Model) throws -> Model {
        guard model.irVersion > 0 else { throw ValidationError.noIRVersion }
        // IR 3 introduced opset imports; older files imply opset 1.
        guard !model.opsets.isEmpty || model.irVersion < 3 else { throw ValidationError.noOpsetImport }
        var m = model
        m.graph = try validate(m.graph, outerScope: [])
        return m
    }

    /// Validates `graph`, whose nodes may also read the names in `outerScope` (subgraphs).
    public static func validate(_ graph: Graph, outerScope: Set<String>) throws -> Graph {
        var producer: [String: String] = [:]
        for i in graph.inputs {
            if producer[i.name] != nil { throw ValidationError.duplicateValue(name: i.name, producers: ["graph input", "graph input"]) }
            producer[i.name] = "graph input"
        }
        for info in graph.inputs + graph.outputs + graph.valueInfo {
            if let shape = info.type?.tensorType?.shape, shape.contains(where: { ($0.intValue ?? 0) < 0 }) {
                throw ValidationError.negativeDim(value: info.name, shape: shape.shapeDescription)
            }
        }
        var initialized = Set<String>()
        for t in graph.initializers {
            if !initialized.insert(t.name).inserted {
                throw ValidationError.duplicateValue(name: t.name, producers: ["initializer", "initializer"])
            }
            // An input with an initializer is an input with a default value (IR < 4 style).
            if producer[t.name] == nil { producer[t.name] = "initializer" }
        }
        for node in graph.nodes {
            if node.opType.isEmpty { throw ValidationError.emptyOpType(node: node.displayName) }
            for o in node.outputs where !o.isEmpty {
                if let other = producer[o] {
                    throw ValidationError.duplicateValue(name: o, producers: [other, "node '\(node.displayName)'"])
                }
                producer[o] = "node '\(node.displayName)'"
            }
        }
        let available = Set(producer.keys)
        // Which node produces each value, to order the nodes.
        var producingNode: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { producingNode[o] = index }
        }
        var nodes = graph.nodes
        var dependencies = [[Int]](repeating: [], count: nodes.count)
        let innerScope = outerScope.isEmpty ? available : outerScope.union(available)
        for (index, node) in nodes.enumerated() {
            for i in node.inputs where !i.isEmpty {
                if let p = producingNode[i] {
                    dependencies[index].append(p)
                } else if !innerScope.contains(i) {
                    throw ValidationError.undefinedInput(node: node.displayName, opType: node.qualifiedOpType, input: i)
                }
            }
            // Subgraphs may read any value of this graph; they depend on its producer too.
            if !node.subgraphs.isEmpty {
                for (attribute, sub) in node.subgraphs {
                    let validated = try validate(sub, outerScope: innerScope)
                    for name in outerReads(of: validated) {
                        if let p = producingNode[name], p != index { dependencies[index].append(p) }
                    }
                    replaceSubgraph(in: &nodes[index], attribute: attribute, with: validated)
                }
            }
        }
        let order = try topologicalOrder(dependencies, names: nodes.map(\.displayName))
        var result = graph
        result.nodes = order == Array(0..<nodes.count) ? nodes : order.map { nodes[$0] }
        for o in graph.outputs where !o.name.isEmpty && producer[o.name] == nil && !outerScope.contains(o.name) {
            throw ValidationError.outputNeverProduced(graph: graph.name, output: o.name)
        }
        return result
    }

    /// Names a subgraph reads from enclosing scopes.
    public static func outerReads(of graph: Graph) -> Set<String> {
        var defined = Set(graph.inputs.map(\.name)).union(graph.initializers.map(\.name))
        var reads = Set<String>()
        for node in graph.nodes {
            for i in node.inputs where !i.isEmpty && !defined.contains(i) { reads.insert(i) }
            for (_, sub) in node.subgraphs { reads.formUnion(outerReads(of: sub).subtracting(defined)) }
            defined.formUnion(node.outputs)
        }
        for o in graph.outputs where !defined.contains(o.name) { reads.insert(o.name) }
        return reads
    }

    private static func replaceSubgraph(in node: inout Node, attribute: String, with graph: Graph) {
        guard let i = node.attributes.firstIndex(where: { $0.name == attribute }) else { return }
        if case .graph = node.attributes[i].value { node.attributes[i].value = .graph(graph) }
    }

    /// Kahn's algorithm, stable: keeps file order where it is already valid.
    static func topologicalOrder(_ dependencies: [[Int]], names: [String]) throws -> [Int] {
        let n = dependencies.count
        if dependencies.enumerated().allSatisfy({ i, deps in deps.allSatisfy { $0 < i } }) { return Array(0..<n) }
        var remaining = dependencies.map { Set($0).count }
        var dependents = [[Int]](repeating: [], count: n)
        for (i, deps) in dependencies.enumerated() { for d in Set(deps) { dependents[d].append(i) } }
        var ready = (0..<n).filter { remaining[$0] == 0 }.reversed() as [Int]
        var order: [Int] = []
        order.reserveCapacity(n)
        // A min-first stack keeps the original order when the file is already sorted.
        while let next = ready.popLast() {
            order.append(next)
            var released: [Int] = []
            for d in dependents[next] {
                remaining[d] -= 1
                if remaining[d] == 0 { released.append(d) }
            }
            ready.append(contentsOf: released)
            ready.sort(by: >)
        }
        guard order.count == n else {
            let stuck = (0..<n).filter { remaining[$0] > 0 }
            throw ValidationError.cycle(nodes: cyclePath(dependencies, among: Set(stuck)).map { names[$0] })
        }
        return order
    }

    /// One cycle among the nodes that could not be ordered, for the message.
    private static func cyclePath(_ dependencies: [[Int]], among stuck: Set<Int>) -> [Int] {
        guard var current = stuck.min() else { return [] }
        var seen: [Int: Int] = [:]
        var path: [Int] = []
        while seen[current] == nil {
            seen[current] = path.count
            path.append(current)
            guard let next = dependencies[current].first(where: stuck.contains) else { return path }
            current = next
        }
        let start = seen[current] ?? 0
        return Array(path[start...].reversed())
    }
}
