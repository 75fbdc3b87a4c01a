import VernierCost

/// How long to measure.
public struct ProfilerOptions: Sendable {
    /// Untimed runs first: caches, page faults, oneDNN's first-run work.
    public var warmupRuns = 3
    /// Measure at least this many runs of each kind and for at least this long.
    public var minRuns = 10
    public var minSeconds = 1.0
    /// Stop here even when `minSeconds` has not passed (models much faster than a
    /// millisecond would otherwise make huge traces).
    public var maxRuns = 10_000

    public init() {}
}

/// Where measuring stands, for a progress display.
public struct ProfilerProgress: Sendable {
    public enum Phase: String, Sendable { case warmup = "warm-up", measuring }
    public var phase: Phase
    /// Runs done in this phase (for `measuring`, rounds of one run of each kind).
    public var runs: Int
    public var elapsedSeconds: Double
    public var options: ProfilerOptions

    public init(phase: Phase, runs: Int, elapsedSeconds: Double, options: ProfilerOptions) {
        self.phase = phase
        self.runs = runs
        self.elapsedSeconds = elapsedSeconds
        self.options = options
    }

    /// Fraction done, by whichever of the run count and the time is further from its goal.
    public var fraction: Double {
        switch phase {
        case .warmup: return 0
        case .measuring:
            let byRuns = Double(runs) / Double(max(1, options.minRuns))
            let byTime = options.minSeconds > 0 ? elapsedSeconds / (2 * options.minSeconds) : 1
            return min(1, max(Double(runs) / Double(max(1, options.maxRuns)), min(byRuns, byTime)))
        }
    }
}

/// The measurement of one plan, made one round at a time: `Profiler.measure` drives one
/// alone, `vernier compare` drives several in turn so drift of the machine's speed hits
/// every model alike. A round is one run with per-step timers and one without, their
/// order alternating between rounds.
public final class MeasurementSession {
    public let plan: ExecutionPlan
    let inputs: [String: Tensor]
    public private(set) var result: MeasuredRuns
    /// Seconds spent in each kind of run so far.
    public private(set) var timedSeconds = 0.0
    public private(set) var endToEndSeconds = 0.0
    public var rounds: Int { result.endToEndRuns.count }
    private let times: UnsafeMutableBufferPointer<StepTime>
    private let began = monotonicNanoseconds()

    public init(plan: ExecutionPlan, inputs: [String: Tensor]) {
        self.plan = plan
        self.inputs = inputs
        let relayout = plan.relayoutBytes
        let implementations = plan.implementations
        result = MeasuredRuns(steps: plan.steps.map {
            MeasuredRuns.Step(name: $0.name, opType: $0.opType, sourceNodes: $0.sourceNodes,
                              copiesNothing: plan.copyFreeSteps.contains($0.name), relayoutBytes: Double(relayout[$0.name] ?? 0),
                              implementation: implementations[$0.name])
        }, threads: ThreadPool.threadCount)
        times = .allocate(capacity: max(1, plan.steps.count))
    }

    deinit { times.deallocate() }

    /// One untimed run; returns the outputs (for checking agreement between models).
    @discardableResult
    public func warmup() throws -> [String: Tensor] {
        let outputs = try plan.run(inputs)
        result.warmupRuns += 1
        return outputs
    }

    public func round() throws {
        if rounds % 2 == 0 {
            try timedRun()
            try endToEndRun()
        } else {
            try endToEndRun()
            try timedRun()
        }
    }

    /// True once both kinds of run reached `options`' run count and time.
    public func isDone(_ options: ProfilerOptions) -> Bool {
        rounds >= max(1, options.maxRuns)
            || (rounds >= options.minRuns && timedSeconds >= options.minSeconds && endToEndSeconds >= options.minSeconds)
    }

    /// The measurements so far; `interrupted` marks a stop before the goal.
    public func finish(interrupted: Bool) -> MeasuredRuns {
        var r = result
        r.interrupted = interrupted
        r.seconds = Double(monotonicNanoseconds() - began) / 1e9
        return r
    }

    private func timedRun() throws {
        let start = monotonicNanoseconds()
        _ = try plan.run(inputs, stepTimes: times)
        let elapsed = monotonicNanoseconds() - start
        result.timedRuns.append(elapsed)
        timedSeconds += Double(elapsed) / 1e9
        for i in result.steps.indices {
            result.steps[i].starts.append(times[i].start)
            result.steps[i].ends.append(times[i].end)
        }
    }

    private func endToEndRun() throws {
        let start = monotonicNanoseconds()
        _ = try plan.run(inputs)
        let elapsed = monotonicNanoseconds() - start
        result.endToEndRuns.append(elapsed)
        endToEndSeconds += Double(elapsed) / 1e9
    }
}

/// Measures a compiled plan: warm-up runs, then rounds of one run with per-step timers
/// and one run without (the end-to-end latency), alternating which goes first, so drift
/// of the machine's speed hits both alike.
public enum Profiler {
    /// Runs `plan` on `inputs` until both kinds of run reach `minRuns` runs and
    /// `minSeconds` seconds (or `maxRuns`), or `shouldStop` says so (the result is then
    /// marked interrupted). `progress` is called at most ten times a second.
    public static func measure(_ plan: ExecutionPlan, inputs: [String: Tensor], options: ProfilerOptions = ProfilerOptions(),
                               progress: ((ProfilerProgress) -> Void)? = nil,
                               shouldStop: () -> Bool = { false }) throws -> MeasuredRuns {
        let began = monotonicNanoseconds()
        var lastReport: UInt64 = 0
        func report(_ phase: ProfilerProgress.Phase, _ runs: Int, force: Bool = false) {
            guard let progress else { return }
            let now = monotonicNanoseconds()
            guard force || now - lastReport >= 100_000_000 else { return }
            lastReport = now
            progress(ProfilerProgress(phase: phase, runs: runs, elapsedSeconds: Double(now - began) / 1e9, options: options))
        }
        let session = MeasurementSession(plan: plan, inputs: inputs)
        for i in 0..<max(0, options.warmupRuns) {
            if shouldStop() { return session.finish(interrupted: true) }
            try session.warmup()
            report(.warmup, i + 1)
        }
        while !session.isDone(options) {
            if shouldStop() { return session.finish(interrupted: true) }
            try session.round()
            report(.measuring, session.rounds)
        }
        report(.measuring, session.rounds, force: true)
        return session.finish(interrupted: false)
    }
}
