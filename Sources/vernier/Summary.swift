import ArgumentParser
import VernierCost
import VernierGraph
import VernierReport

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Static summary of a model: header, one row per node, totals. Runs nothing.",
        discussion: """
        Shapes are inferred with Vernier's own rules (libonnx fills in ops without one). \
        Dynamic dims stay symbolic unless bound with --input or --dim, and the output says \
        which are left. Ops without a shape rule are listed; they never stop the summary.

        Params count the elements of weight initializers (floating-point and 8-bit), \
        each shared weight once in the totals; int64/int32 shape and index tensors are not params.

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
