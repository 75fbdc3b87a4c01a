import Foundation
import VernierGraph

/// Reductions: one FLOP per input element (ReduceL2, ReduceSumSquare and
/// ReduceLogSumExp two), plus one per output element for the final divide, sqrt or log.
/// ArgMax/ArgMin compare each input element; TopK costs n x log2(k) per slice.
enum ReduceCosts {
    static let perInput: [String: (input: Double, output: Double)] = [
        "ReduceSum": (1, 0), "ReduceMax": (1, 0), "ReduceMin": (1, 0), "ReduceProd": (1, 0),
        "ReduceMean": (1, 1), "ReduceL1": (2, 0), "ReduceL2": (2, 1), "ReduceSumSquare": (2, 0),
        "ReduceLogSum": (1, 1), "ReduceLogSumExp": (2, 1),
    ]

    static var all: [String: CostFormula] {
        var formulas: [String: CostFormula] = [:]
        for (op, c) in perInput {
            formulas[op] = { ctx in
                guard let i = ctx.elements(input: 0), let o = ctx.elements() else { return nil }
                return OpCost(flops: i * Cost(c.input) + o * Cost(c.output))
            }
        }
        formulas["ArgMax"] = { ctx in ctx.elements(input: 0).map { OpCost(flops: $0) } }
        formulas["ArgMin"] = { ctx in ctx.elements(input: 0).map { OpCost(flops: $0) } }
        formulas["TopK"] = { ctx in
            guard let i = ctx.elements(input: 0), let out = ctx.shape(output: 0), let x = ctx.shape(input: 0) else { return nil }
            let axis = ((try? ctx.node.int("axis", default: -1)) ?? -1 + x.count) % max(x.count, 1)
            let k = out.indices.contains(axis) ? out[axis].intValue ?? 2 : 2
            return OpCost(flops: i * Cost(max(1, log2(Double(max(k, 2))))))
        }
        return formulas
    }
}
