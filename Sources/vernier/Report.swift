import ArgumentParser
import Foundation
import VernierCost
import VernierReport

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure one or more models and write a self-contained HTML report with charts.",
        discussion: """
        One model is measured as `vernier profile` measures it; several are measured as \
        `vernier compare` does (loaded first, then in interleaved rounds, outputs compared \
        on the baseline's inputs). The report is one HTML file with its style sheet, SVG \
        charts and a small table-sorting script inline: it loads nothing from the network, \
        so it can be attached to a CI run or mailed and opened in any browser.

        For each model: the header and totals (end-to-end latency median, p90 and p99, the \
        sum of the node medians and its overhead, params, MACs, weight bytes, planned arena, \
        measured peak RSS); a bar chart of the 15 slowest layers; cost by op type (share of \
        time next to share of FLOPs); a roofline chart (log-log: intensity in FLOP/byte \
        across, achieved GFLOP/s up, one point per layer coloured by its bound; against \
        the host's stored roofs or --device-profile's, none with --no-roofline); the \
        memory timeline (live activation bytes after each step, \
        peak marked); and the full per-layer table, which sorts by a click on a column \
        header. Hover a bar or point for its details.

        With several models, a comparison comes first: each total with its delta against \
        the baseline (--baseline, default the first model), latency per model end to end \
        and by op type, and output agreement; each model's own sections follow, folded.

        Ctrl-C stops measuring and writes the report of the runs done so far, marked \
        partial (exit 130). `vernier profile --html FILE` writes the same report for one \
        model alongside its other outputs.

        Examples:
          vernier report Models/resnet_mini.onnx -o resnet_mini.html
          vernier report model.onnx --device-profile dev.json --threads 1 -o report.html
          vernier report a.onnx pruned.onnx int8.onnx --baseline a.onnx -o variants.html
        """
    )

    @Argument(help: "One or more .onnx models.")
    var models: [String]

    @Option(name: [.short, .long], help: ArgumentHelp("Write the HTML report to FILE (required).", valueName: "FILE.html"))
    var output: String

    @Option(help: ArgumentHelp("With several models, the one the others are compared with (default: the first).", valueName: "MODEL"))
    var baseline: String?

    @OptionGroup var bindings: SharedBindings

    @OptionGroup var data: InputDataOptions
    @OptionGroup var threading: RuntimeOptions
    @OptionGroup var measuring: MeasuringOptions

    func validate() throws {
        if models.isEmpty { throw ValidationError("give at least one model") }
        if let baseline, ComparingSession.index(of: baseline, in: models) == nil {
            throw ValidationError("--baseline \(baseline) is not one of the models given")
        }
    }

    func run() throws {
        if models.count == 1 {
            let model = try ModelOptions.binding(models[0], inputs: bindings.inputs, dims: bindings.dims)
            let session = try MeasuringSession(model: model, data: data, threading: threading, measuring: measuring)
            try write(HTMLReport(profiles: [session.profile]))
            try session.finish()
        } else {
            let base = baseline.flatMap { ComparingSession.index(of: $0, in: models) } ?? 0
            let session = try ComparingSession(models: models, baseline: base, inputs: bindings.inputs, dims: bindings.dims, data: data,
                                               threading: threading, measuring: measuring)
            try write(HTMLReport(profiles: session.comparison.profiles, comparison: session.comparison))
            try session.finish()
        }
    }

    private func write(_ report: HTMLReport) throws {
        try AtomicFile.write(Data(report.render().utf8), to: output)
    }
}
