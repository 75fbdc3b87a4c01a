import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierReport
import VernierRuntime

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict a model's latency on a device, layer by layer, without running it there.",
        discussion: """
        Each kernel the executor would run (the same fused groups `vernier profile` \
        measures) gets a predicted time: its time at the device's roofline for its \
        intensity (max(ops / peak, bytes / bandwidth) at --threads), divided by the \
        efficiency its op class reaches at that size on the device (the profile's \
        curves), plus the per-kernel overhead; the total adds the per-run overhead. \
        The table has the profile's shape with the predicted time in place of measured \
        figures; --format json writes `vernier.predict/1` with `predicted_ms` per node.

        Devices: `host` (this machine, measured once, see `vernier device --measure`), the \
        built-ins (rpi4, rpi5, orin-nano, laptop-x86: spec-derived), a stored NAME.json, or \
        a file. A profile nobody calibrated predicts with prior efficiencies, and the \
        output says so: calibrate it with `vernier device --calibrate NAME --from ...` on \
        profiles measured there (Vernier's, or ONNX Runtime's profiler traces). \
        `vernier device --accuracy` measures how close the predictions come.

        Every dim must be bound (--input, --dim) for the costs to be numbers.

        Examples:
          vernier predict Models/resnet_mini.onnx --device rpi4 --threads 4
          vernier predict Models/bert_mini.onnx --dim batch=1 --dim seq=128 --device host --format json
          vernier predict model.onnx --device mybox.json --top 10
        """
    )

    @OptionGroup var model: ModelOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The device: host, a built-in (rpi4, rpi5, orin-nano, laptop-x86), a stored profile name or a file.", valueName: "NAME|FILE"))
    var device: String = DeviceProfileStore.hostName

    @Option(help: "Threads on the device (default: all its cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Show only the K rows with the largest predicted latency.", valueName: "K"))
    var top: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        // The model first: a bad path fails at once, before any measuring.
        let analyzed = try model.analyze()
        let (profile, origin) = try DeviceSelection.load(device)
        let prediction = DeviceSelection.predict(analyzed, on: profile, threads: threads ?? profile.cores)
        try output.emit(PredictionReport(prediction, deviceOrigin: origin, top: top).render)
    }
}

/// `--device NAME` for the commands that predict: the host's measured profile, or a
/// stored / built-in / file profile.
enum DeviceSelection {
    /// Whether `name` means this machine (measured, not predicted).
    static func isHost(_ name: String) -> Bool { name == DeviceProfileStore.hostName }

    /// The profile and where it came from. The host's is measured now when none usable
    /// is stored.
    static func load(_ name: String) throws -> (DeviceProfile, String) {
        if isHost(name) {
            // Measuring sizes the thread pool per thread count; the caller's stays.
            let previous = ThreadPool.threadCount
            defer { ThreadPool.setThreadCount(previous) }
            let host = try DeviceProfileStore.hostProfile {
                FileHandle.standardError.write(Data("vernier: measuring this machine's roofline once (about 3 s); `vernier device --show` prints it\n".utf8))
                return try HostProbe.measure()
            }
            return (host.profile, host.path ?? "measured now, not saved")
        }
        let store = DeviceProfileStore.standard
        return (try store.load(nameOrPath: name), store.origin(of: name))
    }

    /// The prediction of an analyzed model's kernels on `device`.
    static func predict(_ analyzed: AnalyzedModel, on device: DeviceProfile, threads: Int) -> LatencyPrediction {
        prediction(table: CostModel.table(for: analyzed), model: analyzed, on: device, threads: threads)
    }

    /// The prediction of the kernels the executor would run for `model` with costs from
    /// `table`, laid out as the executor would lay them out with the device's channel
    /// block: its copy-free steps (in-place Concats, views) at their fixed cost, and,
    /// when the device's blocks are this machine's, the layout reorders its kernels make
    /// here. Both are read from a plan compiled for the purpose when the blocks match;
    /// otherwise (or when it cannot be compiled) the copy-free steps come from the
    /// layouts alone and there are no reorders.
    static func prediction(table: CostTable, model: AnalyzedModel, on device: DeviceProfile, threads: Int) -> LatencyPrediction {
        let optimized = GraphPasses.optimize(model.inferred)
        let plan = device.channelBlock == preferredChannelBlock
            ? try? ExecutionPlan.compile(model.inferred, opsets: model.model.opsets) : nil
        let copyFree = plan?.copyFreeSteps ?? ExecutionPlan.copyFreeSteps(optimized, channelBlock: device.channelBlock)
        return LatencyPrediction.build(table: table, optimized: optimized, device: device, threads: threads, copyFree: copyFree,
                                       relayoutBytes: plan?.relayoutBytes.mapValues(Double.init) ?? [:],
                                       implementations: plan?.implementations ?? [:])
    }
}
