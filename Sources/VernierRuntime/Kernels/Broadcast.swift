/// NumPy multidirectional broadcasting for the element-wise kernels.
///
/// A `BroadcastPlan` maps every input onto the output shape with element strides (0 on
/// a broadcast dim), then merges adjacent dims that every input treats alike, so that
/// the common cases reduce to a few long contiguous rows: same shapes become one row,
/// a scalar is a row with stride 0, `[N,C,H,W] + [C,1,1]` becomes rows of `H*W` against
/// one value of `C`, and `[B,S,H] + [H]` rows of `H` against the same `H` values.
/// Kernels then work row by row (`forEachRow`), with no index math per element.
struct BroadcastPlan {
    /// The broadcast output shape (before merging dims).
    let outputShape: [Int]
    let elementCount: Int
    /// Merged dims, outermost first; never empty.
    let dims: [Int]
    /// Per input, the element stride of each merged dim (0 where it broadcasts).
    let strides: [[Int]]

    /// The stride of each input along the innermost dim: 1 (walks its row) or 0
    /// (repeats one value along the row).
    var innerStrides: [Int] { strides.map { $0[$0.count - 1] } }

    /// The NumPy broadcast of `shapes`, aligned on the right.
    static func broadcastShape(_ shapes: [[Int]]) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for shape in shapes {
            for (j, d) in shape.enumerated() {
                let i = j + rank - shape.count
                if d == out[i] || d == 1 { continue }
                if out[i] == 1 { out[i] = d; continue }
                throw KernelError.invalid("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) cannot be broadcast")
            }
        }
        return out
    }

    /// Plans `inputs` (shapes) broadcast to their common shape.
    init(_ inputs: [[Int]]) throws {
        try self.init(inputs, output: try Self.broadcastShape(inputs))
    }

    /// Plans `inputs` broadcast to `output`, which each of them must broadcast to.
    init(_ inputs: [[Int]], output: [Int]) throws {
        outputShape = output
        elementCount = output.reduce(1, *)
        let rank = output.count
        // Per input, strides aligned to the output's dims (0 where broadcast).
        var full: [[Int]] = []
        for shape in inputs {
            guard shape.count <= rank else {
                throw KernelError.invalid("shape \(shape) cannot be broadcast to \(output)")
            }
            var s = [Int](repeating: 0, count: rank)
            var step = 1
            for j in stride(from: shape.count - 1, through: 0, by: -1) {
                let i = j + rank - shape.count
                if shape[j] == output[i] && output[i] != 1 {
                    s[i] = step
                } else if shape[j] != 1 {
                    throw KernelError.invalid("shape \(shape) cannot be broadcast to \(output)")
                }
                step *= shape[j]
            }
            full.append(s)
        }
        // Drop size-1 dims, merge a dim into the previous one when every input either
        // walks both contiguously or broadcasts both.
        var dims: [Int] = []
        var merged = [[Int]](repeating: [], count: inputs.count)
        for i in 0..<rank where output[i] != 1 {
            if let last = dims.last {
                let fits = (0..<inputs.count).allSatisfy { k in
                    let outer = merged[k][merged[k].count - 1], inner = full[k][i]
                    return (outer == 0 && inner == 0) || (inner != 0 && outer == inner * output[i])
                }
                if fits {
                    dims[dims.count - 1] = last * output[i]
                    for k in 0..<inputs.count { merged[k][merged[k].count - 1] = full[k][i] }
                    continue
                }
            }
            dims.append(output[i])
            for k in 0..<inputs.count { merged[k].append(full[k][i]) }
        }
        if dims.isEmpty {
            dims = [1]
            merged = merged.map { _ in [0] }
        }
        self.dims = dims
        self.strides = merged
    }

    /// Whether every input has the output's shape (one flat row each).
    var isElementwiseFlat: Bool { dims.count == 1 && innerStrides.allSatisfy { $0 == 1 } }

    /// Calls `body(outputOffset, inputOffsets, count)` for each row piece of the output
    /// elements in `range`, in order: the output elements `outputOffset ..< +count` read
    /// input `k` at `inputOffsets[k] + i * innerStrides[k]`.
    func forEachRow(in range: Range<Int>, _ body: (Int, UnsafeBufferPointer<Int>, Int) -> Void) {
        guard !range.isEmpty else { return }
        let rank = dims.count, inputs = strides.count
        withUnsafeTemporaryAllocation(of: Int.self, capacity: rank + inputs) { scratch in
            guard let base = scratch.baseAddress else { return }
            let index = UnsafeMutableBufferPointer(start: base, count: rank)
            let offsets = UnsafeMutableBufferPointer(start: base + rank, count: inputs)
            // Multi-index of the first element, and each input's offset there.
            var rest = range.lowerBound
            for d in stride(from: rank - 1, through: 0, by: -1) {
                index[d] = rest % dims[d]
                rest /= dims[d]
            }
            for k in 0..<inputs {
                var o = 0
                for d in 0..<rank { o += index[d] * strides[k][d] }
                offsets[k] = o
            }
            let inner = dims[rank - 1]
            var position = range.lowerBound
            while position < range.upperBound {
                let count = min(inner - index[rank - 1], range.upperBound - position)
                body(position, UnsafeBufferPointer(offsets), count)
                position += count
                guard position < range.upperBound else { break }
                // Advance by `count` along the innermost dim, carrying outwards.
                index[rank - 1] += count
                for k in 0..<inputs { offsets[k] += count * strides[k][rank - 1] }
                var d = rank - 1
                while d > 0 && index[d] == dims[d] {
                    index[d] = 0
                    index[d - 1] += 1
                    for k in 0..<inputs { offsets[k] += strides[k][d - 1] - dims[d] * strides[k][d] }
                    d -= 1
                }
            }
        }
    }
}
