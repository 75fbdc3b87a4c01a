import VernierGraph

/// (De)quantization, FLOPs per element: QuantizeLinear 4 (divide by scale, round, add
/// zero point, clamp); DequantizeLinear 2 (subtract zero point, multiply by scale);
/// DynamicQuantizeLinear 6 (min and max over the tensor, then quantize).
enum QuantizationCosts {
    static var all: [String: CostFormula] {
        [
            "QuantizeLinear": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(4)) } },
            "DequantizeLinear": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(2)) } },
            "DynamicQuantizeLinear": { ctx in ctx.elements().map { OpCost(flops: $0 * Cost(6)) } },
        ]
    }
}
