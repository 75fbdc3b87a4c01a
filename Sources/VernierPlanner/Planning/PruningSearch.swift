import VernierGraph

/// NetAdapt-style search for per-group pruning ratios that bring a model's latency under
/// a target: step by step, each prunable group is offered one more cut, and the cut that
/// saves the most latency per unit of importance lost is kept, until the estimate meets
/// the target or nothing is left to cut.
///
/// Candidates are ranked with a cheap estimate rather than by building each one: every
/// kernel's time (measured on this machine, or predicted for another device) scales with
/// the share of channels kept in each group it touches (a Conv reading group A and
/// writing group B keeps (1 - fA)(1 - fB) of its work). The caller builds the chosen
/// variant, predicts and measures it, and calls `search` again with a corrected target
/// when the estimate was off.
public struct PruningSearch: Sendable {
    /// One kernel of the original model: its time and the groups whose channels it reads
    /// or writes.
    public struct Kernel: Sendable {
        public var name: String
        public var ms: Double
        public var groups: [Int]

        public init(name: String, ms: Double, groups: [Int]) {
            self.name = name
            self.ms = ms
            self.groups = groups
        }
    }

    /// One prunable group: channel count and per-channel importance.
    public struct Group: Sendable {
        public var name: String
        public var channels: Int
        /// Channel scores, highest first (what is removed first is at the end).
        public var sortedScores: [Double]
        /// Keep a multiple of this many channels, when it differs from the search's
        /// `roundTo` (attention heads, each many elements wide).
        public var roundTo: Int?

        public init(name: String, channels: Int, scores: [Double], roundTo: Int? = nil) {
            self.name = name
            self.channels = channels
            sortedScores = scores.sorted(by: >)
            self.roundTo = roundTo
        }

        /// Share of the group's total importance held by all but its `kept` best channels.
        func importanceLost(keeping kept: Int) -> Double {
            let total = sortedScores.reduce(0, +)
            guard total > 0 else { return Double(channels - kept) / Double(max(1, channels)) }
            return sortedScores.dropFirst(kept).reduce(0, +) / total
        }
    }

    /// One accepted cut, for the report.
    public struct Step: Sendable, Equatable {
        public var group: String
        public var kept: Int
        public var estimatedMs: Double
    }

    public var kernels: [Kernel]
    public var groups: [Group]
    /// Time outside the kernels (per-run work), added to every estimate.
    public var fixedMs: Double
    /// Channels removed per step, as a share of the group's original count.
    public var stepShare: Double
    /// Keep a multiple of this many channels (at least this many).
    public var roundTo: Int
    /// The most of any group's channels the search may remove.
    public var maxRatio: Double

    public init(kernels: [Kernel], groups: [Group], fixedMs: Double = 0, stepShare: Double = 0.125, roundTo: Int = 1,
                maxRatio: Double = 0.75) {
        self.kernels = kernels
        self.groups = groups
        self.fixedMs = fixedMs
        self.stepShare = stepShare
        self.roundTo = max(1, roundTo)
        self.maxRatio = maxRatio
    }

    /// The estimated latency with `kept[g]` channels in each group.
    public func estimateMs(kept: [Int]) -> Double {
        fixedMs + kernels.reduce(0) { sum, k in
            sum + k.groups.reduce(k.ms) { ms, g in ms * Double(kept[g]) / Double(max(1, groups[g].channels)) }
        }
    }

    /// The next smaller channel count for group `g` after `kept`, or nil at the floor.
    func nextKept(_ g: Int, after kept: Int) -> Int? {
        let channels = groups[g].channels
        let roundTo = groups[g].roundTo ?? self.roundTo
        let step = max(roundTo, Int((Double(channels) * stepShare).rounded()))
        var next = kept - step
        if roundTo > 1 { next = (next / roundTo) * roundTo }
        let floor = max(roundTo, Int((Double(channels) * (1 - maxRatio)).rounded(.up)))
        guard next >= floor, next < kept, next >= 1 else { return nil }
        return next
    }

    /// Cuts until the estimate is at most `targetMs` (or nothing is left to cut), starting
    /// from `start` channels per group (the original counts when nil).
    public func search(targetMs: Double, start: [Int]? = nil) -> (kept: [Int], steps: [Step]) {
        var kept = start ?? groups.map(\.channels)
        var steps: [Step] = []
        var current = estimateMs(kept: kept)
        while current > targetMs {
            var best: (g: Int, next: Int, score: Double, ms: Double)?
            for g in groups.indices {
                guard let next = nextKept(g, after: kept[g]) else { continue }
                var trial = kept
                trial[g] = next
                let ms = estimateMs(kept: trial)
                let saved = current - ms
                guard saved > 0 else { continue }
                let lost = groups[g].importanceLost(keeping: next) - groups[g].importanceLost(keeping: kept[g])
                let score = saved / (lost + 1e-6)
                if let b = best, b.score >= score { continue }
                best = (g, next, score, ms)
            }
            guard let chosen = best else { break }
            kept[chosen.g] = chosen.next
            current = chosen.ms
            steps.append(Step(group: groups[chosen.g].name, kept: chosen.next, estimatedMs: chosen.ms))
        }
        return (kept, steps)
    }
}

extension PruningSearch {
    /// The search over `analyzed`'s prunable groups, with kernel times from a profile or
    /// a prediction: each kernel as (name, the original nodes it runs, ms).
    public static func make(_ analyzed: AnalyzedModel, dependencies: ChannelDependencies,
                            kernels: [(name: String, nodes: [String], ms: Double)], fixedMs: Double,
                            importance: ImportanceNorm, roundTo: Int) -> PruningSearch {
        let prunable = dependencies.groups.filter(\.isPrunable)
        let constants = StoredConstants(analyzed.model.graph)
        let groups = prunable.map {
            Group(name: $0.name, channels: $0.channels, scores: ChannelImportance.scores(of: $0, constants: constants, norm: importance),
                  roundTo: $0.channelMultiple(roundTo: roundTo))
        }
        var groupsOfNode: [String: [Int]] = [:]
        for (g, group) in prunable.enumerated() {
            for node in Set(group.nodes) { groupsOfNode[node, default: []].append(g) }
        }
        let searchKernels = kernels.map { k in
            Kernel(name: k.name, ms: k.ms, groups: Array(Set(k.nodes.flatMap { groupsOfNode[$0] ?? [] })).sorted())
        }
        return PruningSearch(kernels: searchKernels, groups: groups, fixedMs: fixedMs, roundTo: roundTo)
    }

    /// Each group's share of the summed time of `kernels` (named as in the model the
    /// search was made on; a pruned variant keeps the names): the time of the kernels that
    /// read or write the group's channels, over all kernels' time. Kernels touched by
    /// several groups count for each. Nil for every group when the sum is zero.
    public func timeShares(of kernels: [(name: String, ms: Double)]) -> [Double?] {
        let groupsOfKernel = Dictionary(self.kernels.map { ($0.name, $0.groups) }, uniquingKeysWith: { a, _ in a })
        let total = kernels.reduce(0) { $0 + $1.ms }
        guard total > 0 else { return groups.map { _ in nil } }
        var touching = [Double](repeating: 0, count: groups.count)
        for k in kernels {
            for g in groupsOfKernel[k.name] ?? [] { touching[g] += k.ms }
        }
        return touching.map { $0 / total }
    }

    /// Per-group ratios that make `ChannelPruner` keep exactly `kept` channels.
    public func ratios(kept: [Int]) -> [String: Double] {
        var out: [String: Double] = [:]
        for (g, group) in groups.enumerated() where kept[g] < group.channels {
            out[group.name] = 1 - Double(kept[g]) / Double(group.channels)
        }
        return out
    }
}
