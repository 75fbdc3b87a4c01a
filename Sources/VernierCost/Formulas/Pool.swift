import VernierGraph

/// Pooling: one FLOP (compare or add) per window element per output element; average
/// pooling adds one divide per output. Global pooling reads every input element once.
enum PoolCosts {
    static var all: [String: CostFormula] {
        [
            "MaxPool": { ctx in windowed(ctx, perOutputExtra: 0) },
            "AveragePool": { ctx in windowed(ctx, perOutputExtra: 1) },
            "LpPool": { ctx in windowed(ctx, perOutputExtra: 1).map { OpCost(flops: $0.flops * Cost(2)) } },
            "GlobalMaxPool": { ctx in ctx.elements(input: 0).map { OpCost(flops: $0) } },
            "GlobalAveragePool": { ctx in
                guard let i = ctx.elements(input: 0), let o = ctx.elements() else { return nil }
                return OpCost(flops: i + o)
            },
            "GlobalLpPool": { ctx in
                guard let i = ctx.elements(input: 0), let o = ctx.elements() else { return nil }
                return OpCost(flops: i * Cost(2) + o)
            },
            "MaxRoiPool": { ctx in ctx.elements().map { OpCost(flops: $0) } },
        ]
    }

    static func windowed(_ ctx: CostContext, perOutputExtra: Double) -> OpCost? {
        guard let kernel = try? ctx.node.ints("kernel_shape"), let outputs = ctx.elements() else { return nil }
        let window = Double(kernel.reduce(1) { Int.multiplying($0, $1) })
        return OpCost(flops: outputs * Cost(window + perOutputExtra))
    }
}
