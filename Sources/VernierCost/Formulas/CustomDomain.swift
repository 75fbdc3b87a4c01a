import VernierGraph

/// Cost formulas of the `com.microsoft` ops that have shape rules. QLinearAdd and
/// QLinearMul: 9 FLOPs per output element (dequantize both operands, 2 each; the op; quantize, 4).
/// QLinearSigmoid: 9 (dequantize 2, Sigmoid's 3, quantize 4), though Vernier's kernel looks
/// each byte up in a 256-entry table. QGemm: Gemm's int8 multiply-adds, plus 4 FLOPs per
/// output element to requantize as QLinearMatMul counts them and 1 for C.
enum CustomDomainCosts {
    static var all: [String: CostFormula] {
        [
            "FusedConv": ConvCosts.floatConv,
            "FusedMatMul": MatMulCosts.floatMatMul,
            "Gelu": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(5)) } },
            "FastGelu": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(8)) } },
            "BiasGelu": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(6)) } },
            "QLinearAdd": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(9)) } },
            "QLinearMul": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(9)) } },
            "QGemm": { ctx in
                guard let gemm = MatMulCosts.gemm(ctx), let out = ctx.elements() else { return nil }
                return OpCost(flops: out * Cost(4) + (ctx.hasInput(6) ? out : .zero), intMacs: gemm.macs)
            },
            "QLinearSigmoid": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(9)) } },
            "QuickGelu": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(4)) } },
            "SkipLayerNormalization": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(8)) } },
            "SimplifiedLayerNormalization": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(5)) } },
        ]
    }
}
