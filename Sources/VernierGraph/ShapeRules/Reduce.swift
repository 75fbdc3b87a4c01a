/// Shape rules of reductions (Reduce*), ArgMax/ArgMin and TopK.
enum ReduceRules {
    static let reduceOps = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                            "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]

    static var all: [String: ShapeRule] {
        var rules: [String: ShapeRule] = [:]
        for op in reduceOps {
            // ReduceSum took axes as an input from opset 13; the others from opset 18.
            let since = op == "ReduceSum" ? 13 : 18
            rules[op] = { ctx in try reduce(ctx, axesInputSince: since) }
        }
        rules["ArgMax"] = argReduce
        rules["ArgMin"] = argReduce
        rules["TopK"] = topK
        return rules
    }

    static func reduce(_ ctx: RuleContext, axesInputSince: Int) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let keep = try ctx.node.int("keepdims", default: 1) != 0
        let noopWhenEmpty = try ctx.node.int("noop_with_empty_axes", default: 0) != 0
        var axes = try ctx.axesAttributeOrInput(inputIndex: 1, sinceOpset: axesInputSince) ?? []
        if axes.isEmpty {
            if noopWhenEmpty { return [.tensor(try ctx.elementType(0), x, constant: ctx.constant(0))] }
            axes = Array(0..<x.count)
        }
        let normalized = Set(try axes.map { try ctx.axis($0, rank: x.count) })
        var out: [Dim] = []
        for (i, d) in x.enumerated() {
            if normalized.contains(i) { if keep { out.append(.value(1)) } } else { out.append(d) }
        }
        return [.tensor(try ctx.elementType(0), out)]
    }

    static func argReduce(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let axis = try ctx.axis(try ctx.node.int("axis", default: 0), rank: x.count)
        let keep = try ctx.node.int("keepdims", default: 1) != 0
        var out = x
        if keep { out[axis] = .value(1) } else { out.remove(at: axis) }
        return [.tensor(.int64, out)]
    }

    static func topK(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let axis = try ctx.axis(try ctx.node.int("axis", default: -1), rank: x.count)
        let k: Dim
        if ctx.opset >= 10 {
            let values = try ctx.requireDims(1)
            guard values.count == 1 else { throw ShapeError("K must hold one value") }
            k = values[0]
        } else {
            k = .value(try ctx.node.int("k"))
        }
        if let kv = k.intValue, let n = x[axis].intValue, kv > n || kv < 0 {
            throw ShapeError("K = \(kv) is outside 0...\(n), the size of axis \(axis)")
        }
        var out = x
        out[axis] = k
        return [.tensor(try ctx.elementType(0), out), .tensor(.int64, out)]
    }
}
