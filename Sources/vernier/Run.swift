import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierRuntime

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model once on the native executor and print its outputs.",
        discussion: """
        Inputs are random by default (fixed seed, so every run sees the same data): floats \
        uniform in [-1, 1); integer inputs used as Gather indices (token ids) stay below the \
        embedding's size, inputs named like a mask are all ones, other integers are 0 or 1. \
        Give real data with --input-data: a .npz whose array names are the input names, or a \
        .npy for a model with one input. The data's shapes bind the input shapes.

        Every op must have a kernel; otherwise the command exits 2 naming the missing ops \
        (`vernier summary` still gives the static costs of such a model).

        With --repeat, stderr gets the latency over the repeated runs and the start-up: the \
        time to load and infer the model, to plan it (graph passes, memory plan, kernels with \
        their packed weights) and the first run.

        Examples:
          vernier run Models/resnet_mini.onnx
          vernier run Models/bert_mini.onnx --dim batch=1 --dim seq=32 --threads 1
          vernier run model.onnx --input-data inputs.npz --save-outputs outputs.npz
          vernier run model.onnx --repeat 20
        """
    )

    @OptionGroup var model: ModelOptions

    @OptionGroup var data: InputDataOptions
    @OptionGroup var threading: RuntimeOptions

    @Option(name: .customLong("save-outputs"), help: ArgumentHelp(
        "Write every output to FILE as a .npz (numpy.load reads it).", valueName: "FILE.npz"))
    var saveOutputs: String?

    @Option(name: .customLong("save-inputs"), help: ArgumentHelp(
        "Write the inputs fed to the model to FILE as a .npz (to replay them in another runtime).", valueName: "FILE.npz"))
    var saveInputs: String?

    @Option(name: .customLong("repeat"), help: ArgumentHelp(
        "After the first run, time this many more runs (after --warmup untimed ones) and print latency and memory to stderr.",
        valueName: "N"))
    var repeatCount: Int = 0

    @Option(help: "Untimed runs before the --repeat ones.")
    var warmup: Int = 2

    @Option(help: "Values printed per output.")
    var show: Int = 8

    func validate() throws {
        if show < 0 { throw ValidationError("--show must be 0 or more") }
        if repeatCount < 0 || warmup < 0 { throw ValidationError("--repeat and --warmup must be 0 or more") }
    }

    func run() throws {
        threading.apply()
        let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }
        let started = clock()
        let (analyzed, feeds) = try data.analyzeAndFeed(model)
        let loaded = clock()
        if let saveInputs {
            let arrays = analyzed.inferred.graph.runtimeInputs.compactMap { input in feeds[input.name].map { (name: input.name, tensor: $0) } }
            try AtomicFile.write(Data(try NumPyFormat.writeArchive(arrays)), to: saveInputs)
        }
        let savedInputs = clock()
        let plan = try ExecutionPlan.compile(analyzed.inferred, opsets: analyzed.model.opsets, options: threading.executionOptions)
        let planned = clock()
        let outputs = try plan.run(feeds)
        let firstRun = clock() - planned

        var text = ""
        for name in plan.outputNames {
            guard let tensor = outputs[name] else { continue }
            text += "\(name)  \(tensor.elementType)\(tensor.shape)  \(Self.preview(tensor, count: show))\n"
        }
        FileHandle.standardOutput.write(Data(text.utf8))
        if repeatCount > 0 {
            for _ in 0..<warmup { _ = try plan.run(feeds) }
            var milliseconds: [Double] = []
            for _ in 0..<repeatCount {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try plan.run(feeds)
                milliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            // The same statistics as `vernier profile` (interpolated percentiles).
            let stats = LatencyStats(milliseconds: milliseconds)
            let mb = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1e6) }
            let line = String(format: "latency: median %.3f ms, p90 %.3f ms, min %.3f ms over %d runs (%d threads); ",
                              stats.median, stats.p90, stats.min, stats.count, ThreadPool.threadCount)
                + "\(plan.steps.count) kernels, \(plan.channelBlockedValues.count) blocked activations"
                + (plan.channelsLastValues.isEmpty ? "; " : ", \(plan.channelsLastValues.count) channels-last; ")
                + "arena \(mb(plan.arenaBytes)), weights \(mb(plan.constantBytes)), peak RSS \(ProcessMemory.peakResidentBytes.map(mb) ?? "unknown")\n"
            // Start-up: what a one-shot run pays before its first result.
            let startup = String(format: "start-up: load and infer %.1f ms, plan %.1f ms, first run %.1f ms\n",
                                 loaded - started, planned - savedInputs, firstRun)
            FileHandle.standardError.write(Data((line + startup).utf8))
        }
        if let saveOutputs {
            let arrays = plan.outputNames.compactMap { name in outputs[name].map { (name: name, tensor: $0) } }
            try AtomicFile.write(Data(try NumPyFormat.writeArchive(arrays)), to: saveOutputs)
        }
    }

    /// The first `count` values, e.g. `[0.1234, -0.5, ...]`.
    static func preview(_ tensor: Tensor, count: Int) -> String {
        guard count > 0 else { return "" }
        let values: [String]
        if tensor.elementType.isFloatingPoint, let d = tensor.doubles() {
            values = d.prefix(count).map { String(format: "%.6g", $0) }
        } else if let i = tensor.integers() {
            values = i.prefix(count).map(String.init)
        } else {
            return "(\(tensor.elementType) values not shown)"
        }
        return "[" + values.joined(separator: ", ") + (tensor.elementCount > count ? ", ..." : "") + "]"
    }
}
