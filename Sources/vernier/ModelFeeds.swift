import ArgumentParser
import Foundation
import VernierGraph
import VernierRuntime

/// `--input-data` and `--seed`: where a command that executes a model gets its inputs.
struct InputDataOptions: ParsableArguments {
    @Option(name: .customLong("input-data"), help: ArgumentHelp(
        "Feed these arrays (.npz by input name, or .npy for a one-input model); their shapes bind the input shapes.",
        valueName: "FILE"))
    var inputData: String?

    @Option(help: "Seed for the random inputs.")
    var seed: UInt64 = 0x5EED

    /// Analyzes the model with the data's shapes bound, and returns the inputs to feed:
    /// the given arrays, checked against the graph, or random ones.
    func analyzeAndFeed(_ model: ModelOptions) throws -> (analyzed: AnalyzedModel, feeds: [String: Tensor]) {
        var options = model
        var given: [(name: String, tensor: Tensor)]?
        if let inputData {
            var arrays = try NumPyFormat.read(path: inputData)
            // A lone .npy feeds the model's only input, whatever the file is called.
            if inputData.hasSuffix(".npy"), arrays.count == 1 {
                let loaded = try ModelLoader().load(path: model.model)
                let inputs = loaded.graph.runtimeInputs
                guard inputs.count == 1 else {
                    throw CommandError("a .npy holds one array but the model has \(inputs.count) inputs; use a .npz with arrays named "
                                       + inputs.map(\.name).joined(separator: ", "))
                }
                arrays[0].name = inputs[0].name
            }
            for (name, tensor) in arrays where !options.inputs.contains(where: { $0.name == name }) {
                if let binding = InputBinding(argument: "\(name)=" + tensor.shape.map(String.init).joined(separator: "x")) {
                    options.inputs.append(binding)
                }
            }
            given = arrays
        }
        let analyzed = try options.analyze()
        let feeds = try given.map { try ModelInputs.check($0, against: analyzed.inferred) }
            ?? ModelInputs.random(for: analyzed.inferred, seed: seed)
        return (analyzed, feeds)
    }
}

/// `--threads` and `--max-memory`, shared by the commands that execute a model.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("max-memory"), help: ArgumentHelp(
        "Refuse to run a model whose planned activations plus weights exceed this many MiB (default: 80% of physical memory).",
        valueName: "MB"))
    var maxMemoryMB: Double?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let maxMemoryMB, !(maxMemoryMB > 0 && maxMemoryMB < 1e12) { throw ValidationError("--max-memory must be a positive number of MiB") }
    }

    /// How plans are compiled: the memory limit.
    var executionOptions: ExecutionOptions {
        var options = ExecutionOptions()
        if let maxMemoryMB { options.maxMemoryBytes = Int(maxMemoryMB * 1_048_576) }
        return options
    }

    /// Sizes the thread pool; returns the count.
    @discardableResult
    func apply() -> Int {
        ThreadPool.setThreadCount(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        return ThreadPool.threadCount
    }
}
