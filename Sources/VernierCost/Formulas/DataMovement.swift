import Foundation
import VernierGraph

/// Data movement costs no FLOPs, only its bytes; Resize interpolates: linear mode
/// 3 FLOPs per lerp and 2^n - 1 lerps per output element over n resized axes, cubic
/// 2 x 4^n (a 4-tap multiply-add per axis combination), nearest nothing.
enum DataMovementCosts {
    static var all: [String: CostFormula] {
        var formulas: [String: CostFormula] = [:]
        for op in ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
                   "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Scatter", "Expand", "Tile", "Pad",
                   "DepthToSpace", "SpaceToDepth", "Compress", "NonMaxSuppression", "GridSample", "RoiAlign"] {
            formulas[op] = { _ in .free }
        }
        formulas["Resize"] = resize
        formulas["Upsample"] = resize
        return formulas
    }

    static func resize(_ ctx: CostContext) -> OpCost? {
        guard let x = ctx.shape(input: 0), let y = ctx.shape(output: 0), let outputs = ctx.elements() else { return nil }
        let mode = (try? ctx.node.string("mode", default: "nearest")) ?? "nearest"
        let resized = Double(zip(x, y).filter { $0 != $1 }.count)
        switch mode {
        case "linear", "bilinear", "trilinear":
            return OpCost(flops: outputs * Cost(3 * (pow(2, resized) - 1)))
        case "cubic", "bicubic":
            return OpCost(flops: outputs * Cost(2 * pow(4, resized)))
        default:
            return .free
        }
    }
}
