import VernierGraph

/// Convolutions. One MAC per weight tap per output element:
/// Conv MACs = N x C_out x prod(out spatial) x (C_in / group) x prod(kernel);
/// ConvTranspose MACs = N x C_in x prod(in spatial) x (C_out / group) x prod(kernel)
/// (each input element scatters into its window). A bias adds one FLOP per output element.
enum ConvCosts {
    static var all: [String: CostFormula] {
        [
            "Conv": floatConv,
            "DeformConv": floatConv,
            "ConvInteger": { ctx in conv(ctx, weights: 1, bias: nil).map { OpCost(intMacs: $0.macs) } },
            // Requantizing each output: scale, round, add zero point, clamp.
            "QLinearConv": { ctx in
                guard let c = conv(ctx, weights: 3, bias: 8), let out = ctx.elements() else { return nil }
                return OpCost(flops: out * Cost(4), intMacs: c.macs + c.bias)
            },
            "ConvTranspose": convTranspose,
        ]
    }

    static func floatConv(_ ctx: CostContext) -> OpCost? {
        conv(ctx, weights: 1, bias: 2).map { OpCost.multiplyAdd($0.macs, extraFlops: $0.bias) }
    }

    /// MACs of a forward convolution and the FLOPs of its bias adds.
    static func conv(_ ctx: CostContext, weights: Int, bias: Int?) -> (macs: Cost, bias: Cost)? {
        guard let w = ctx.shape(input: weights), w.count >= 3, let out = ctx.shape(output: 0) else { return nil }
        // W is [C_out, C_in / group, k...]: its per-output-channel size is what each output element reads.
        let perOutput = Cost(Array(w[1...]).product)
        let outputs = Cost(out.product)
        let biasFlops = bias.map { ctx.hasInput($0) } == true ? outputs : .zero
        return (outputs * perOutput, biasFlops)
    }

    static func convTranspose(_ ctx: CostContext) -> OpCost? {
        guard let x = ctx.shape(input: 0), let w = ctx.shape(input: 1), w.count >= 3, let outputs = ctx.elements() else { return nil }
        // W is [C_in, C_out / group, k...]: each input element meets C_out/group x prod(k) weights.
        let macs = Cost(x.product) * Cost(Array(w[1...]).product)
        return .multiplyAdd(macs, extraFlops: ctx.hasInput(2) ? outputs : .zero)
    }
}
