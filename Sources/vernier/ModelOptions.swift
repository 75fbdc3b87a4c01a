import ArgumentParser
import Foundation
import VernierGraph
import VernierReport

/// `--input NAME=1x3x224x224`
struct InputBinding: ExpressibleByArgument {
    var name: String
    var dims: [Int]

    init?(argument: String) {
        guard let eq = argument.lastIndex(of: "=") else { return nil }
        name = String(argument[..<eq])
        let spec = argument[argument.index(after: eq)...]
        let parts = spec.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard !name.isEmpty, !spec.isEmpty, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        dims = parts.compactMap { $0 }
    }
}

/// `--dim SYMBOL=N`
struct DimBinding: ExpressibleByArgument {
    var symbol: String
    var value: Int

    init?(argument: String) {
        guard let eq = argument.lastIndex(of: "="), let v = Int(argument[argument.index(after: eq)...]), v >= 0 else { return nil }
        symbol = String(argument[..<eq])
        value = v
        if symbol.isEmpty { return nil }
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// The model path and the flags that bind its dynamic dims, shared by every command.
struct ModelOptions: ParsableArguments {
    @Argument(help: "Path to the .onnx model.")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp(
        "Bind an input's shape, e.g. --input input_ids=1x128. Repeatable.", valueName: "NAME=DIMS"))
    var inputs: [InputBinding] = []

    @Option(name: .customLong("dim"), help: ArgumentHelp(
        "Bind a symbolic dim everywhere, e.g. --dim seq=128. Repeatable.", valueName: "SYMBOL=N"))
    var dims: [DimBinding] = []

    @Option(name: .customLong("max-elements"), help: "Refuse values with more elements than this.")
    var maxElements: Int = 1 << 34

    /// The bindings; the same name given twice with different values is an error.
    func inferenceOptions() throws -> InferenceOptions {
        var o = InferenceOptions()
        for i in inputs {
            if let old = o.inputShapes[i.name], old != i.dims {
                throw CommandError("--input \(i.name) is given twice with different shapes")
            }
            o.inputShapes[i.name] = i.dims
        }
        for d in dims {
            if let old = o.dimBindings[d.symbol], old != d.value {
                throw CommandError("--dim \(d.symbol) is given twice (\(old) and \(d.value))")
            }
            o.dimBindings[d.symbol] = d.value
        }
        o.maxElements = maxElements
        return o
    }

    func analyze() throws -> AnalyzedModel {
        try ModelAnalyzer(inferenceOptions: try inferenceOptions()).analyze(path: model)
    }
}

extension ModelOptions {
    /// The options for `path` with shape bindings given once for several models (as if
    /// typed after each path).
    static func binding(_ path: String, inputs: [InputBinding], dims: [DimBinding]) throws -> ModelOptions {
        var arguments = [path]
        for i in inputs { arguments += ["--input", "\(i.name)=" + i.dims.map(String.init).joined(separator: "x")] }
        for d in dims { arguments += ["--dim", "\(d.symbol)=\(d.value)"] }
        return try ModelOptions.parse(arguments)
    }
}

/// `--input` and `--dim` applied to every model of a command that takes several.
struct SharedBindings: ParsableArguments {
    @Option(name: .customLong("input"), help: ArgumentHelp("Bind an input's shape in every model, e.g. --input input_ids=1x128.", valueName: "NAME=DIMS"))
    var inputs: [InputBinding] = []

    @Option(name: .customLong("dim"), help: ArgumentHelp("Bind a symbolic dim in every model, e.g. --dim seq=128.", valueName: "SYMBOL=N"))
    var dims: [DimBinding] = []
}

/// `--format` and `--output`, shared by every command that prints a table.
struct OutputOptions: ParsableArguments {
    @Option(help: "Output format: table, csv, json or md (default: from the --output file's extension, else table).")
    var format: OutputFormat?

    @Option(name: [.short, .long], help: ArgumentHelp(
        "Write to FILE instead of standard output; repeat to write several formats of one measurement (e.g. -o p.md -o p.json).",
        valueName: "FILE"))
    var output: [String] = []

    /// The format for `path`: --format when given, else the file's extension
    /// (.json, .csv, .md), else the terminal table.
    func format(for path: String?) -> OutputFormat {
        if let format { return format }
        guard let path else { return .table }
        switch (path as NSString).pathExtension.lowercased() {
        case "json": return .json
        case "csv": return .csv
        case "md", "markdown": return .md
        default: return .table
        }
    }

    /// Prints the rendering or writes one per `--output` file (atomically: a temporary
    /// file renamed into place, so an interrupted run never leaves half a file).
    func emit(_ render: (OutputFormat) -> String) throws {
        guard !output.isEmpty else {
            FileHandle.standardOutput.write(Data(render(format(for: nil)).utf8))
            return
        }
        for path in output { try AtomicFile.write(Data(render(format(for: path)).utf8), to: path) }
    }
}
