import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierPlanner
import VernierReport

/// `--group NAME=RATIO`
struct GroupRatio: ExpressibleByArgument {
    var name: String
    var ratio: Double

    init?(argument: String) {
        guard let eq = argument.lastIndex(of: "="), let r = Double(argument[argument.index(after: eq)...]) else { return nil }
        name = String(argument[..<eq])
        ratio = r
        if name.isEmpty { return nil }
    }
}

extension ImportanceNorm: ExpressibleByArgument {}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a smaller model: structured channel pruning, or unstructured magnitude pruning (--sparsity).",
        discussion: """
        Channels that must go together form a group: a Conv's output channels, the \
        BatchNormalization and activations they pass through, the input channels of the \
        layers that read them; a residual Add joins its branches into one group, a Concat \
        lays its inputs' groups side by side, a Flatten into a Gemm takes each channel's \
        H*W features. Groups are named after their first producer. A group that reaches \
        something the analysis does not follow (a graph output, a grouped convolution, \
        a Split or Slice of the channels, an op it does not know) is not pruned, and the \
        reason names the node.

        In each prunable group the channels with the smallest weight norm (summed over \
        every weight of the group) are removed. The result is validated and its shapes \
        re-inferred; its graph outputs keep their shapes. Weights are written inline.

        --sparsity zeroes the smallest weights of each Conv, Gemm and MatMul instead. The \
        file keeps its dense size and dense kernels run exactly as long; only a sparse \
        format or sparse kernels would gain, and the report says by how much at most.

        Examples:
          vernier prune Models/resnet_mini.onnx --list-groups
          vernier prune Models/resnet_mini.onnx --ratio 0.3 --round-to 8 -o resnet_pruned.onnx
          vernier prune model.onnx --ratio 0.5 --group conv1=0 --importance l2 -o small.onnx
          vernier prune model.onnx --sparsity 0.5 -o sparse.onnx
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "Fraction of each prunable group's channels to remove, in [0, 1).")
    var ratio: Double = 0

    @Option(name: .customLong("group"), help: ArgumentHelp(
        "A group's own ratio, e.g. --group conv1=0.5 (names from --list-groups). Repeatable.", valueName: "NAME=RATIO"))
    var groupRatios: [GroupRatio] = []

    @Option(name: .customLong("round-to"), help: "Keep a multiple of N channels in each group (at least N); attention heads count by their width (64-wide heads: any number of heads).")
    var roundTo: Int = 1

    @Option(help: "Channel importance: l1 or l2 norm of the group's weights.")
    var importance: ImportanceNorm = .l1

    @Option(help: "Unstructured pruning: zero this fraction of each Conv/Gemm/MatMul weight instead of removing channels.")
    var sparsity: Double?

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the pruned model.", valueName: "OUT.onnx"))
    var output: String?

    @Flag(name: .customLong("list-groups"), help: "Print the channel groups (and what --ratio would keep) without writing.")
    var listGroups = false

    func validate() throws {
        if !(0..<1).contains(ratio) { throw ValidationError("--ratio must be at least 0 and less than 1") }
        if let sparsity, !(0..<1).contains(sparsity) { throw ValidationError("--sparsity must be at least 0 and less than 1") }
        if roundTo < 1 { throw ValidationError("--round-to must be 1 or more") }
        if !listGroups && output == nil { throw ValidationError("give --output OUT.onnx, or --list-groups to only print the groups") }
        if sparsity != nil && (!groupRatios.isEmpty || ratio > 0 || listGroups) {
            throw ValidationError("--sparsity cannot be combined with --ratio, --group or --list-groups")
        }
    }

    func run() throws {
        let analyzer = ModelAnalyzer(inferenceOptions: try model.inferenceOptions())
        let analyzed = try analyzer.analyze(path: model.model)
        if let sparsity { return try sparsify(analyzed, sparsity: sparsity) }

        let dependencies = ChannelDependencyAnalysis.analyze(analyzed)
        var options = PruningOptions(ratio: ratio, roundTo: roundTo, importance: importance)
        for g in groupRatios {
            if let old = options.groupRatios[g.name], old != g.ratio {
                throw CommandError("--group \(g.name) is given twice (\(old) and \(g.ratio))")
            }
            options.groupRatios[g.name] = g.ratio
        }
        if listGroups {
            let names = dependencies.groups.map(\.name)
            for g in groupRatios {
                guard let group = dependencies.group(named: g.name) else {
                    throw PruningError.unknownGroup(name: g.name, available: names)
                }
                if g.ratio > 0 && !group.isPrunable {
                    throw PruningError.notPrunable(group: g.name, reason: group.blockers.first ?? "it has a single channel")
                }
            }
            let rows = dependencies.groups.map { group -> GroupRow in
                let r = options.groupRatios[group.name] ?? ratio
                let keep = group.isPrunable ? ChannelPruner.keepCount(channels: group.channels, ratio: r, roundTo: roundTo) : group.channels
                return GroupRow(group: group, kept: keep)
            }
            print(Self.groupTable(rows, model: model.model))
            return
        }
        let pruned = try ChannelPruner.prune(analyzed, dependencies: dependencies, options: options, analyzer: analyzer)
        let bytes = try ModelWriter().serialize(pruned.analyzed.model)
        guard let output else { return }
        try AtomicFile.write(Data(bytes), to: output)

        var text = Self.groupTable(pruned.outcomes.map { GroupRow(group: $0.group, kept: $0.kept) }, model: model.model)
        let before = CostModel.table(for: analyzed).totals
        let after = CostModel.table(for: pruned.analyzed).totals
        text += "\n" + Self.totals(before: before, after: after, sizeBefore: analyzed.model.fileBytes, sizeAfter: bytes.count)
        text += "\nwritten: \(output)\n"
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    struct GroupRow {
        var group: ChannelGroup
        var kept: Int
    }

    static func groupTable(_ rows: [GroupRow], model: String) -> String {
        let prunable = rows.filter { $0.group.isPrunable }.count
        var lines = ["\(model): \(rows.count) channel groups, \(prunable) prunable", ""]
        let width = min(40, max(5, rows.map(\.group.name.count).max() ?? 5))
        lines.append("group".padding(toLength: width, withPad: " ", startingAt: 0) + "  channels     status / members")
        for row in rows {
            let g = row.group
            let channels = "\(g.channels) -> \(row.kept)"
            let status: String
            if g.isPrunable {
                status = "prunable"
            } else if g.channels <= 1 {
                status = "not prunable: a single channel"
            } else {
                status = "not prunable: " + (g.blockers.first ?? "") + (g.blockers.count > 1 ? " (+\(g.blockers.count - 1) more)" : "")
            }
            lines.append(g.name.padding(toLength: max(width, g.name.count), withPad: " ", startingAt: 0) + "  "
                         + (channels.count >= 11 ? channels : channels.padding(toLength: 11, withPad: " ", startingAt: 0)) + "  " + status)
            lines.append(String(repeating: " ", count: width + 15) + "members: " + g.nodes.joined(separator: ", "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func totals(before: CostTotals, after: CostTotals, sizeBefore: Int, sizeAfter: Int) -> String {
        // Pads without cutting: a symbolic MAC count can be longer than the column.
        func pad(_ s: String) -> String { s.count >= 13 ? s + " " : s.padding(toLength: 14, withPad: " ", startingAt: 0) }
        func row(_ name: String, _ a: String, _ b: String, _ ratio: Double?) -> String {
            pad(name) + pad(a) + pad(b) + (ratio.map { String(format: "%.1f%%", $0 * 100) } ?? "")
        }
        // Symbolic costs (batch, seq) compare at every symbol = 1.
        func atOne(_ c: Cost) -> Double? { c.substituting(Dictionary(uniqueKeysWithValues: c.symbols.map { ($0, 1.0) })).value }
        func share(_ a: Double?, _ b: Double?) -> Double? {
            guard let a, let b, a > 0 else { return nil }
            return b / a
        }
        return [
            row("", "before", "after", nil) + "after/before",
            row("params", Format.count(before.params), Format.count(after.params), share(Double(before.params), Double(after.params))),
            row("MACs", Format.cost(before.macs), Format.cost(after.macs), share(atOne(before.macs), atOne(after.macs))),
            row("weight bytes", Format.bytes(before.weightBytes), Format.bytes(after.weightBytes),
                share(Double(before.weightBytes), Double(after.weightBytes))),
            row("file size", Format.bytes(sizeBefore), Format.bytes(sizeAfter), share(Double(sizeBefore), Double(sizeAfter))),
        ].joined(separator: "\n") + "\n"
    }

    func sparsify(_ analyzed: AnalyzedModel, sparsity: Double) throws {
        let (sparse, report) = try MagnitudePruning.sparsify(analyzed.model, sparsity: sparsity)
        let bytes = try ModelWriter().serialize(sparse)
        guard let output else { return }
        try AtomicFile.write(Data(bytes), to: output)
        let share = report.prunedElements > 0 ? Double(report.zeros) / Double(report.prunedElements) : 0
        let text = """
        \(model.model): unstructured magnitude pruning of \(report.tensors.count) Conv/Gemm/MatMul weights
        zeros         \(Format.count(report.zeros)) of \(Format.count(report.prunedElements)) weights (\(String(format: "%.1f%%", share * 100)))
        dense size    \(Format.bytes(report.weightBytes)) of weights, unchanged (file \(Format.bytes(bytes.count)))
        if sparse     \(Format.bytes(report.sparseWeightBytes)) of weights, storing the pruned tensors as CSR (value + column index per non-zero, row offsets)
        latency       unchanged on dense kernels (Vernier, ONNX Runtime and oneDNN multiply the zeros too); \
        MACs and params as before. Only sparse kernels or structured pruning (--ratio) make it faster.
        written: \(output)

        """
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
