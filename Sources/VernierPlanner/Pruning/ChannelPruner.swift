import VernierGraph

/// How much to prune.
public struct PruningOptions: Sendable {
    /// Fraction of each prunable group's channels to remove, in [0, 1).
    public var ratio: Double = 0
    /// Per-group ratios by group name, overriding `ratio`.
    public var groupRatios: [String: Double] = [:]
    /// Keep a multiple of this many channels (at least this many); 1 keeps any count.
    public var roundTo: Int = 1
    public var importance: ImportanceNorm = .l1

    public init(ratio: Double = 0, groupRatios: [String: Double] = [:], roundTo: Int = 1, importance: ImportanceNorm = .l1) {
        self.ratio = ratio
        self.groupRatios = groupRatios
        self.roundTo = roundTo
        self.importance = importance
    }
}

/// Why pruning could not be done.
public enum PruningError: Error, CustomStringConvertible, Sendable, Equatable {
    case unknownGroup(name: String, available: [String])
    case badRatio(group: String?, value: Double)
    case badRoundTo(Int)
    /// A ratio was asked for a group that cannot be pruned.
    case notPrunable(group: String, reason: String)
    /// The pruned model does not have the original's graph outputs: a bug in the analysis.
    case outputChanged(output: String, before: String, after: String)

    public var description: String {
        switch self {
        case .unknownGroup(let name, let available):
            let list = available.prefix(12).joined(separator: ", ") + (available.count > 12 ? ", ..." : "")
            return "no channel group named '\(name)'; groups are named after their first producer: \(list) (see --list-groups)"
        case .badRatio(let group, let value):
            return "the ratio \(value)\(group.map { " for group '\($0)'" } ?? "") must be at least 0 and less than 1"
        case .notPrunable(let group, let reason):
            return "group '\(group)' cannot be pruned: \(reason)"
        case .badRoundTo(let n):
            return "--round-to must be 1 or more, not \(n)"
        case .outputChanged(let output, let before, let after):
            return "pruning changed graph output '\(output)' from \(before) to \(after); this is a bug in the channel analysis, please report it"
        }
    }
}

/// One group's fate.
public struct GroupOutcome: Sendable {
    public var group: ChannelGroup
    /// Indices (into the original channels) that stay, ascending.
    public var keptChannels: [Int]
    public var kept: Int { keptChannels.count }
}

/// A pruned model, validated and shape-inferred, with what happened to each group.
public struct PrunedModel: Sendable {
    public var analyzed: AnalyzedModel
    public var outcomes: [GroupOutcome]
}

/// Structured channel pruning: removes the least important channels of each group from
/// every tensor they couple, then re-validates and re-infers the model.
public enum ChannelPruner {
    /// Channels to keep out of `channels` when removing `ratio` of them, rounded to a
    /// multiple of `roundTo` (at least `roundTo`, at least 1). Ratio 0 keeps them all.
    public static func keepCount(channels: Int, ratio: Double, roundTo: Int) -> Int {
        guard ratio > 0, channels > 1 else { return channels }
        let target = Double(channels) * (1 - ratio)
        if roundTo <= 1 { return min(channels, max(1, Int(target.rounded()))) }
        if channels <= roundTo { return channels }
        return min(channels, max(roundTo, Int((target / Double(roundTo)).rounded()) * roundTo))
    }

    /// Prunes `analyzed` as `options` say. `analyzer` re-analyzes the result (give it the
    /// same dim bindings as the original). Throws `PruningError`, `TensorSliceError`, or
    /// the analyzer's errors.
    public static func prune(_ analyzed: AnalyzedModel, dependencies: ChannelDependencies, options: PruningOptions,
                             analyzer: ModelAnalyzer = ModelAnalyzer()) throws -> PrunedModel {
        guard options.roundTo >= 1 else { throw PruningError.badRoundTo(options.roundTo) }
        guard options.ratio >= 0 && options.ratio < 1 else { throw PruningError.badRatio(group: nil, value: options.ratio) }
        let names = dependencies.groups.map(\.name)
        for (name, r) in options.groupRatios.sorted(by: { $0.key < $1.key }) {
            guard names.contains(name) else { throw PruningError.unknownGroup(name: name, available: names) }
            guard r >= 0 && r < 1 else { throw PruningError.badRatio(group: name, value: r) }
            if r > 0, let group = dependencies.group(named: name), !group.isPrunable {
                throw PruningError.notPrunable(group: name, reason: group.blockers.first ?? "it has a single channel")
            }
        }
        var graph = analyzed.model.graph
        let constants = StoredConstants(graph)

        // Which channels each group keeps; fixed and blocked groups keep all.
        var kept: [Int: [Int]] = [:]
        var outcomes: [GroupOutcome] = []
        for (id, group) in dependencies.allGroups.enumerated() where !group.producers.isEmpty {
            let ratio = options.groupRatios[group.name] ?? options.ratio
            var keep = Array(0..<group.channels)
            if group.isPrunable {
                let count = keepCount(channels: group.channels, ratio: ratio, roundTo: group.channelMultiple(roundTo: options.roundTo))
                if count < group.channels {
                    let scores = ChannelImportance.scores(of: group, constants: constants, norm: options.importance)
                    // Highest scores stay; ties keep the lower index, so results are deterministic.
                    keep = Array(keep.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(count)).sorted()
                }
            }
            kept[id] = keep
            outcomes.append(GroupOutcome(group: group, keptChannels: keep))
        }
        func newLength(_ layout: ChannelLayout) -> Int {
            layout.segments.reduce(0) { $0 + (kept[$1.group]?.count ?? $1.count) * $1.span }
        }

        // Indices removed from each node input that reads a stored tensor, per axis.
        typealias Use = StoredConstants.Use
        var removed: [Use: [Int: Set<Int>]] = [:]
        for (id, group) in dependencies.allGroups.enumerated() {
            guard let keep = kept[id], keep.count < group.channels else { continue }
            let keepSet = Set(keep)
            let dropped = (0..<group.channels).filter { !keepSet.contains($0) }
            for s in group.slices {
                let use = Use(node: s.node, input: s.input)
                for k in dropped {
                    for r in 0..<s.span { removed[use, default: [:]][s.axis, default: []].insert(s.offset + k * s.span + r) }
                }
            }
        }
        var replacements: [Use: TensorData] = [:]
        for (use, axes) in removed {
            guard let t = constants[graph.nodes[use.node].inputs[use.input]] else { continue }
            var keeping: [Int: [Int]] = [:]
            for (axis, drop) in axes { keeping[axis] = (0..<t.dims[axis]).filter { !drop.contains($0) } }
            replacements[use] = try TensorSlicing.keeping(keeping, of: t)
        }
        for rewrite in dependencies.shapeRewrites {
            let use = Use(node: rewrite.node, input: rewrite.input)
            let length = newLength(rewrite.layout)
            guard let t = replacements[use] ?? constants[rewrite.tensor], var values = t.integerValues(),
                  rewrite.position < values.count, values[rewrite.position] != length else { continue }
            values[rewrite.position] = length
            replacements[use] = TensorSlicing.integers(values, like: t)
        }
        apply(replacements, constants: constants, to: &graph, irVersion: analyzed.model.irVersion)
        for rewrite in dependencies.groupAttributeRewrites {
            let length = newLength(rewrite.layout)
            if let a = graph.nodes[rewrite.node].attributes.firstIndex(where: { $0.name == "group" }) {
                graph.nodes[rewrite.node].attributes[a].value = .int(length)
            }
        }
        // Declared types of values whose channel count changed would now be wrong.
        let changed = Set(dependencies.layouts.filter { newLength($0.value) != $0.value.length }.keys)
        graph.valueInfo.removeAll { changed.contains($0.name) }

        var model = analyzed.model
        model.graph = graph
        let result = try analyzer.analyze(model: model)
        for output in graph.outputs {
            let before = analyzed.inferred.type(of: output.name)
            let after = result.inferred.type(of: output.name)
            if before != after {
                throw PruningError.outputChanged(output: output.name, before: before.map(\.description) ?? "unknown",
                                                 after: after.map(\.description) ?? "unknown")
            }
        }
        return PrunedModel(analyzed: result, outcomes: outcomes)
    }

    /// Puts the new tensors in place. A stored tensor whose every use changes the same
    /// way is replaced where it is; otherwise each changed use gets a private copy under a
    /// new name (exporters share identical tensors, e.g. zero biases, between layers).
    static func apply(_ replacements: [StoredConstants.Use: TensorData], constants: StoredConstants,
                      to graph: inout Graph, irVersion: Int) {
        var byRoot: [String: [(use: StoredConstants.Use, tensor: TensorData)]] = [:]
        for (use, t) in replacements {
            guard let r = constants.root[graph.nodes[use.node].inputs[use.input]] else { continue }
            byRoot[r, default: []].append((use, t))
        }
        var taken = Set(graph.initializers.map(\.name) + graph.inputs.map(\.name) + graph.nodes.flatMap(\.outputs))
        for (root, changes) in byRoot.sorted(by: { $0.key < $1.key }) {
            let sorted = changes.sorted { ($0.use.node, $0.use.input) < ($1.use.node, $1.use.input) }
            let everyUse = Set(constants.uses[root] ?? []) == Set(sorted.map(\.use)) && !constants.pinned.contains(root)
            let first = sorted[0].tensor
            if everyUse && sorted.allSatisfy({ sameContents($0.tensor, first) }) {
                var t = first
                t.name = root
                if let i = graph.initializers.firstIndex(where: { $0.name == root }) {
                    graph.initializers[i] = t
                } else if let n = constants.constantNodes[root],
                          let a = graph.nodes[n].attributes.firstIndex(where: { $0.name == "value" }),
                          case .tensor(let original) = graph.nodes[n].attributes[a].value {
                    t.name = original.name
                    graph.nodes[n].attributes[a].value = .tensor(t)
                }
                continue
            }
            for (use, tensor) in sorted {
                var name = root + "_pruned"
                var n = 1
                while taken.contains(name) { n += 1; name = "\(root)_pruned\(n)" }
                taken.insert(name)
                var t = tensor
                t.name = name
                graph.initializers.append(t)
                // Before IR 4 every initializer must also be a graph input.
                if irVersion < 4 { graph.inputs.append(ValueInfo(name: name, type: .tensor(t.type))) }
                graph.nodes[use.node].inputs[use.input] = name
            }
        }
    }

    static func sameContents(_ a: TensorData, _ b: TensorData) -> Bool {
        a.elementType == b.elementType && a.dims == b.dims
            && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
    }
}
