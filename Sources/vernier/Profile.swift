import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierReport
import VernierRuntime

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure a model layer by layer: latency per node, end-to-end latency, memory, roofline.",
        discussion: """
        Runs the model on the native executor: --warmup untimed runs, then rounds of one \
        run with a timer around every kernel and one run without timers (the end-to-end \
        latency), alternating, until both kinds reach --runs runs and --min-time seconds \
        (or --max-runs). Each row is one kernel: a node, or a group of nodes fused into one \
        (a Conv with its BatchNormalization, residual Add and Relu), named by its first node \
        with `(+N)` for the others; the JSON lists them all. Latencies are the median and \
        p90 over the runs (percentiles interpolate between ranks); min, mean and stdev are \
        in the JSON and CSV.

        The sum of the node medians is compared with the end-to-end median: the difference \
        is the work between kernels plus the timers' own cost (typically under 1%). The \
        spread (p90/median) shows how noisy the machine was; above 1.10 a note says so.

        Memory: the planned arena (activations, which the executor really allocates from \
        the memory plan) and the weights it holds, next to the process's measured peak \
        resident set (VmHWM) minus what it used before loading the model.

        Roofline: each row's FLOPs and bytes moved (values passed inside a fused group not \
        counted) give its intensity; against the device profile's peak GFLOP/s and memory \
        bandwidth at this thread count, the row gets its achieved GFLOP/s and GB/s, the \
        share of the attainable rate (%Roof) and whether it is compute- or memory-bound. \
        The host's profile is measured once (about 3 s) and stored (see `vernier device`); \
        --device-profile uses another file, --no-roofline skips it.

        Ctrl-C stops measuring and prints what was measured so far, marked partial (exit 130).

        \(CountingConventions.text)

        Examples:
          vernier profile Models/resnet_mini.onnx
          vernier profile Models/bert_mini.onnx --dim batch=1 --dim seq=64 --threads 1 --top 10
          vernier profile model.onnx --format json -o profile.json --trace trace.json
          vernier profile model.onnx --by-op --format md
        """
    )

    @OptionGroup var model: ModelOptions
    @OptionGroup var data: InputDataOptions
    @OptionGroup var threading: RuntimeOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup var measuring: MeasuringOptions

    @Option(help: ArgumentHelp("Show only the K rows with the largest median latency.", valueName: "K"))
    var top: Int?

    @Flag(name: .customLong("by-op"), help: "Aggregate the rows by op type.")
    var byOp = false

    @Option(help: ArgumentHelp("Also write a Chrome trace (Perfetto, chrome://tracing): one event per kernel per run.", valueName: "FILE.json"))
    var trace: String?

    @Option(help: ArgumentHelp("Also write a self-contained HTML report with charts (as `vernier report` does).", valueName: "FILE.html"))
    var html: String?

    func validate() throws {
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let session = try MeasuringSession(model: model, data: data, threading: threading, measuring: measuring)
        let profile = session.profile
        if let trace { try AtomicFile.write(Data(ChromeTrace(profile).render().utf8), to: trace) }
        if let html { try AtomicFile.write(Data(HTMLReport(profiles: [profile]).render().utf8), to: html) }
        try output.emit(ProfileReport(profile, top: top, byOpOnly: byOp).render)
        try session.finish()
    }
}

/// How long and how to measure: shared by the commands that profile a model.
struct MeasuringOptions: ParsableArguments {
    @Option(help: "Measure at least this many runs of each kind.")
    var runs: Int = 10

    @Option(help: "Untimed runs first.")
    var warmup: Int = 3

    @Option(name: .customLong("min-time"), help: ArgumentHelp("Measure each kind of run for at least this long.", valueName: "SECONDS"))
    var minTime: Double = 1.0

    @Option(name: .customLong("max-runs"), help: "Stop after this many runs even before --min-time (fast models).")
    var maxRuns: Int = 10_000

    @Flag(help: "Pin each thread to its own core while measuring (where the OS allows).")
    var pin = false

    @Option(name: .customLong("device-profile"), help: ArgumentHelp("Roofs from this device profile (a stored name, see `vernier device --list`, or a .json file) instead of the host's.", valueName: "NAME|FILE"))
    var deviceProfile: String?

    @Flag(name: .customLong("no-roofline"), help: "Skip the roofline columns (and measuring the host).")
    var noRoofline = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        if warmup < 0 { throw ValidationError("--warmup must be 0 or more") }
        if !(minTime >= 0 && minTime <= 3600) { throw ValidationError("--min-time must be between 0 and 3600 seconds") }
        if maxRuns < runs { throw ValidationError("--max-runs must be at least --runs") }
        if noRoofline && deviceProfile != nil { throw ValidationError("--no-roofline and --device-profile exclude each other") }
    }

    var profilerOptions: ProfilerOptions {
        var options = ProfilerOptions()
        options.warmupRuns = warmup
        options.minRuns = runs
        options.minSeconds = minTime
        options.maxRuns = maxRuns
        return options
    }

    /// Pins the threads when --pin asks for it; warns when the OS refuses.
    func pinIfAsked() {
        if pin, ThreadPool.pinThreads() == nil {
            FileHandle.standardError.write(Data("vernier: warning: --pin: the OS did not allow pinning threads; measuring unpinned\n".utf8))
        }
    }

    /// The device profile for the roofline columns, and where it came from: the named
    /// profile or file, else this machine's stored profile, measured now (about 3 s,
    /// once) when there is none or it was measured on another CPU.
    func resolveDevice(threads: Int) throws -> (profile: DeviceProfile, source: String)? {
        if noRoofline { return nil }
        if let deviceProfile {
            let store = DeviceProfileStore.standard
            return (try store.load(nameOrPath: deviceProfile), store.resolve(deviceProfile))
        }
        let host = try DeviceSelection.load(DeviceProfileStore.hostName)
        return (host.0, host.1)
    }
}

/// One model loaded, planned and measured: the pipeline `profile` and `check` share.
/// Ctrl-C is caught from the start; `finish` turns an interrupted measurement into exit
/// code 130 once the caller has printed what was measured.
struct MeasuringSession {
    let profile: Profile

    init(model: ModelOptions, data: InputDataOptions, threading: RuntimeOptions, measuring: MeasuringOptions) throws {
        // From the start: Ctrl-C while loading must not kill the process either.
        Interrupt.install()
        let baseline = ProcessMemory.resetPeak()
        let threads = threading.apply()
        let (analyzed, feeds) = try data.analyzeAndFeed(model)
        let table = CostModel.table(for: analyzed)
        let plan = try ExecutionPlan.compile(analyzed.inferred, opsets: analyzed.model.opsets, options: threading.executionOptions)
        let device = try measuring.resolveDevice(threads: threads)
        measuring.pinIfAsked()
        let bar = ProgressBar.onTerminal()
        let measured = try Profiler.measure(plan, inputs: feeds, options: measuring.profilerOptions,
                                            progress: bar.map { bar in { bar.show($0) } },
                                            shouldStop: { Interrupt.requested })
        bar?.clear()
        let memory = MeasuredMemory(arenaBytes: plan.arenaBytes, constantBytes: plan.constantBytes,
                                    baselineResidentBytes: baseline, peakResidentBytes: ProcessMemory.peakResidentBytes)
        profile = Profile.build(table: table, runs: measured, memory: memory, device: device?.profile, deviceSource: device?.source)
    }

    /// Exit 130 after an interrupted measurement; restores Ctrl-C's default otherwise.
    func finish() throws { try Interrupt.finish(interrupted: profile.interrupted) }
}

/// A one-line progress bar on stderr, redrawn in place; only when stderr is a terminal.
final class ProgressBar {
    static func onTerminal() -> ProgressBar? { isatty(2) != 0 ? ProgressBar() : nil }

    func show(_ p: ProfilerProgress) {
        let width = 24
        let filled = Int((p.fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = p.phase == .warmup
            ? "profiling: warm-up run \(p.runs)/\(p.options.warmupRuns)"
            : "profiling [\(bar)] \(p.runs) runs  \(String(format: "%.1f", p.elapsedSeconds)) s"
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    }

    func clear() { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
}

/// Ctrl-C while measuring: the first one asks the profiler to stop (it finishes the
/// current run and the partial profile is printed); a second one ends the process.
enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static var requested: Bool { flag != 0 }

    static func install() {
        flag = 0
        // A parent may have started us with SIGINT blocked (the mask is inherited
        // across exec); a profiler must stay interruptible.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in
            Interrupt.flag = 1
            signal(SIGINT, SIG_DFL)
        }
    }

    static func uninstall() { signal(SIGINT, SIG_DFL) }

    /// Restores Ctrl-C's default, then turns a measurement cut short into exit code 130
    /// (after the caller has written what was measured).
    static func finish(interrupted: Bool) throws {
        uninstall()
        if interrupted {
            FileHandle.standardError.write(Data("vernier: interrupted: the figures cover the runs measured so far\n".utf8))
            throw ExitCode(130)
        }
    }
}
