import VernierGraph

/// Element-wise ops cost FLOPs per output element. Convention: every arithmetic
/// operation and every elementary function (exp, log, erf, tanh, sqrt, sin...) counts
/// one FLOP, so each op's constant is the number of such steps per element.
enum ElementwiseCosts {
    /// FLOPs per output element, with the formula they count.
    static let flopsPerElement: [String: Double] = [
        "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Mod": 1, "BitShift": 1,
        "BitwiseAnd": 1, "BitwiseOr": 1, "BitwiseXor": 1, "BitwiseNot": 1,
        "Equal": 1, "Less": 1, "Greater": 1, "LessOrEqual": 1, "GreaterOrEqual": 1,
        "And": 1, "Or": 1, "Xor": 1, "Not": 1, "Where": 1,
        "Relu": 1, "Neg": 1, "Abs": 1, "Floor": 1, "Ceil": 1, "Round": 1, "Sign": 1,
        "Reciprocal": 1, "Sqrt": 1, "Exp": 1, "Log": 1, "Erf": 1, "Tanh": 1,
        "Sin": 1, "Cos": 1, "Tan": 1, "Asin": 1, "Acos": 1, "Atan": 1,
        "Sinh": 1, "Cosh": 1, "Asinh": 1, "Acosh": 1, "Atanh": 1,
        "IsNaN": 1, "IsInf": 1,
        "Clip": 2,              // max, min
        "LeakyRelu": 2,         // compare, multiply
        "PRelu": 2,
        "ThresholdedRelu": 1,
        "Shrink": 2,
        "Sigmoid": 3,           // 1 / (1 + exp(-x)): exp, add, divide
        "HardSigmoid": 3,       // max(0, min(1, a*x + b)): multiply-add, clamp
        "HardSwish": 4,         // x * hardsigmoid(x)
        "Softplus": 3,          // log(1 + exp(x))
        "Softsign": 3,          // x / (1 + |x|)
        "Elu": 3, "Celu": 3, "Selu": 4,
        "Gelu": 5,              // 0.5 * x * (1 + erf(x / sqrt(2)))
        "Mish": 5,              // x * tanh(softplus(x))
        "Trilu": 0, "ReverseSequence": 0,
        "CumSum": 1,
    ]

    static var all: [String: CostFormula] {
        var formulas: [String: CostFormula] = [:]
        for (op, perElement) in flopsPerElement {
            formulas[op] = { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(perElement)) } }
        }
        // Variadic: n inputs take n - 1 operations per element (Mean one more, the divide).
        for op in ["Max", "Min", "Sum", "Mean"] {
            formulas[op] = { ctx in
                let n = Double(ctx.node.inputs.filter { !$0.isEmpty }.count)
                return ctx.elements().map { OpCost(flops: $0 * Cost(max(n - 1, 0) + (op == "Mean" ? 1 : 0))) }
            }
        }
        formulas["Identity"] = { _ in .free }
        formulas["Dropout"] = { _ in .free }
        return formulas
    }
}
