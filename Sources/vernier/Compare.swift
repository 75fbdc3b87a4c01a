import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierReport
import VernierRuntime

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure several variants of a model side by side: totals, deltas, per-layer deltas, output agreement.",
        discussion: """
        Loads every model, then measures them in interleaved rounds (one round of each \
        model in turn, like `vernier profile` does for one), so a machine that speeds up or \
        slows down affects all alike. One column per model: latency median and p90, \
        params, MACs, weight bytes, planned peak memory, size on disk, each with its delta \
        against the baseline (--baseline, default the first model) in absolute terms and \
        in percent.

        Per-layer deltas follow for each model: layers pair up by name, and where names \
        differ by position and op type (in execution order); a layer only one model has \
        is listed as such.

        Output agreement: every model runs on the baseline's inputs (random with a fixed \
        seed, or --input-data) when its inputs have the same names and shapes; outputs \
        pair by name (or by position when all names differ) and show cosine similarity, \
        the largest absolute difference and, for classifier-shaped outputs, the share of \
        rows whose top-1 class agrees. This is fidelity on probe inputs, not task accuracy.

        --device NAME other than host predicts each model's latency on that device \
        (see `vernier predict`) instead of measuring: nothing runs, so there is no \
        output agreement.

        Examples:
          vernier compare Models/resnet_mini.onnx pruned.onnx int8.onnx
          vernier compare a.onnx b.onnx --device rpi5 --threads 4
          vernier compare a.onnx b.onnx --baseline b.onnx --threads 1 --format md -o compare.md
        """
    )

    @Argument(help: "Two or more .onnx models.")
    var models: [String]

    @Option(help: ArgumentHelp("The model the others are compared with (default: the first).", valueName: "MODEL"))
    var baseline: String?

    @OptionGroup var bindings: SharedBindings

    @OptionGroup var data: InputDataOptions
    @OptionGroup var threading: RuntimeOptions
    @OptionGroup var measuring: MeasuringOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("host (default): measure here; another device profile: predict its latencies (see `vernier predict`).", valueName: "NAME"))
    var device: String?

    func validate() throws {
        if models.count < 2 { throw ValidationError("give at least two models to compare") }
        if let baseline, baselineIndex(baseline) == nil {
            throw ValidationError("--baseline \(baseline) is not one of the models given")
        }
    }

    private func baselineIndex(_ name: String) -> Int? {
        ComparingSession.index(of: name, in: models)
    }

    func run() throws {
        if let device, !DeviceSelection.isHost(device) {
            let (profile, _) = try DeviceSelection.load(device)
            let profiles = try models.map { path -> Profile in
                let analyzed = try ModelOptions.binding(path, inputs: bindings.inputs, dims: bindings.dims).analyze()
                return Profile(prediction: DeviceSelection.predict(analyzed, on: profile, threads: threading.threads ?? profile.cores))
            }
            let comparison = Comparison(profiles: profiles, baselineIndex: baseline.flatMap(baselineIndex) ?? 0,
                                        agreement: profiles.map { _ in [] },
                                        agreementNotes: profiles.indices.map { _ in "predicted, not run" }, predictedFor: profile)
            try output.emit(ComparisonReport(comparison).render)
            return
        }
        let session = try ComparingSession(models: models, baseline: baseline.flatMap(baselineIndex) ?? 0, inputs: bindings.inputs,
                                           dims: bindings.dims, data: data, threading: threading, measuring: measuring)
        try output.emit(ComparisonReport(session.comparison).render)
        try session.finish()
    }
}

/// Several models loaded, then measured in interleaved rounds, with their outputs
/// compared on the baseline's inputs: the pipeline `compare` and `report` share.
/// `finish` turns an interrupted measurement into exit code 130 once the caller has
/// written what was measured.
struct ComparingSession {
    let comparison: Comparison
    let interrupted: Bool

    init(models: [String], baseline base: Int, inputs: [InputBinding], dims: [DimBinding], data: InputDataOptions,
         threading: RuntimeOptions, measuring: MeasuringOptions) throws {
        func modelOptions(_ path: String) throws -> ModelOptions { try .binding(path, inputs: inputs, dims: dims) }
        Interrupt.install()
        threading.apply()
        struct Loaded {
            var table: CostTable
            var plan: ExecutionPlan
            var feeds: [String: Tensor]
            var note: String?
        }
        let analyzed = try models.map { try data.analyzeAndFeed(try modelOptions($0)) }
        // The baseline's inputs go to every model whose inputs match them.
        let baseFeeds = analyzed[base].feeds
        var loaded: [Loaded] = []
        for (model, ownFeeds) in analyzed {
            let sameInputs = ownFeeds.count == baseFeeds.count && ownFeeds.allSatisfy { name, t in
                baseFeeds[name].map { $0.shape == t.shape && $0.elementType == t.elementType } ?? false
            }
            let plan = try ExecutionPlan.compile(model.inferred, opsets: model.model.opsets, options: threading.executionOptions)
            loaded.append(Loaded(table: CostModel.table(for: model), plan: plan, feeds: sameInputs ? baseFeeds : ownFeeds,
                                 note: sameInputs ? nil : "its inputs differ from the baseline's (names, shapes or types)"))
        }
        let device = try measuring.resolveDevice(threads: ThreadPool.threadCount)
        measuring.pinIfAsked()

        let sessions = loaded.map { MeasurementSession(plan: $0.plan, inputs: $0.feeds) }
        let options = measuring.profilerOptions
        var firstOutputs: [[String: Tensor]] = Array(repeating: [:], count: sessions.count)
        var interrupted = false
        let bar = ProgressBar.onTerminal()
        let began = Date()
        warmup: for round in 0..<max(1, options.warmupRuns) {
            for (i, s) in sessions.enumerated() {
                if Interrupt.requested { interrupted = true; break warmup }
                let outputs = try s.warmup()
                if round == 0 { firstOutputs[i] = outputs }
            }
        }
        while !interrupted, sessions.contains(where: { !$0.isDone(options) }) {
            for s in sessions where !s.isDone(options) {
                if Interrupt.requested { interrupted = true; break }
                try s.round()
            }
            bar?.show(ProfilerProgress(phase: .measuring, runs: sessions.map(\.rounds).min() ?? 0,
                                       elapsedSeconds: Date().timeIntervalSince(began), options: options))
        }
        bar?.clear()

        var profiles: [Profile] = []
        for (i, s) in sessions.enumerated() {
            let memory = MeasuredMemory(arenaBytes: loaded[i].plan.arenaBytes, constantBytes: loaded[i].plan.constantBytes)
            profiles.append(Profile.build(table: loaded[i].table, runs: s.finish(interrupted: interrupted || !s.isDone(options)),
                                          memory: memory, device: device?.profile, deviceSource: device?.source))
        }
        var agreement: [[OutputAgreement]] = []
        var notes: [String?] = []
        for i in sessions.indices {
            if i == base || loaded[i].note != nil || firstOutputs[i].isEmpty {
                agreement.append([])
                notes.append(i == base ? nil : loaded[i].note ?? "not run")
                continue
            }
            let pairs = Self.pairOutputs(baseline: loaded[base].plan.outputNames, candidate: loaded[i].plan.outputNames)
            let list = pairs.compactMap { a, b -> OutputAgreement? in
                guard let x = firstOutputs[base][a], let y = firstOutputs[i][b] else { return nil }
                return OutputAgreement.compare(a == b ? b : "\(a) -> \(b)", baseline: x, candidate: y)
            }
            agreement.append(list)
            notes.append(list.isEmpty ? "no output pairs with the same number of elements" : nil)
        }
        comparison = Comparison(profiles: profiles, baselineIndex: base, agreement: agreement, agreementNotes: notes)
        self.interrupted = interrupted
    }

    /// Exit 130 after an interrupted measurement; restores Ctrl-C's default otherwise.
    func finish() throws { try Interrupt.finish(interrupted: interrupted) }

    /// The model `name` refers to: a path as given, else a file name.
    static func index(of name: String, in models: [String]) -> Int? {
        models.firstIndex(of: name) ?? models.firstIndex { ($0 as NSString).lastPathComponent == name }
    }

    /// Outputs pair by name; when no name is shared, by position.
    static func pairOutputs(baseline: [String], candidate: [String]) -> [(String, String)] {
        let shared = baseline.filter(candidate.contains)
        if !shared.isEmpty { return shared.map { ($0, $0) } }
        return Array(zip(baseline, candidate))
    }
}
