import VernierGraph

/// Ops that make or describe tensors cost no FLOPs; their bytes are counted.
enum ShapeOpCosts {
    static var all: [String: CostFormula] {
        var formulas: [String: CostFormula] = [:]
        for op in ["Shape", "Size", "Cast", "CastLike", "Constant", "ConstantOfShape", "Range", "EyeLike", "OneHot",
                   "NonZero", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli"] {
            formulas[op] = { _ in .free }
        }
        return formulas
    }
}
