/// Plain reference versions of the data-movement kernels, on float tensors: one output
/// element at a time from its multi-index, no tables, no fast paths. Tests check the
/// fast kernels against these.
extension ReferenceKernels {
    /// The multi-index of flat position `flat` in `shape`.
    static func unravel(_ flat: Int, _ shape: [Int]) -> [Int] {
        var index = [Int](repeating: 0, count: shape.count)
        var rest = flat
        for k in stride(from: shape.count - 1, through: 0, by: -1) {
            index[k] = rest % shape[k]
            rest /= shape[k]
        }
        return index
    }

    /// The flat position of `index` in `shape`.
    static func ravel(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
    }

    /// Output element `i` of `shape` from the input element that `source` names.
    static func build(_ shape: [Int], _ source: ([Int]) -> Float) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<count).map { source(unravel($0, shape)) })
    }

    public static func transpose(_ x: Tensor, perm: [Int]) -> Tensor {
        let v = x.scalars(as: Float.self)
        return build(perm.map { x.shape[$0] }) { out in
            var index = [Int](repeating: 0, count: perm.count)
            for (k, p) in perm.enumerated() { index[p] = out[k] }
            return v[ravel(index, x.shape)]
        }
    }

    /// Slice with explicit per-axis `starts`, `steps` and output `counts` (already clamped).
    public static func slice(_ x: Tensor, starts: [Int], steps: [Int], counts: [Int]) -> Tensor {
        let v = x.scalars(as: Float.self)
        return build(counts) { out in v[ravel((0..<out.count).map { starts[$0] + out[$0] * steps[$0] }, x.shape)] }
    }

    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        var shape = parts[0].shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        let values = parts.map { $0.scalars(as: Float.self) }
        return build(shape) { out in
            var index = out, part = 0
            while index[axis] >= parts[part].shape[axis] {
                index[axis] -= parts[part].shape[axis]
                part += 1
            }
            return values[part][ravel(index, parts[part].shape)]
        }
    }

    /// Broadcast of `x` to `shape` (NumPy rules, `shape` already the broadcast result).
    public static func expand(_ x: Tensor, to shape: [Int]) -> Tensor {
        let v = x.scalars(as: Float.self)
        let padded = Array(repeating: 1, count: shape.count - x.rank) + x.shape
        return build(shape) { out in v[ravel((0..<shape.count).map { padded[$0] == 1 ? 0 : out[$0] }, padded)] }
    }

    public static func tile(_ x: Tensor, repeats: [Int]) -> Tensor {
        let v = x.scalars(as: Float.self)
        return build(zip(x.shape, repeats).map { $0 * $1 }) { out in
            v[ravel((0..<out.count).map { out[$0] % x.shape[$0] }, x.shape)]
        }
    }

    /// Pad with `pads` = [begin_0, ..., begin_n, end_0, ..., end_n]; mode constant,
    /// reflect, edge or wrap.
    public static func pad(_ x: Tensor, pads: [Int], mode: String, value: Float = 0) -> Tensor {
        let v = x.scalars(as: Float.self)
        let r = x.rank
        let shape = (0..<r).map { x.shape[$0] + pads[$0] + pads[r + $0] }
        return build(shape) { out in
            var index: [Int] = []
            for k in 0..<r {
                var i = out[k] - pads[k]
                let d = x.shape[k]
                switch mode {
                case "edge": i = min(max(i, 0), d - 1)
                case "wrap": while i < 0 { i += d }; i %= d
                case "reflect":
                    while i < 0 || i >= d {
                        if i < 0 { i = -i }
                        if i >= d { i = 2 * (d - 1) - i }
                    }
                default: if i < 0 || i >= d { return value }
                }
                index.append(i)
            }
            return v[ravel(index, x.shape)]
        }
    }

    public static func gather(_ x: Tensor, indices: [Int], indexShape: [Int], axis: Int) -> Tensor {
        let v = x.scalars(as: Float.self)
        let shape = Array(x.shape[..<axis]) + indexShape + Array(x.shape[(axis + 1)...])
        return build(shape) { out in
            let position = ravel(Array(out[axis..<(axis + indexShape.count)]), indexShape)
            var i = indices[position]
            if i < 0 { i += x.shape[axis] }
            let index = Array(out[..<axis]) + [i] + Array(out[(axis + indexShape.count)...])
            return v[ravel(index, x.shape)]
        }
    }

    /// DepthToSpace by its definition: output (n, c, h*b + i, w*b + j) reads channel
    /// (i*b + j)*C' + c (DCR) or c*b*b + i*b + j (CRD).
    public static func depthToSpace(_ x: Tensor, blocksize b: Int, mode: String) -> Tensor {
        let v = x.scalars(as: Float.self)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cc = c / (b * b)
        return build([n, cc, h * b, w * b]) { out in
            let (i, j) = (out[2] % b, out[3] % b)
            let channel = mode == "CRD" ? out[1] * b * b + i * b + j : (i * b + j) * cc + out[1]
            return v[ravel([out[0], channel, out[2] / b, out[3] / b], x.shape)]
        }
    }

    /// Linear or nearest (round_prefer_floor) resize to `outShape`, with coordinates
    /// `half_pixel`, `align_corners` or `asymmetric`, every output as the weighted sum of
    /// the 2^rank corners around its source point.
    public static func resize(_ x: Tensor, to outShape: [Int], mode: String, coordinates: String) -> Tensor {
        let v = x.scalars(as: Float.self)
        let r = x.rank
        return build(outShape) { out in
            var lower: [Int] = [], upper: [Int] = [], fraction: [Double] = []
            for k in 0..<r {
                let n = x.shape[k], m = outShape[k]
                let scale = Double(m) / Double(n)
                var c: Double
                switch coordinates {
                case "align_corners": c = m == 1 ? 0 : Double(out[k]) * Double(n - 1) / Double(m - 1)
                case "asymmetric": c = Double(out[k]) / scale
                default: c = (Double(out[k]) + 0.5) / scale - 0.5
                }
                if mode == "nearest" {
                    let f = c.rounded(.down)
                    c = c - f <= 0.5 ? f : f + 1
                }
                c = min(max(c, 0), Double(n - 1))
                let f = c.rounded(.down)
                lower.append(Int(f))
                upper.append(min(Int(f) + 1, n - 1))
                fraction.append(c - f)
            }
            var sum = 0.0
            for corner in 0..<(1 << r) {
                var weight = 1.0
                var index: [Int] = []
                for k in 0..<r {
                    let high = corner >> k & 1 == 1
                    weight *= high ? fraction[k] : 1 - fraction[k]
                    index.append(high ? upper[k] : lower[k])
                }
                if weight != 0 { sum += weight * Double(v[ravel(index, x.shape)]) }
            }
            return Float(sum)
        }
    }
}
