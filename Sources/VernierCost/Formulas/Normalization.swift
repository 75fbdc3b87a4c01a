import VernierGraph

/// Normalization and softmax, FLOPs per element:
/// BatchNormalization 2 (as executed: per-channel scale and shift, constants folded);
/// LayerNormalization / InstanceNormalization / GroupNormalization 7 (mean, subtract,
/// square, variance sum, scale by 1/std, multiply gamma, add beta); Softmax and
/// LogSoftmax 5 (max, subtract, exp, sum, divide or log); LpNormalization 3; LRN 4 +
/// its window size.
enum NormalizationCosts {
    static let perElement: [String: Double] = [
        "BatchNormalization": 2, "LayerNormalization": 7, "InstanceNormalization": 7,
        "GroupNormalization": 7, "RMSNormalization": 5, "MeanVarianceNormalization": 6,
        "LpNormalization": 3, "Softmax": 5, "LogSoftmax": 5, "Hardmax": 1,
    ]

    static var all: [String: CostFormula] {
        var formulas: [String: CostFormula] = [:]
        for (op, n) in perElement {
            formulas[op] = { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(n)) } }
        }
        formulas["LRN"] = { ctx in
            let size = Double((try? ctx.node.int("size", default: 1)) ?? 1)
            return ctx.elements().map { OpCost(flops: $0 * Cost(4 + size)) }
        }
        return formulas
    }
}
