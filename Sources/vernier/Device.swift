import ArgumentParser
import Foundation
import VernierCost
import VernierReport
import VernierRuntime

/// `--threads 1,2`
struct ThreadCountList: ExpressibleByArgument {
    var counts: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= HostProbe.maxThreads }) else { return nil }
        counts = parts.compactMap { $0 }
    }
}

/// `vernier device --format`: the profile's table or its JSON file.
enum DeviceFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// `--statistic median|min` of calibration and accuracy.
extension MeasuredStatistic: ExpressibleByArgument {}

struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Device profiles: measure this machine's roofline, list and show profiles, calibrate prediction, measure its accuracy.",
        discussion: """
        The profiler places each layer on the roofline of the machine it runs on: a layer \
        doing I FLOPs per byte it moves can run at most at min(peak, I x bandwidth). \
        `vernier device --measure` measures those roofs once and stores them; later \
        commands read the stored profile and measure again only when it was made on \
        another CPU model or core count.

        What is measured, at each thread count (default: 1 to the number of cores up \
        to 8 cores; beyond, 1, 2, 4, ... and all cores), on the OpenMP threads the \
        executor uses:
          fp32 peak   independent 8-lane fused multiply-adds on every thread (what
                      the cores can do), or a 1024 x 1024 x 1024 GEMM on oneDNN
                      (FLOPs = 2 x M x N x K; 512 or 256 on a slow machine) if faster
          int8 peak   the same GEMM with u8 x s8 -> s32 operands, ops = 2 x MACs;
                      left out when oneDNN has no fast kernel for it on this CPU
          bandwidth   a copy between two buffers of max(256 MiB, 4 x L3) each,
                      split over the threads; GB/s = (bytes read + written) / 1e9 / s
        Each figure is measured for about 0.25 s (--seconds) after a warm-up, and the \
        best of several timed batches is kept; the whole run takes about 2 s on 2 cores. \
        Other work on the machine lowers the figures: measure on a quiet machine. The \
        CPU model, cores, instruction sets and caches come from /proc/cpuinfo and \
        /sys/devices/system/cpu/cpu0/cache.

        Where profiles live: NAME.json in $VERNIER_DEVICE_DIR if set, else \
        $XDG_CONFIG_HOME/vernier/devices, else ~/.config/vernier/devices. This \
        machine's is host.json. --show and --list read that folder; --show also takes \
        a path (anything with a / or ending in .json).

        The file (JSON, schema vernier.device/1; fields are added, never renamed):
          schema          "vernier.device/1"
          name            the profile's name ("host" for this machine)
          cpu             the processor's model name
          source          "measured" (this command) or "spec-derived" (spec sheet)
          measured_at     when, ISO 8601 UTC
          cores           logical cores the OS reports
          isa             instruction sets the kernels care about (avx2, fma, ...)
          caches          l1d_bytes, l2_bytes (per core), l3_bytes; absent if unknown
          roofs[]         one per thread count, ascending:
            threads         the thread count
            fp32_gflops     peak fp32 GFLOP/s
            int8_gops       peak int8 GOP/s; absent when not measured
            bandwidth_gbps  copy bandwidth in GB/s (read + written)
          notes           how the figures were obtained
        A layer's roofline at T threads uses the roof for T (else the nearest lower \
        count); its ridge point, fp32_gflops / bandwidth_gbps FLOPs per byte, \
        separates memory-bound from compute-bound layers.

        Built-in profiles (rpi4, rpi5, orin-nano, laptop-x86) are derived from public specs \
        (their notes give the arithmetic) and are uncalibrated: `vernier predict` on them uses \
        prior efficiencies and says so. A stored NAME.json overrides the built-in of that name.

        Calibration (--calibrate PROFILE --from FILE...): fits the efficiency curves of PROFILE \
        (default host) on measured profiles: Vernier's JSON profiles (`vernier profile --format \
        json -o F.json`, which record their thread count) and ONNX Runtime profiler traces \
        (SessionOptions.enable_profiling; the trace does not record threads, give \
        --ort-threads). Each file's model is its name up to the first dot (resnet18.t2.json is \
        resnet18). The fitted profile is saved as NAME.json in the profile folder (or --output) \
        and lists the models it was fitted on.

        Accuracy (--accuracy PROFILE --from FILE...): leave-one-out: for each model, calibrate \
        on all the others and predict it; prints the error of each model's end-to-end latency \
        and of each layer, the share within 10% and 20%, and the RMSPE. With --rows R.json...: \
        predict each model from Vernier's kernels (R, its Vernier profile) against the latency \
        measured in its --from file (e.g. ONNX Runtime's). \
        --statistic min reads every kernel's and run's fastest time instead of the median, \
        in calibration and truth alike: on a machine other work shares, medians move with \
        that work from one profile to the next, fastest runs much less.

        Examples:
          vernier device --measure
          vernier device --measure --threads 1,2 --output mybox.json
          vernier device --show                       # this machine's stored profile
          vernier device --show rpi4 --format json    # stored rpi4.json, else the built-in
          vernier device --list
          vernier device --calibrate rpi5 --from ort_resnet18.json --from ort_bert.json --ort-threads 4
          vernier device --accuracy host --from profiles/*.json
        """
    )

    @Flag(help: "Measure this machine and save its profile (host.json in the profile folder unless --output).")
    var measure = false

    @Flag(help: "Print a stored profile: PROFILE, or this machine's when none is given (the default action).")
    var show = false

    @Flag(help: "List the profiles in the profile folder and the built-in ones.")
    var list = false

    @Flag(help: "Fit PROFILE's efficiency curves on measured profiles (--from) and save it.")
    var calibrate = false

    @Flag(help: "Leave-one-out accuracy of prediction on PROFILE over measured profiles (--from).")
    var accuracy = false

    @Argument(help: ArgumentHelp("With --show, --calibrate, --accuracy: a profile name (stored NAME.json, else built-in) or a file path; default host.",
                                 valueName: "PROFILE"))
    var profile: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("With --calibrate / --accuracy: measured profiles (Vernier JSON or ONNX Runtime traces).", valueName: "FILE"))
    var from: [String] = []

    @Option(parsing: .upToNextOption, help: ArgumentHelp("With --accuracy: Vernier profiles whose kernels are predicted, against the latency in the --from file of the same model.", valueName: "FILE"))
    var rows: [String] = []

    @Option(name: .customLong("ort-threads"), help: ArgumentHelp("Threads ONNX Runtime traces in --from were measured with.", valueName: "N"))
    var ortThreads: Int = 1

    @Option(help: ArgumentHelp("With --calibrate / --accuracy: which time of each kernel and run in the --from (and --rows) files to read: median (what the profile reports) or min (the fastest run; on a machine other work shares, the one closest to the machine's own speed)."))
    var statistic: MeasuredStatistic = .median

    @Option(name: [.short, .long], help: ArgumentHelp("With --measure: save the profile to FILE instead.", valueName: "FILE"))
    var output: String?

    @Option(help: ArgumentHelp("With --measure: the thread counts to measure, comma-separated.", valueName: "N,N..."))
    var threads: ThreadCountList?

    @Option(help: ArgumentHelp("With --measure: seconds each figure is measured for at each thread count.", valueName: "S"))
    var seconds: Double = 0.25

    @Option(help: "Output format: table or json (the profile file itself).")
    var format: DeviceFormat = .table

    func validate() throws {
        if [measure, show, list, calibrate, accuracy].filter({ $0 }).count > 1 {
            throw ValidationError("give one of --measure, --show, --list, --calibrate and --accuracy")
        }
        if profile != nil && (measure || list) {
            throw ValidationError("a profile name or path goes with --show, --calibrate or --accuracy")
        }
        if !(measure || calibrate) && output != nil {
            throw ValidationError("--output goes with --measure or --calibrate")
        }
        if !measure && threads != nil {
            throw ValidationError("--threads goes with --measure only")
        }
        if (calibrate || accuracy) && from.isEmpty {
            throw ValidationError("--\(calibrate ? "calibrate" : "accuracy") needs measured profiles: --from FILE...")
        }
        if !(calibrate || accuracy) && !from.isEmpty {
            throw ValidationError("--from goes with --calibrate or --accuracy")
        }
        if !accuracy && !rows.isEmpty { throw ValidationError("--rows goes with --accuracy only") }
        if !(calibrate || accuracy) && statistic != .median {
            throw ValidationError("--statistic goes with --calibrate or --accuracy")
        }
        if ortThreads < 1 { throw ValidationError("--ort-threads must be at least 1") }
        if !(seconds.isFinite && seconds > 0 && seconds <= 60) {
            throw ValidationError("--seconds must be more than 0 and at most 60")
        }
    }

    func run() throws {
        let store = DeviceProfileStore.standard
        if measure { return try runMeasure(store) }
        if calibrate { return try runCalibrate(store) }
        if accuracy { return try runAccuracy(store) }
        if list {
            let entries = store.list()
            emit(format == .json ? DeviceReport.listJSON(entries, directory: store.directory)
                                 : DeviceReport.listTable(entries, directory: store.directory))
            return
        }
        let nameOrPath = profile ?? DeviceProfileStore.hostName
        let loaded = try store.load(nameOrPath: nameOrPath)
        try print(loaded, path: store.origin(of: nameOrPath))
    }

    private func runMeasure(_ store: DeviceProfileStore) throws {
        // Progress only for a person watching; scripts and pipes get the result alone.
        let progress: ((String) -> Void)? = isatty(2) != 0
            ? { FileHandle.standardError.write(Data(("  " + $0 + "\n").utf8)) }
            : nil
        progress?("measuring this machine (about \(String(format: "%.0f", estimatedSeconds())) s)")
        let measured = try HostProbe.measure(threadCounts: threads?.counts, secondsPerPoint: seconds, progress: progress)
        let path = output ?? store.hostProfilePath
        do {
            try store.save(measured, to: path)
        } catch {
            // Show what was measured before failing, so the run is not lost.
            try print(measured, path: nil)
            throw CommandError("\(error); give a writable --output FILE or set VERNIER_DEVICE_DIR")
        }
        try print(measured, path: path)
    }

    /// The profile to calibrate or evaluate: the named one; for the host, the stored
    /// measurement, measured now when there is none usable.
    private func baseProfile(_ store: DeviceProfileStore) throws -> DeviceProfile {
        let name = profile ?? DeviceProfileStore.hostName
        if name == DeviceProfileStore.hostName {
            return try DeviceProfileStore.hostProfile { try HostProbe.measure() }.profile
        }
        return try store.load(nameOrPath: name)
    }

    private func readSamples(_ paths: [String]) throws -> [ModelSamples] {
        try paths.map { try ModelSamples.read(path: $0, ortThreads: ortThreads, statistic: statistic) }
    }

    private func runCalibrate(_ store: DeviceProfileStore) throws {
        let base = try baseProfile(store)
        let sets = try readSamples(from)
        let fitted = try base.calibrated(on: sets, fittedAt: ISO8601DateFormatter().string(from: Date()))
        let path = output ?? store.path(forName: base.name)
        try store.save(fitted, to: path)
        try print(fitted, path: path)
    }

    private func runAccuracy(_ store: DeviceProfileStore) throws {
        let base = try baseProfile(store)
        let measured = try readSamples(from)
        let result: PredictionAccuracy
        if rows.isEmpty {
            result = try PredictionAccuracy.leaveOneOut(base: base, calibration: measured, targets: measured)
        } else {
            let targets = try readSamples(rows)
            result = try PredictionAccuracy.leaveOneOut(base: base, calibration: measured, targets: targets, truth: measured)
        }
        guard !result.models.isEmpty else {
            throw CommandError("no model could be held out: each needs a measured end-to-end latency (and with --rows, a --from file of the same model and thread count)")
        }
        let report = AccuracyReport(result, device: base.name, statistic: statistic)
        emit(format == .json ? report.json().serialized() + "\n" : report.markdown())
    }

    /// Three figures per thread count, plus about a second of set-up.
    private func estimatedSeconds() -> Double {
        let counts = threads?.counts.count
            ?? HostProbe.defaultThreadCounts(cores: ProcessInfo.processInfo.activeProcessorCount).count
        return 3 * Double(counts) * seconds * 1.3 + 0.5
    }

    private func print(_ profile: DeviceProfile, path: String?) throws {
        switch format {
        case .json: FileHandle.standardOutput.write(try profile.jsonData())
        case .table: emit(DeviceReport(profile, path: path).table())
        }
    }

    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
