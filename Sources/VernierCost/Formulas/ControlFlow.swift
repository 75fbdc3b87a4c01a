import VernierGraph

/// Control flow: If costs its larger branch (when both are known numbers; otherwise the
/// then branch, and the report says so); Loop costs one body run times the trip count,
/// which is a symbol when unknown; Scan one body run per element of the scanned axis.
enum ControlFlowCosts {
    static var all: [String: CostFormula] {
        [
            "If": { ctx in
                let then = ctx.subgraphCosts["then_branch"]?.first ?? .free
                let otherwise = ctx.subgraphCosts["else_branch"]?.first ?? .free
                if let a = then.flops.value, let b = otherwise.flops.value { return a >= b ? then : otherwise }
                return then
            },
            "Loop": { ctx in
                let body = ctx.subgraphCosts["body"]?.first ?? .free
                guard let scan = ctx.outputs.dropFirst(max(0, ctx.node.inputs.count - 2)).first,
                      let trips = scan?.shape?.first else {
                    return body * Cost(symbol: "trips(\(ctx.node.displayName))")
                }
                return body * Cost(trips)
            },
            "Scan": { ctx in
                let body = ctx.subgraphCosts["body"]?.first ?? .free
                let scanInputs = (try? ctx.node.int("num_scan_inputs")) ?? 1
                let first = ctx.node.inputs.count - scanInputs
                let axes = (try? ctx.node.ints("scan_input_axes")) ?? nil
                guard let s = ctx.shape(input: first), !s.isEmpty else { return nil }
                let axis = axes?.first.map { $0 < 0 ? $0 + s.count : $0 } ?? 0
                guard s.indices.contains(axis) else { return nil }
                return body * Cost(s[axis])
            },
        ]
    }
}
