import Foundation

extension ReferenceKernels {
    /// MaxPool / AveragePool / LpPool on a float tensor `[N, C, spatial...]`, every output
    /// from its whole window, tap by tap. Also returns MaxPool's row-major flat indices.
    static func pool(_ x: Tensor, window: PoolWindow, kind: PoolKind) throws -> (values: Tensor, indices: [Int]) {
        let spatial = Array(x.shape[2...])
        let r = try window.resolve(spatial)
        let n = spatial.count
        let planes = x.shape[0] * x.shape[1]
        let inCount = spatial.reduce(1, *), outCount = r.output.reduce(1, *)
        let kernelCount = window.kernel.reduce(1, *)
        let xs = x.scalars(as: Float.self)
        var ys: [Float] = [], indices: [Int] = []
        for plane in 0..<planes {
            for o in 0..<outCount {
                let outIndex = unflatten(o, r.output)
                var maxValue = -Double.infinity, maxIndex = -1
                var sum = 0.0, count = 0
                for t in 0..<kernelCount {
                    let tap = unflatten(t, window.kernel)
                    var inside = true
                    var flat = 0
                    for i in 0..<n {
                        let c = outIndex[i] * window.strides[i] - r.padBegin[i] + tap[i] * window.dilations[i]
                        if c < 0 || c >= spatial[i] { inside = false }
                        flat = flat * spatial[i] + c
                    }
                    guard inside else { continue }
                    let v = Double(xs[plane * inCount + flat])
                    if v > maxValue || maxIndex < 0 { maxValue = v; maxIndex = plane * inCount + flat }
                    switch kind {
                    case .lp(let p): sum += Foundation.pow(Swift.abs(v), p)
                    default: sum += v
                    }
                    count += 1
                }
                switch kind {
                case .max:
                    ys.append(Float(maxValue))
                    indices.append(maxIndex)
                case .average(let includePad):
                    ys.append(Float(sum / Double(includePad ? kernelCount : count)))
                case .lp(let p):
                    ys.append(Float(Foundation.pow(sum, 1 / p)))
                }
            }
        }
        return (Tensor(shape: Array(x.shape[0..<2]) + r.output, values: ys), indices)
    }

    /// GlobalAveragePool / GlobalMaxPool / GlobalLpPool on a float tensor.
    static func globalPool(_ x: Tensor, kind: PoolKind) -> Tensor {
        let planes = x.shape[0] * x.shape[1]
        let size = x.shape[2...].reduce(1, *)
        let xs = x.scalars(as: Float.self).map { Double($0) }
        var ys: [Float] = []
        for plane in 0..<planes {
            let values = xs[(plane * size)..<((plane + 1) * size)]
            switch kind {
            case .max: ys.append(Float(values.max() ?? -.infinity))
            case .average: ys.append(Float(values.reduce(0, +) / Double(size)))
            case .lp(let p): ys.append(Float(Foundation.pow(values.reduce(0) { $0 + Foundation.pow(Swift.abs($1), p) }, 1 / p)))
            }
        }
        return Tensor(shape: Array(x.shape[0..<2]) + Array(repeating: 1, count: x.rank - 2), values: ys)
    }

    /// The multi-index of row-major position `flat` in `shape`.
    static func unflatten(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            index[i] = rest % shape[i]
            rest /= shape[i]
        }
        return index
    }
}
