import Testing
import VernierGraph
import VernierTestSupport
@testable import VernierRuntime

/// The profiler's measuring loop: how many runs of each kind, timings that follow the
/// order the steps ran in, and stopping on request.
struct ProfilerTests {
    func plan() throws -> (ExecutionPlan, [String: Tensor]) {
        let b = ExecutionPlanTests.cnn()
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets)
        var rng = SplitMix64(seed: 5)
        return (plan, ["x": Tensor(shape: [1, 3, 20, 20], values: (0..<1200).map { _ in rng.signedUnit() })])
    }

    @Test func measuresTheAskedRunsOfEachKindWithOrderedStepTimes() throws {
        let (plan, inputs) = try plan()
        var options = ProfilerOptions()
        options.warmupRuns = 2
        options.minRuns = 5
        options.minSeconds = 0
        var reports = 0
        let runs = try Profiler.measure(plan, inputs: inputs, options: options, progress: { _ in reports += 1 })
        #expect(runs.warmupRuns == 2)
        #expect(runs.timedRuns.count == 5 && runs.endToEndRuns.count == 5)
        #expect(runs.steps.count == plan.steps.count)
        #expect(!runs.interrupted)
        #expect(reports >= 1, "the last progress report is always sent")
        for run in 0..<5 {
            var previousEnd: UInt64 = 0
            for step in runs.steps {
                #expect(step.starts.count == 5 && step.ends.count == 5)
                #expect(step.starts[run] >= previousEnd, "steps run one after another")
                #expect(step.ends[run] >= step.starts[run])
                previousEnd = step.ends[run]
            }
            // The steps fit inside the whole run's time.
            let span = previousEnd - (runs.steps.first?.starts[run] ?? previousEnd)
            #expect(span <= runs.timedRuns[run])
        }
    }

    @Test func minimumTimeKeepsMeasuringAndMaxRunsCapsIt() throws {
        let (plan, inputs) = try plan()
        var options = ProfilerOptions()
        options.warmupRuns = 0
        options.minRuns = 1
        options.minSeconds = 0.05
        let timed = try Profiler.measure(plan, inputs: inputs, options: options)
        let seconds = Double(timed.endToEndRuns.reduce(0, +)) / 1e9
        #expect(seconds >= 0.05 && Double(timed.timedRuns.reduce(0, +)) / 1e9 >= 0.05)
        options.minSeconds = 100
        options.maxRuns = 4
        let capped = try Profiler.measure(plan, inputs: inputs, options: options)
        #expect(capped.timedRuns.count == 4)
    }

    @Test func stopRequestEndsMeasuringAndMarksTheResult() throws {
        let (plan, inputs) = try plan()
        var options = ProfilerOptions()
        options.minSeconds = 100
        var calls = 0
        let runs = try Profiler.measure(plan, inputs: inputs, options: options, shouldStop: {
            calls += 1
            return calls > 5   // 3 warm-up checks, then two rounds
        })
        #expect(runs.interrupted)
        #expect(runs.warmupRuns == 3)
        #expect(runs.timedRuns.count == 2 && runs.endToEndRuns.count == 2)
    }
}
