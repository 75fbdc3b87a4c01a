import VernierGraph

/// Matrix products: MACs = output elements x K (the contracted size).
/// Gemm adds one FLOP per output element for C (beta scaling is not counted).
enum MatMulCosts {
    static var all: [String: CostFormula] {
        [
            "MatMul": floatMatMul,
            "MatMulInteger": { ctx in matmulMacs(ctx, a: 0).map { OpCost(intMacs: $0) } },
            "QLinearMatMul": { ctx in
                guard let macs = matmulMacs(ctx, a: 0), let out = ctx.elements() else { return nil }
                return OpCost(flops: out * Cost(4), intMacs: macs)
            },
            "Gemm": gemm,
            "Einsum": einsum,
        ]
    }

    static func floatMatMul(_ ctx: CostContext) -> OpCost? { matmulMacs(ctx, a: 0).map { .multiplyAdd($0) } }

    static func matmulMacs(_ ctx: CostContext, a: Int) -> Cost? {
        guard let s = ctx.shape(input: a), let k = s.last, let outputs = ctx.elements() else { return nil }
        return outputs * Cost(k)
    }

    static func gemm(_ ctx: CostContext) -> OpCost? {
        guard let a = ctx.shape(input: 0), a.count == 2, let outputs = ctx.elements() else { return nil }
        let transA = (try? ctx.node.int("transA", default: 0)) ?? 0 != 0
        let k = transA ? a[0] : a[1]
        return .multiplyAdd(outputs * Cost(k), extraFlops: ctx.hasInput(2) ? outputs : .zero)
    }

    /// MACs = the product of the sizes of every distinct label (each output element
    /// sums over the contracted labels).
    static func einsum(_ ctx: CostContext) -> OpCost? {
        guard let equation = try? ctx.node.string("equation") else { return nil }
        let lhs = equation.replacingOccurrences(of: " ", with: "").components(separatedBy: "->")[0]
        var sizes: [Character: Dim] = [:]
        var ellipsis = Cost(1)
        for (term, index) in zip(lhs.split(separator: ",", omittingEmptySubsequences: false), ctx.node.inputs.indices) {
            guard let shape = ctx.shape(input: index) else { return nil }
            let letters = term.filter { $0 != "." }
            let hasEllipsis = term.contains(".")
            let ellipsisRank = shape.count - letters.count
            // A term that does not fit its operand's rank has no cost (the shape rule reports it).
            guard ellipsisRank >= 0, hasEllipsis || ellipsisRank == 0 else { return nil }
            var axis = 0
            var chars = term.makeIterator()
            while let c = chars.next() {
                if c == "." {
                    // "..." spans the ellipsis dims; its two other dots are skipped.
                    _ = chars.next()
                    _ = chars.next()
                    guard axis + ellipsisRank <= shape.count else { return nil }
                    if ellipsisRank > 0 { ellipsis = Cost(Array(shape[axis..<(axis + ellipsisRank)]).product) }
                    axis += ellipsisRank
                    continue
                }
                guard axis < shape.count else { return nil }
                if sizes[c] == nil || sizes[c] == .value(1) { sizes[c] = shape[axis] }
                axis += 1
            }
        }
        let macs = sizes.values.reduce(ellipsis) { $0 * Cost($1) }
        return .multiplyAdd(macs)
    }
}
