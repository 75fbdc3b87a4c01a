import ArgumentParser
import Foundation
import VernierPlanner
import VernierReport

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Does the model fit a latency / memory / size budget? Exit 0 if it does, 1 if not, 2 on error.",
        discussion: """
        Measures the model like `vernier profile` (warm-up, then runs until --runs and \
        --min-time are reached) and prints one line per budget: measured value, limit, \
        headroom and PASS or FAIL. When a budget fails, the five slowest layers follow, \
        with the share of the latency overshoot each one holds (above 100%: removing that \
        layer alone would close the gap).

        Budgets: --latency-ms applies to the end-to-end latency at --percentile (50, 90 \
        or 99; default 90); --memory-mb to the measured peak resident memory above the \
        process's baseline (MiB = 2^20 bytes); --size-mb to the model file plus external \
        data. A budget file (--budget, YAML or JSON) holds the same; flags override it:

          latency:
            ms: 15
            percentile: 90
          memory_mb: 64
          size_mb: 20
          threads: 2

        --device NAME other than host predicts instead of measuring (see `vernier \
        predict`): the predicted latency against the limit, the planned arena plus \
        weights against the memory limit; the output says it is a prediction, and \
        whether the device profile is calibrated.

        Exit codes, for CI: 0 every budget holds, 1 at least one fails, 2 an error (bad \
        file, bad flag, an op without a kernel), 130 interrupted. --format json prints \
        {"pass": ..., "checks": [{"name", "value", "limit", "unit", "pass", ...}], ...}; \
        --junit FILE also writes a JUnit XML report (one test case per budget).

        Examples:
          vernier check Models/resnet_mini.onnx --latency-ms 5 --memory-mb 64
          vernier check model.onnx --budget budget.yaml --junit check.xml
          vernier check model.onnx --latency-ms 20 --percentile 99 --format json
          vernier check model.onnx --latency-ms 50 --device rpi5 --threads 4
        """
    )

    @OptionGroup var model: ModelOptions
    @OptionGroup var data: InputDataOptions

    @Option(name: .customLong("latency-ms"), help: ArgumentHelp("Limit on the end-to-end latency, ms.", valueName: "MS"))
    var latencyMs: Double?

    @Option(help: "Which latency percentile the limit applies to: 50, 90 or 99 (default 90).")
    var percentile: Int?

    @Option(name: .customLong("memory-mb"), help: ArgumentHelp("Limit on peak memory, MiB.", valueName: "MB"))
    var memoryMB: Double?

    @Option(name: .customLong("size-mb"), help: ArgumentHelp("Limit on the model's size on disk, MiB.", valueName: "MB"))
    var sizeMB: Double?

    @Option(help: ArgumentHelp("Budget file (YAML or JSON); flags override its values.", valueName: "FILE"))
    var budget: String?

    @Option(help: ArgumentHelp("host (default): measure on this machine; any other device profile (rpi4, a stored name, a file): predict, see `vernier predict`.", valueName: "NAME"))
    var device: String?

    @Option(help: "Threads for the kernels (default: the budget's, else all cores).")
    var threads: Int?

    @Option(name: .customLong("max-memory"), help: ArgumentHelp("Refuse models whose planned memory exceeds this many MiB.", valueName: "MB"))
    var maxMemoryMB: Double?

    @OptionGroup var measuring: MeasuringOptions

    @Option(help: "Output format: table, csv, json or md.")
    var format: OutputFormat = .table

    @Option(help: ArgumentHelp("Also write a JUnit XML report.", valueName: "FILE"))
    var junit: String?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        var limits = Budget()
        if let budget { limits = try Budget.load(path: budget) }
        let flags = Budget(latencyMs: latencyMs, percentile: percentile ?? 90, memoryMiB: memoryMB, sizeMiB: sizeMB,
                           threads: threads, device: device)
        limits = try limits.overridden(by: flags, percentileGiven: percentile != nil).validated(source: "the command line")
        guard limits.hasLimits else {
            throw CommandError("no budget given: use --latency-ms, --memory-mb, --size-mb or --budget FILE")
        }
        if let name = limits.device, !DeviceSelection.isHost(name) {
            // Another device: predicted from its profile, nothing runs.
            let analyzed = try model.analyze()
            let (profile, _) = try DeviceSelection.load(name)
            let prediction = DeviceSelection.predict(analyzed, on: profile, threads: limits.threads ?? profile.cores)
            let verdict = BudgetVerdict.evaluate(prediction, against: limits)
            let report = VerdictReport(verdict)
            FileHandle.standardOutput.write(Data(report.render(format).utf8))
            if let junit { try AtomicFile.write(Data(report.junit().utf8), to: junit) }
            if !verdict.pass { throw ExitCode(1) }
            return
        }
        var threading = RuntimeOptions()
        threading.threads = limits.threads
        threading.maxMemoryMB = maxMemoryMB
        var measuring = measuring
        // The verdict has no roofline columns: do not measure the host for them.
        if measuring.deviceProfile == nil { measuring.noRoofline = true }
        let session = try MeasuringSession(model: model, data: data, threading: threading, measuring: measuring)
        let verdict = BudgetVerdict.evaluate(session.profile, against: limits)
        let report = VerdictReport(verdict)
        FileHandle.standardOutput.write(Data(report.render(format).utf8))
        if let junit { try AtomicFile.write(Data(report.junit().utf8), to: junit) }
        try session.finish()
        if !verdict.pass { throw ExitCode(1) }
    }
}
