extension ReferenceKernels {
    /// Output shape of NumPy `matmul` (ONNX MatMul), or nil when the shapes do not fit.
    /// A 1-D left operand is a row `[1, K]`, a 1-D right operand a column `[K, 1]`; the
    /// added dim is dropped from the result. Batch dims broadcast.
    public static func matMulShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        guard !a.isEmpty, !b.isEmpty else { return nil }
        let a2 = a.count == 1 ? [1] + a : a
        let b2 = b.count == 1 ? b + [1] : b
        guard a2[a2.count - 1] == b2[b2.count - 2] else { return nil }
        guard let batch = broadcast(Array(a2.dropLast(2)), Array(b2.dropLast(2))) else { return nil }
        var out = batch
        if a.count > 1 { out.append(a2[a2.count - 2]) }
        if b.count > 1 { out.append(b2[b2.count - 1]) }
        return out
    }

    /// NumPy-style broadcast of two shapes, aligned on the right.
    static func broadcast(_ x: [Int], _ y: [Int]) -> [Int]? {
        let rank = max(x.count, y.count)
        let xs = Array(repeating: 1, count: rank - x.count) + x
        let ys = Array(repeating: 1, count: rank - y.count) + y
        var out: [Int] = []
        for (p, q) in zip(xs, ys) {
            if p == q || q == 1 { out.append(p) } else if p == 1 { out.append(q) } else { return nil }
        }
        return out
    }

    /// NumPy `matmul` with batch broadcasting, fp32 in and out, Double accumulation,
    /// then the epilogue (`addend` of the output's shape when it adds a residual).
    public static func matMul(_ a: Tensor, _ b: Tensor, epilogue: FusedEpilogue = .none, addend: Tensor? = nil) -> Tensor {
        guard let outShape = matMulShape(a.shape, b.shape) else {
            preconditionFailure("matmul shapes do not fit: \(a.shape) x \(b.shape)")
        }
        let a2 = a.shape.count == 1 ? [1] + a.shape : a.shape
        let b2 = b.shape.count == 1 ? b.shape + [1] : b.shape
        let (m, k, n) = (a2[a2.count - 2], a2[a2.count - 1], b2[b2.count - 1])
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let batch = broadcast(aBatch, bBatch) ?? []
        let rank = batch.count
        let aPadded = Array(repeating: 1, count: rank - aBatch.count) + aBatch
        let bPadded = Array(repeating: 1, count: rank - bBatch.count) + bBatch
        let batchCount = batch.reduce(1, *)
        let x = a.scalars(as: Float.self), w = b.scalars(as: Float.self)
        let r = addend?.scalars(as: Float.self)
        var y = [Float](repeating: 0, count: batchCount * m * n)
        var index = [Int](repeating: 0, count: rank)
        for flat in 0..<batchCount {
            // Unravel `flat` over the broadcast batch shape, then map to each operand.
            var rest = flat
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                index[axis] = rest % batch[axis]
                rest /= batch[axis]
            }
            var aOffset = 0, bOffset = 0
            for axis in 0..<rank {
                aOffset = aOffset * aPadded[axis] + (aPadded[axis] == 1 ? 0 : index[axis])
                bOffset = bOffset * bPadded[axis] + (bPadded[axis] == 1 ? 0 : index[axis])
            }
            aOffset *= m * k
            bOffset *= k * n
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        sum += Double(x[aOffset + i * k + p]) * Double(w[bOffset + p * n + j])
                    }
                    let index = (flat * m + i) * n + j
                    if let r { sum += Double(r[index]) }
                    y[index] = Float(epilogue.activate(sum))
                }
            }
        }
        return Tensor(shape: outShape, values: y)
    }

    /// ONNX Gemm: `alpha * op(A) * op(B) + beta * C` with `op` transposing when asked,
    /// A and B 2-D, C (optional) broadcast to `[M, N]` from `[]`, `[1]`, `[N]`, `[1, N]`,
    /// `[M, 1]` or `[M, N]`; then the epilogue.
    public static func gemm(_ a: Tensor, _ b: Tensor, _ c: Tensor? = nil, transA: Bool = false, transB: Bool = false,
                            alpha: Float = 1, beta: Float = 1, epilogue: FusedEpilogue = .none,
                            addend: Tensor? = nil) -> Tensor {
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let n = transB ? b.shape[0] : b.shape[1]
        let x = a.scalars(as: Float.self), w = b.scalars(as: Float.self)
        let cv = c?.scalars(as: Float.self)
        let cShape = c.map { Array(repeating: 1, count: 2 - $0.rank) + $0.shape } ?? [1, 1]
        let r = addend?.scalars(as: Float.self)
        var y = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let av = transA ? x[p * m + i] : x[i * k + p]
                    let bv = transB ? w[j * k + p] : w[p * n + j]
                    sum += Double(av) * Double(bv)
                }
                sum *= Double(alpha)
                if let cv {
                    let ci = (cShape[0] == 1 ? 0 : i) * cShape[1] + (cShape[1] == 1 ? 0 : j)
                    sum += Double(beta) * Double(cv[ci])
                }
                if let r { sum += Double(r[i * n + j]) }
                y[i * n + j] = Float(epilogue.activate(sum))
            }
        }
        return Tensor(shape: [m, n], values: y)
    }
}
