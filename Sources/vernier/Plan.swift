import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierPlanner
import VernierReport
import VernierRuntime

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the least compression that meets a latency budget, build it as a real ONNX variant and verify it.",
        discussion: """
        Strategy prune (structured channel pruning, see `vernier prune`), NetAdapt-style: \
        the original is measured once (on another device: predicted), then step by step \
        every prunable channel group is offered a further cut of 1/8 of its channels, and \
        the cut that saves the most latency per unit of importance lost (the share of the \
        group's weight norm removed) is kept, until the estimate meets the budget. The \
        estimate scales each kernel's measured time by the share of channels kept in the \
        groups it touches. The chosen variant is then built, its latency predicted (the \
        device model, anchored kernel by kernel to the original's measurement on this \
        machine) and, on this machine, measured; when the prediction still misses, the \
        search goes on with a corrected target (up to 4 rounds).

        Output: the verdict, predicted against measured latency of the variant, totals \
        before and after, the per-group plan (channels kept) and output fidelity against \
        the original on the same random probe inputs (cosine, max |diff|, top-1 agreement \
        for classifier outputs): fidelity on probe inputs, not task accuracy. With \
        --min-fidelity, a variant whose worst cosine is lower does not count.

        Exit codes: 0 a variant meets the budget (and the fidelity floor), 1 none does (the \
        closest is shown), 2 an error. --emit DIR writes the variant (DIR/NAME.pruned.onnx), \
        the plan (plan.md, plan.json) and a comparison with the original (compare.md).

        Examples:
          vernier plan model.onnx --latency-ms 30 --emit plans/
          vernier plan model.onnx --latency-ms 8 --threads 1 --round-to 8 --min-fidelity 0.9
          vernier plan model.onnx --latency-ms 50 --device rpi5 --threads 4
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(name: .customLong("latency-ms"), help: ArgumentHelp("The latency limit, ms.", valueName: "MS"))
    var latencyMs: Double

    @Option(help: "Which latency percentile the limit applies to: 50, 90 or 99 (default 90).")
    var percentile: Int = 90

    @Option(name: .customLong("memory-mb"), help: ArgumentHelp("Also a limit on peak memory, MiB (checked on the variant).", valueName: "MB"))
    var memoryMB: Double?

    @Option(name: .customLong("size-mb"), help: ArgumentHelp("Also a limit on the variant's file size, MiB.", valueName: "MB"))
    var sizeMB: Double?

    @Option(help: ArgumentHelp("host (default): measure here; another device profile: predict for it.", valueName: "NAME"))
    var device: String = DeviceProfileStore.hostName

    @Option(help: "Threads (default: all cores of the device).")
    var threads: Int?

    @Option(help: "Compression strategy: prune (quantize and distill: see `vernier quantize`, `vernier distill`).")
    var strategy: String = "prune"

    @Option(name: .customLong("round-to"), help: "Keep a multiple of N channels in each group.")
    var roundTo: Int = 1

    @Option(help: "Channel importance: l1 or l2 norm of the group's weights.")
    var importance: ImportanceNorm = .l1

    @Option(name: .customLong("min-fidelity"), help: ArgumentHelp("Refuse variants whose outputs' cosine similarity to the original falls below this.", valueName: "COS"))
    var minFidelity: Double?

    @Option(help: ArgumentHelp("Write the variant, the plan and a comparison into this folder.", valueName: "DIR"))
    var emit: String?

    @Option(help: "Output format: table, json or md.")
    var format: OutputFormat = .table

    @Option(help: "Seed for the random probe inputs.")
    var seed: UInt64 = 0x5EED

    func validate() throws {
        if !(latencyMs > 0 && latencyMs.isFinite) { throw ValidationError("--latency-ms must be a positive number") }
        if ![50, 90, 99].contains(percentile) { throw ValidationError("--percentile must be 50, 90 or 99") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if roundTo < 1 { throw ValidationError("--round-to must be 1 or more") }
        if let minFidelity, !(minFidelity >= -1 && minFidelity <= 1) { throw ValidationError("--min-fidelity is a cosine, between -1 and 1") }
        if !["prune", "any"].contains(strategy) {
            throw ValidationError("--strategy \(strategy): plan searches with prune (or any, which is prune for now); use `vernier quantize` or `vernier distill` for those variants")
        }
    }

    /// The measured or predicted latency of a model at the budget's percentile.
    private func latency(_ profile: Profile) -> Double {
        guard let e2e = profile.endToEnd else { return 0 }
        switch percentile {
        case 50: return e2e.median
        case 99: return e2e.p99
        default: return e2e.p90
        }
    }

    func run() throws {
        let budget = Budget(latencyMs: latencyMs, percentile: percentile, memoryMiB: memoryMB, sizeMiB: sizeMB,
                            threads: threads, device: device)
        let onHost = DeviceSelection.isHost(device)
        let (deviceProfile, _) = try DeviceSelection.load(device)
        let threadCount = threads ?? (onHost ? ProcessInfo.processInfo.activeProcessorCount : deviceProfile.cores)
        var threading = try RuntimeOptions.parse([])
        threading.threads = threadCount
        var measuring = try MeasuringOptions.parse([])
        measuring.noRoofline = true
        measuring.minTime = 0.5
        let analyzer = ModelAnalyzer(inferenceOptions: try model.inferenceOptions())
        let analyzed = try analyzer.analyze(path: model.model)
        let table = CostModel.table(for: analyzed)
        let originalPrediction = LatencyPrediction.build(table: table, optimized: GraphPasses.optimize(analyzed.inferred),
                                                         device: deviceProfile, threads: threadCount)

        // The original: measured here, predicted elsewhere.
        let originalProfile: Profile
        if onHost {
            originalProfile = try MeasuringSession(model: model, data: try InputDataOptions.parse([]), threading: threading, measuring: measuring).profile
        } else {
            originalProfile = Profile(prediction: originalPrediction)
        }
        let originalMs = latency(originalProfile)
        // The search runs on medians; the budget's percentile sits this far above it.
        let spread = max(1, originalMs / max(originalProfile.endToEnd?.median ?? originalMs, 1e-9))
        let targetMedian = latencyMs / spread

        let dependencies = ChannelDependencyAnalysis.analyze(analyzed)
        let kernels = originalProfile.rows.map { (name: $0.name, nodes: $0.fused, ms: $0.latency.median) }
        let fixedMs = max(0, (originalProfile.endToEnd?.median ?? 0) - originalProfile.nodeSumMs)
        let search = PruningSearch.make(analyzed, dependencies: dependencies, kernels: kernels, fixedMs: fixedMs,
                                        importance: importance, roundTo: roundTo)
        guard !search.groups.isEmpty else {
            throw CommandError("\(model.model) has no prunable channel group (see `vernier prune --list-groups` for why)")
        }
        // Measured over predicted time of each original kernel: predictions of a variant's
        // kernels are scaled by their original's, so the device model only has to get
        // the change right.
        var anchor: [String: Double] = [:]
        let measuredByName = Dictionary(originalProfile.rows.map { ($0.name, $0.latency.median) }, uniquingKeysWith: { a, _ in a })
        for row in originalPrediction.rows where row.predictedMs > 0 {
            if let m = measuredByName[row.costs.name] { anchor[row.costs.name] = m / row.predictedMs }
        }
        let overall = originalPrediction.kernelSumMs > 0 ? originalProfile.nodeSumMs / originalPrediction.kernelSumMs : 1
        func predictMedian(_ candidate: AnalyzedModel) -> Double {
            let p = LatencyPrediction.build(table: CostModel.table(for: candidate), optimized: GraphPasses.optimize(candidate.inferred),
                                            device: deviceProfile, threads: threadCount)
            guard onHost else { return p.totalMs }
            let kernelsMs = p.rows.reduce(0) { $0 + $1.predictedMs * (anchor[$1.costs.name] ?? overall) }
            return kernelsMs + fixedMs
        }

        var target = targetMedian
        var kept = search.groups.map(\.channels)
        var steps = 0
        var variant = analyzed
        var predictedMedian = originalProfile.endToEnd?.median ?? originalMs
        var notes: [String] = []
        if originalMs <= latencyMs {
            notes.append("the original already meets the latency budget; nothing was pruned")
        } else {
            for round in 0..<4 {
                let found = search.search(targetMs: target)
                kept = found.kept
                steps = found.steps.count
                let options = PruningOptions(groupRatios: search.ratios(kept: kept), roundTo: roundTo, importance: importance)
                variant = try ChannelPruner.prune(analyzed, dependencies: dependencies, options: options, analyzer: analyzer).analyzed
                predictedMedian = predictMedian(variant)
                if predictedMedian <= targetMedian || found.steps.isEmpty { break }
                if round == 3 { notes.append("the prediction still missed the target after 4 search rounds") }
                target *= targetMedian / predictedMedian
            }
        }

        // Build, measure (here) and compare the variant's outputs with the original's.
        let bytes = try ModelWriter().serialize(variant.model)
        let folder = emit ?? NSTemporaryDirectory() + "vernier-plan-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if emit == nil { try? FileManager.default.removeItem(atPath: folder) } }
        let stem = ((model.model as NSString).lastPathComponent as NSString).deletingPathExtension
        let variantPath = (folder as NSString).appendingPathComponent("\(stem).pruned.onnx")
        try AtomicFile.write(Data(bytes), to: variantPath)
        var variantOptions = model
        variantOptions.model = variantPath

        let variantProfile: Profile
        let checks: [BudgetVerdict.Check]
        if onHost {
            variantProfile = try MeasuringSession(model: variantOptions, data: try InputDataOptions.parse([]), threading: threading, measuring: measuring).profile
            checks = BudgetVerdict.evaluate(variantProfile, against: budget).checks
        } else {
            let analyzedVariant = try analyzer.analyze(path: variantPath)
            let prediction = LatencyPrediction.build(table: CostModel.table(for: analyzedVariant),
                                                     optimized: GraphPasses.optimize(analyzedVariant.inferred),
                                                     device: deviceProfile, threads: threadCount)
            variantProfile = Profile(prediction: prediction)
            checks = BudgetVerdict.evaluate(prediction, against: budget).checks
            notes.append("latency predicted for \(deviceProfile.name), not measured" + (deviceProfile.isCalibrated ? "" : " (uncalibrated device profile: expect errors of tens of percent)"))
        }
        let fidelity = try Self.fidelity(original: analyzed, variant: try analyzer.analyze(path: variantPath), threading: threading, seed: seed)

        let pruneOutcome = zip(search.groups, kept).map { PlanResult.GroupPlan(name: $0.name, channels: $0.channels, kept: $1) }
        func totals(_ t: CostTable, fileBytes: Int) -> PlanResult.Totals {
            PlanResult.Totals(params: t.totals.params, macs: t.totals.macs.value, weightBytes: t.totals.weightBytes, fileBytes: fileBytes)
        }
        var result = PlanResult(
            modelPath: model.model, strategy: "prune", device: deviceProfile.name, predictedOnly: !onHost,
            deviceCalibrated: deviceProfile.isCalibrated, threads: threadCount, budget: budget, originalMs: originalMs,
            variantPredictedMs: predictedMedian * spread, variantMeasuredMs: onHost ? latency(variantProfile) : nil,
            groups: pruneOutcome, searchSteps: steps, before: totals(table, fileBytes: analyzed.model.fileBytes),
            after: totals(variantProfile.table, fileBytes: bytes.count), fidelity: fidelity, minFidelity: minFidelity,
            checks: checks, notes: notes)
        if onHost {
            result.notes.append("predicted = device model anchored to the original's measured kernels, at the original's \(percentile == 50 ? "median" : "p\(percentile)")/median spread (\(String(format: "%.3f", spread)))")
        }
        if let emit {
            let compare = Comparison(profiles: [originalProfile, variantProfile], baselineIndex: 0,
                                     agreement: [[], fidelity], agreementNotes: [nil, nil], predictedFor: onHost ? nil : deviceProfile)
            let comparePath = (emit as NSString).appendingPathComponent("compare.md")
            try AtomicFile.write(Data(ComparisonReport(compare).render(.md).utf8), to: comparePath)
            result.emitted = [variantPath, comparePath, (emit as NSString).appendingPathComponent("plan.md"),
                              (emit as NSString).appendingPathComponent("plan.json")]
            try AtomicFile.write(Data(PlanReport(result).render(.md).utf8), to: (emit as NSString).appendingPathComponent("plan.md"))
            try AtomicFile.write(Data(PlanReport(result).render(.json).utf8), to: (emit as NSString).appendingPathComponent("plan.json"))
        }
        FileHandle.standardOutput.write(Data(PlanReport(result).render(format).utf8))
        if !result.success { throw ExitCode(1) }
    }

    /// Output agreement of the variant with the original on the same random inputs.
    static func fidelity(original: AnalyzedModel, variant: AnalyzedModel, threading: RuntimeOptions, seed: UInt64) throws -> [OutputAgreement] {
        let feeds = try ModelInputs.random(for: original.inferred, seed: seed)
        let a = try ExecutionPlan.compile(original.inferred, opsets: original.model.opsets, options: threading.executionOptions)
        let b = try ExecutionPlan.compile(variant.inferred, opsets: variant.model.opsets, options: threading.executionOptions)
        let x = try a.run(feeds)
        let y = try b.run(feeds)
        return a.outputNames.compactMap { name in
            guard let p = x[name], let q = y[name] else { return nil }
            return OutputAgreement.compare(name, baseline: p, candidate: q)
        }
    }
}
