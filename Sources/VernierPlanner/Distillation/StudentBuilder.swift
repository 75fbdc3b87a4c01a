import VernierGraph

/// How small the student is, relative to its teacher.
public struct StudentOptions: Sendable {
    /// Share of each prunable channel group's channels kept, in (0, 1].
    public var width: Double = 1
    /// Share of each stage's repeated blocks kept, in (0, 1].
    public var depth: Double = 1
    /// Keep a multiple of this many channels per group.
    public var roundTo: Int = 1

    public init(width: Double = 1, depth: Double = 1, roundTo: Int = 1) {
        self.width = width
        self.depth = depth
        self.roundTo = roundTo
    }
}

/// Why a student could not be built.
public enum DistillationError: Error, CustomStringConvertible, Sendable, Equatable {
    case badFactor(name: String, value: Double)
    case outputChanged(output: String, before: String, after: String)

    public var description: String {
        switch self {
        case .badFactor(let name, let value):
            return "--\(name) must be more than 0 and at most 1, not \(value)"
        case .outputChanged(let output, let before, let after):
            return "removing blocks changed graph output '\(output)' from \(before) to \(after); "
                + "this is a bug in the block detection, please report it"
        }
    }
}

/// One stage's fate under the depth factor.
public struct StageOutcome: Sendable {
    public var stage: BlockStage
    /// Units kept, in order; the rest (the later ones) were removed.
    public var keptUnits: Int
    public var droppedUnits: [DepthUnit] { Array(stage.units.dropFirst(keptUnits)) }
}

/// A student model, validated and shape-inferred, with what was removed.
public struct StudentModel: Sendable {
    public var analyzed: AnalyzedModel
    public var stages: [StageOutcome]
    /// The channel groups as pruned (empty when the width is 1).
    public var groups: [GroupOutcome]
}

/// Builds a student from the teacher's own structure: fewer repeated blocks (depth) and
/// fewer channels (width), its weights the teacher's, sliced.
public enum StudentBuilder {
    /// Units a stage keeps: `depth` of its units, counting an opening transition block
    /// (which always stays) as one, rounded to nearest, and at least one block per stage.
    public static func keptUnits(of stage: BlockStage, depth: Double) -> Int {
        let opening = stage.opensWithTransition ? 1 : 0
        let total = stage.units.count + opening
        let keepTotal = max(1, Int((depth * Double(total)).rounded()))
        return min(stage.units.count, max(1 - opening, keepTotal - opening))
    }

    /// The student of `teacher`. `analyzer` re-analyzes each step (give it the teacher's
    /// dim bindings). Throws `DistillationError`, `PruningError` or the analyzer's errors.
    public static func build(_ teacher: AnalyzedModel, options: StudentOptions,
                             analyzer: ModelAnalyzer = ModelAnalyzer()) throws -> StudentModel {
        guard options.width > 0 && options.width <= 1 else { throw DistillationError.badFactor(name: "width", value: options.width) }
        guard options.depth > 0 && options.depth <= 1 else { throw DistillationError.badFactor(name: "depth", value: options.depth) }
        let stages = RepeatedBlocks.stages(in: teacher)
        let outcomes = stages.map { StageOutcome(stage: $0, keptUnits: keptUnits(of: $0, depth: options.depth)) }
        let dropped = outcomes.flatMap(\.droppedUnits)
        var current = teacher
        if !dropped.isEmpty {
            var model = teacher.model
            model.graph = removing(dropped, from: teacher.model.graph)
            current = try analyzer.analyze(model: model)
            for output in teacher.model.graph.outputs {
                let before = teacher.inferred.type(of: output.name), after = current.inferred.type(of: output.name)
                if before != after {
                    throw DistillationError.outputChanged(output: output.name, before: before.map(\.description) ?? "unknown",
                                                          after: after.map(\.description) ?? "unknown")
                }
            }
        }
        var groups: [GroupOutcome] = []
        if options.width < 1 {
            let pruned = try ChannelPruner.prune(current, dependencies: ChannelDependencyAnalysis.analyze(current),
                                                 options: PruningOptions(ratio: 1 - options.width, roundTo: options.roundTo),
                                                 analyzer: analyzer)
            current = pruned.analyzed
            groups = pruned.outcomes
        }
        return StudentModel(analyzed: current, stages: outcomes, groups: groups)
    }

    /// `graph` without the units' nodes: readers of a unit's exit read its entry instead
    /// (a graph output gets an Identity of it); then nodes and weights nothing reads go.
    static func removing(_ units: [DepthUnit], from graph: Graph) -> Graph {
        var g = graph
        var replacement: [String: String] = [:]
        for unit in units { replacement[unit.exit] = unit.entry }
        func resolve(_ name: String) -> String {
            var v = name
            var steps = 0
            while let next = replacement[v], steps <= replacement.count { v = next; steps += 1 }
            return v
        }
        let removed = Set(units.flatMap(\.nodes))
        var nodes: [Node] = []
        for (i, node) in graph.nodes.enumerated() where !removed.contains(i) {
            var n = node
            n.inputs = n.inputs.map { $0.isEmpty ? $0 : resolve($0) }
            nodes.append(n)
        }
        var names = UniqueNames(graph)
        for output in graph.outputs where replacement[output.name] != nil {
            nodes.append(Node(name: names.make(output.name + "_passthrough"), opType: "Identity",
                              inputs: [resolve(output.name)], outputs: [output.name]))
        }
        // Dead code: nodes whose every output is unread (e.g. an attention mask only the
        // removed layers used), last to first so chains go at once. The passthroughs come
        // last and read values produced earlier, so the order stays topological.
        var read = Set(g.outputs.map(\.name))
        var live: [Node] = []
        var dropped = Set(units.flatMap { $0.nodes.flatMap { graph.nodes[$0].inputs } })
        for node in nodes.reversed() {
            let outputs = node.outputs.filter { !$0.isEmpty }
            guard outputs.isEmpty || outputs.contains(where: read.contains) else {
                dropped.formUnion(node.inputs)
                continue
            }
            live.append(node)
            read.formUnion(node.inputs.filter { !$0.isEmpty })
            // Subgraphs (If, Loop) may read outer values by name.
            for sub in node.subgraphs { read.formUnion(namesRead(in: sub.graph)) }
        }
        g.nodes = live.reversed()
        let produced = Set(g.nodes.flatMap(\.outputs))
        // Only weights that removed nodes read and nothing reads now leave the file.
        let unused = Set(g.initializers.map(\.name).filter { dropped.contains($0) && !read.contains($0) })
        g.initializers.removeAll { unused.contains($0.name) }
        g.inputs.removeAll { unused.contains($0.name) }
        g.valueInfo.removeAll { !produced.contains($0.name) }
        return g
    }

    /// Every name the nodes of `graph` and its nested subgraphs read.
    static func namesRead(in graph: Graph) -> Set<String> {
        var names = Set(graph.nodes.flatMap(\.inputs))
        for node in graph.nodes { for sub in node.subgraphs { names.formUnion(namesRead(in: sub.graph)) } }
        return names
    }
}
