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

        var result = MeasuredRuns(steps: plan.steps.map {
            MeasuredRuns.Step(name: $0.name, opType: $0.opType, sourceNodes: $0.sourceNodes)
        }, threads: ThreadPool.threadCount)
        for i in 0..<max(0, options.warmupRuns) {
            if shouldStop() { result.interrupted = true; break }
            _ = try plan.run(inputs)
            result.warmupRuns += 1
            report(.warmup, i + 1)
        }

        let times = UnsafeMutableBufferPointer<StepTime>.allocate(capacity: max(1, plan.steps.count))
        defer { times.deallocate() }
        var timedSeconds = 0.0
        var endToEndSeconds = 0.0
        func timedRun() throws {
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
        func endToEndRun() throws {
            let start = monotonicNanoseconds()
            _ = try plan.run(inputs)
            let elapsed = monotonicNanoseconds() - start
            result.endToEndRuns.append(elapsed)
            endToEndSeconds += Double(elapsed) / 1e9
        }
        if !result.interrupted {
            var round = 0
            while round < max(1, options.maxRuns) {
                if shouldStop() { result.interrupted = true; break }
                if round % 2 == 0 {
                    try timedRun()
                    try endToEndRun()
                } else {
                    try endToEndRun()
                    try timedRun()
                }
                round += 1
                report(.measuring, round)
                if round >= options.minRuns, timedSeconds >= options.minSeconds, endToEndSeconds >= options.minSeconds { break }
            }
            report(.measuring, round, force: true)
        }
        result.seconds = Double(monotonicNanoseconds() - began) / 1e9
        return result
    }
}
