import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierReport

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Static cost of a model: one row per node with shapes, params, MACs, FLOPs, bytes, memory. Runs nothing.",
        discussion: """
        Shapes are inferred with Vernier's own rules (libonnx fills in ops without one). \
        Dynamic dims stay symbolic unless bound with --input or --dim, and the output says \
        which are left. Ops without a shape rule are listed; they never stop the summary.

        Costs that depend on unbound dims are printed as polynomials in them \
        (e.g. 768*batch*seq^2 + 21.7M*batch*seq); binding the dims evaluates them. \
        Peak activation memory comes from the memory planner (lifetimes, in-place reuse, \
        aliases, one arena) and needs every dim bound.

        \(CountingConventions.text)

        Examples:
          vernier summary Models/resnet_mini.onnx
          vernier summary Models/bert_mini.onnx --dim batch=1 --dim seq=128 --format json
          vernier summary model.onnx --input input_ids=1x128 --format csv -o summary.csv
        """
    )

    @OptionGroup var model: ModelOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Print the time each stage took (load, validate, infer, cost, render) to stderr.")
    var timings = false

    func run() throws {
        let analyzed = try model.analyze()
        var clock = StageClock()
        let table = CostModel.table(for: analyzed)
        clock.lap("cost and memory plan")
        let report = SummaryReport(table)
        var rendered: [OutputFormat: String] = [:]
        for path in output.output.isEmpty ? [nil] : output.output.map(Optional.some) {
            let format = output.format(for: path)
            if rendered[format] == nil { rendered[format] = report.render(format) }
        }
        clock.lap("render")
        try output.emit { rendered[$0] ?? report.render($0) }
        if timings {
            let laps = analyzed.stageSeconds + clock.laps
            let lines = laps.map { String(format: "  %-22@ %8.2f ms", $0.stage as NSString, $0.seconds * 1000) }
            let total = laps.reduce(0) { $0 + $1.seconds }
            let afterLoad = laps.filter { $0.stage != "load" }.reduce(0) { $0 + $1.seconds }
            FileHandle.standardError.write(Data(("timings:\n" + lines.joined(separator: "\n")
                + String(format: "\n  %-22@ %8.2f ms\n  %-22@ %8.2f ms\n", "total" as NSString, total * 1000,
                         "after load" as NSString, afterLoad * 1000)).utf8))
        }
    }
}
