/// Shape rules of normalization and softmax-like ops: the output has the input's shape.
enum NormalizationRules {
    static var all: [String: ShapeRule] {
        var rules: [String: ShapeRule] = [:]
        for op in ["InstanceNormalization", "GroupNormalization", "LpNormalization", "MeanVarianceNormalization",
                   "Softmax", "LogSoftmax", "Hardmax", "LRN", "RMSNormalization"] {
            rules[op] = sameAsInput
        }
        rules["BatchNormalization"] = { ctx in
            let x = try ctx.shape(0)
            let element = try ctx.elementType(0)
            guard x.count >= 2 else { throw ShapeError("input \(x.shapeDescription) needs a channel dim") }
            // Training mode (opset 14+) also returns the running mean and variance.
            let c = [x[1]]
            return [.tensor(element, x), .tensor(element, c), .tensor(element, c), .tensor(element, c), .tensor(element, c)]
        }
        rules["LayerNormalization"] = { ctx in
            let x = try ctx.shape(0)
            let axis = try ctx.axis(try ctx.node.int("axis", default: -1), rank: x.count)
            let stashType = ElementType(rawValue: try ctx.node.int("stash_type", default: 1)) ?? .float
            let reduced = Array(x[0..<axis]) + Array(repeating: Dim.value(1), count: x.count - axis)
            return [.tensor(try ctx.elementType(0), x), .tensor(stashType, reduced), .tensor(stashType, reduced)]
        }
        return rules
    }
}
