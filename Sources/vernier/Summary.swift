import ArgumentParser
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

    func run() throws {
        let analyzed = try model.analyze()
        let table = CostModel.table(for: analyzed)
        try output.emit(SummaryReport(table).render(output.format))
    }
}
