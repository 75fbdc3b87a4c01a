import Foundation

extension ReferenceKernels {
    /// A Reduce* op (named as in ONNX, e.g. "ReduceMean") over `axes` of a float tensor:
    /// each output element from the list of its input elements.
    public static func reduce(_ op: String, _ x: Tensor, axes: [Int], keepDims: Bool) -> Tensor {
        let reduced = Set(axes.map { $0 < 0 ? $0 + x.rank : $0 })
        let keptShape = x.shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        let xs = x.scalars(as: Float.self).map { Double($0) }
        var groups = [[Double]](repeating: [], count: keptShape.reduce(1, *))
        for i in 0..<xs.count {
            let index = unflatten(i, x.shape)
            var o = 0
            for (d, size) in keptShape.enumerated() { o = o * size + (reduced.contains(d) ? 0 : index[d]) }
            groups[o].append(xs[i])
        }
        let ys: [Float] = groups.map { g in
            let value: Double
            switch op {
            case "ReduceSum": value = g.reduce(0, +)
            case "ReduceMean": value = g.reduce(0, +) / Double(g.count)
            case "ReduceMax": value = g.max() ?? -.infinity
            case "ReduceMin": value = g.min() ?? .infinity
            case "ReduceProd": value = g.reduce(1, *)
            case "ReduceL1": value = g.reduce(0) { $0 + Swift.abs($1) }
            case "ReduceL2": value = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            case "ReduceLogSum": value = Foundation.log(g.reduce(0, +))
            case "ReduceLogSumExp": value = Foundation.log(g.reduce(0) { $0 + Foundation.exp($1) })
            case "ReduceSumSquare": value = g.reduce(0) { $0 + $1 * $1 }
            default: value = .nan
            }
            return Float(value)
        }
        let shape = keepDims ? keptShape : x.shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        return Tensor(shape: shape, values: ys)
    }

    /// ArgMax/ArgMin of a float tensor along `axis` (keepdims layout flattened).
    public static func argExtreme(_ x: Tensor, axis: Int, isMax: Bool, selectLast: Bool) -> [Int64] {
        let length = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        let xs = x.scalars(as: Float.self)
        var result: [Int64] = []
        for o in 0..<outer {
            for i in 0..<inner {
                let values = (0..<length).map { xs[(o * length + $0) * inner + i] }
                let target = isMax ? values.max() : values.min()
                let k = selectLast ? values.lastIndex(of: target ?? 0) : values.firstIndex(of: target ?? 0)
                result.append(Int64(k ?? 0))
            }
        }
        return result
    }

    /// TopK of a float tensor along `axis`: values and indices, ties by lower index.
    public static func topK(_ x: Tensor, k: Int, axis: Int, largest: Bool) -> (values: [Float], indices: [Int64]) {
        let length = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.shape[..<axis].reduce(1, *)
        let xs = x.scalars(as: Float.self)
        var values = [Float](repeating: 0, count: outer * k * inner), indices = [Int64](repeating: 0, count: outer * k * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                let pairs = (0..<length).map { (xs[(o * length + $0) * inner + i], $0) }
                let ordered = pairs.sorted { a, b in a.0 == b.0 ? a.1 < b.1 : (largest ? a.0 > b.0 : a.0 < b.0) }
                for j in 0..<k {
                    values[(o * k + j) * inner + i] = ordered[j].0
                    indices[(o * k + j) * inner + i] = Int64(ordered[j].1)
                }
            }
        }
        return (values, indices)
    }
}
