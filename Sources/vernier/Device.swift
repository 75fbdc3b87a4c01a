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

struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Measure this machine's roofline (peak GFLOP/s, memory bandwidth) or show stored device profiles.",
        discussion: """
        The profiler places each layer on the roofline of the machine it runs on: a layer \
        doing I FLOPs per byte it moves can run at most at min(peak, I x bandwidth). \
        `vernier device --measure` measures those roofs once and stores them; later \
        commands read the stored profile and measure again only when it was made on \
        another CPU model or core count.

        What is measured, at each thread count (default: 1 to the number of cores up \
        to 8 cores; beyond, 1, 2, 4, ... and all cores), on the OpenMP threads the \
        executor uses:
          fp32 peak   a 1024 x 1024 x 1024 GEMM on oneDNN (what Conv and MatMul run
                      on), FLOPs = 2 x M x N x K; 512 or 256 on a slow machine
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

        Examples:
          vernier device --measure
          vernier device --measure --threads 1,2 --output mybox.json
          vernier device --show                       # this machine's stored profile
          vernier device --show rpi4 --format json    # rpi4.json in the profile folder
          vernier device --list
        """
    )

    @Flag(help: "Measure this machine and save its profile (host.json in the profile folder unless --output).")
    var measure = false

    @Flag(help: "Print a stored profile: PROFILE, or this machine's when none is given (the default action).")
    var show = false

    @Flag(help: "List the profiles in the profile folder.")
    var list = false

    @Argument(help: ArgumentHelp("With --show: a profile name (NAME.json in the profile folder) or a file path.",
                                 valueName: "PROFILE"))
    var profile: String?

    @Option(name: [.short, .long], help: ArgumentHelp("With --measure: save the profile to FILE instead.", valueName: "FILE"))
    var output: String?

    @Option(help: ArgumentHelp("With --measure: the thread counts to measure, comma-separated.", valueName: "N,N..."))
    var threads: ThreadCountList?

    @Option(help: ArgumentHelp("With --measure: seconds each figure is measured for at each thread count.", valueName: "S"))
    var seconds: Double = 0.25

    @Option(help: "Output format: table or json (the profile file itself).")
    var format: DeviceFormat = .table

    func validate() throws {
        if [measure, show, list].filter({ $0 }).count > 1 {
            throw ValidationError("give one of --measure, --show and --list")
        }
        if profile != nil && (measure || list) {
            throw ValidationError("a profile name or path goes with --show only")
        }
        if !measure && (output != nil || threads != nil) {
            throw ValidationError("--output and --threads go with --measure only")
        }
        if !(seconds.isFinite && seconds > 0 && seconds <= 60) {
            throw ValidationError("--seconds must be more than 0 and at most 60")
        }
    }

    func run() throws {
        let store = DeviceProfileStore.standard
        if measure { return try runMeasure(store) }
        if list {
            let entries = store.list()
            emit(format == .json ? DeviceReport.listJSON(entries, directory: store.directory)
                                 : DeviceReport.listTable(entries, directory: store.directory))
            return
        }
        let nameOrPath = profile ?? DeviceProfileStore.hostName
        let loaded = try store.load(nameOrPath: nameOrPath)
        try print(loaded, path: store.resolve(nameOrPath))
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
