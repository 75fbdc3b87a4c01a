/// Shape rules of matrix products: MatMul (NumPy semantics), Gemm, the integer and
/// quantized forms, and Einsum.
enum MatMulRules {
    static var all: [String: ShapeRule] {
        [
            "MatMul": { ctx in [.tensor(try ctx.elementType(0), try matmulShape(ctx.shape(0), ctx.shape(1)))] },
            "MatMulInteger": { ctx in [.tensor(.int32, try matmulShape(ctx.shape(0), ctx.shape(1)))] },
            "QLinearMatMul": { ctx in [.tensor(try ctx.elementType(7), try matmulShape(ctx.shape(0), ctx.shape(3)))] },
            "Gemm": gemm,
            "Einsum": einsum,
        ]
    }

    /// NumPy matmul: 1-D operands are promoted and the added axis removed afterwards.
    static func matmulShape(_ a0: [Dim], _ b0: [Dim]) throws -> [Dim] {
        guard !a0.isEmpty, !b0.isEmpty else { throw ShapeError("MatMul operands must not be scalars") }
        let a = a0.count == 1 ? [.value(1)] + a0 : a0
        let b = b0.count == 1 ? b0 + [.value(1)] : b0
        let k1 = a[a.count - 1], k2 = b[b.count - 2]
        if let x = k1.intValue, let y = k2.intValue, x != y {
            throw ShapeError("inner dims differ: \(a0.shapeDescription) x \(b0.shapeDescription)")
        }
        var out = try broadcast([Array(a.dropLast(2)), Array(b.dropLast(2))])
        if a0.count > 1 { out.append(a[a.count - 2]) }
        if b0.count > 1 { out.append(b[b.count - 1]) }
        return out
    }

    static func gemm(_ ctx: RuleContext) throws -> [ValueFacts] {
        [.tensor(try ctx.elementType(0), try gemmShape(ctx, a: 0, b: 1))]
    }

    /// [M, N] of a Gemm-like product of inputs `a` and `b`, with transA / transB.
    static func gemmShape(_ ctx: RuleContext, a aIndex: Int, b bIndex: Int) throws -> [Dim] {
        let a = try ctx.shape(aIndex), b = try ctx.shape(bIndex)
        guard a.count == 2, b.count == 2 else {
            throw ShapeError("\(ctx.node.opType) needs 2-D operands, got \(a.shapeDescription) and \(b.shapeDescription)")
        }
        let transA = try ctx.node.int("transA", default: 0) != 0
        let transB = try ctx.node.int("transB", default: 0) != 0
        let m = transA ? a[1] : a[0], k1 = transA ? a[0] : a[1]
        let k2 = transB ? b[1] : b[0], n = transB ? b[0] : b[1]
        if let x = k1.intValue, let y = k2.intValue, x != y {
            throw ShapeError("inner dims differ: A \(a.shapeDescription) (transA \(transA)) and B \(b.shapeDescription) (transB \(transB))")
        }
        return [m, n]
    }

    static func einsum(_ ctx: RuleContext) throws -> [ValueFacts] {
        let equation = try ctx.node.string("equation").replacingOccurrences(of: " ", with: "")
        let parts = equation.components(separatedBy: "->")
        let lhs = parts[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let present = (0..<ctx.inputCount).filter(ctx.hasInput)
        guard lhs.count == present.count else {
            throw ShapeError("equation '\(equation)' names \(lhs.count) operands but the node has \(present.count)")
        }
        var sizes: [Character: Dim] = [:]
        var ellipsis: [Dim] = []
        for (term, index) in zip(lhs, present) {
            let shape = try ctx.shape(index)
            let letters = term.replacingOccurrences(of: "...", with: "")
            let hasEllipsis = term.contains("...")
            let ellipsisRank = shape.count - letters.count
            guard ellipsisRank >= 0, hasEllipsis || ellipsisRank == 0 else {
                throw ShapeError("operand \(index) of rank \(shape.count) does not match '\(term)'")
            }
            var axis = 0
            var chars = Array(term)
            var i = 0
            while i < chars.count {
                if chars[i] == "." {
                    guard axis + ellipsisRank <= shape.count else { throw ShapeError("operand \(index) has more than one ellipsis in '\(term)'") }
                    let e = Array(shape[axis..<(axis + ellipsisRank)])
                    ellipsis = try broadcast([ellipsis, e])
                    axis += ellipsisRank
                    i += 3
                    continue
                }
                let c = chars[i]
                guard axis < shape.count else { throw ShapeError("operand \(index) of rank \(shape.count) does not match '\(term)'") }
                if let known = sizes[c], known != shape[axis], known != .value(1) {
                    if shape[axis] != .value(1), known.isConstant, shape[axis].isConstant {
                        throw ShapeError("label '\(c)' has sizes \(known) and \(shape[axis])")
                    }
                } else {
                    sizes[c] = shape[axis]
                }
                axis += 1
                i += 1
            }
            chars.removeAll()
        }
        var outLabels: String
        if parts.count > 1 {
            outLabels = parts[1]
        } else {
            // Implicit output: labels that appear once, in alphabetical order, after the ellipsis.
            var counts: [Character: Int] = [:]
            for c in lhs.joined() where c != "." { counts[c, default: 0] += 1 }
            outLabels = (lhs.joined().contains("...") ? "..." : "") + String(counts.filter { $0.value == 1 }.keys.sorted())
        }
        var out: [Dim] = []
        var chars = Array(outLabels)
        var i = 0
        while i < chars.count {
            if chars[i] == "." { out += ellipsis; i += 3; continue }
            guard let d = sizes[chars[i]] else { throw ShapeError("output label '\(chars[i])' is not in any input") }
            out.append(d)
            i += 1
        }
        chars.removeAll()
        return [.tensor(try ctx.elementType(present[0]), out)]
    }
}
