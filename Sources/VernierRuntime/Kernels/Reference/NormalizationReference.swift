import Foundation

extension ReferenceKernels {
    /// BatchNormalization, inference form, float `[N, C, ...]`.
    public static func batchNorm(_ x: Tensor, scale: [Float], bias: [Float], mean: [Float], variance: [Float],
                                 epsilon: Double = 1e-5) -> Tensor {
        let c = x.shape[1], spatial = x.shape[2...].reduce(1, *)
        let xs = x.scalars(as: Float.self)
        var ys = [Float](repeating: 0, count: xs.count)
        for i in 0..<xs.count {
            let ch = (i / spatial) % c
            let normalized = (Double(xs[i]) - Double(mean[ch])) / (Double(variance[ch]) + epsilon).squareRoot()
            ys[i] = Float(normalized * Double(scale[ch]) + Double(bias[ch]))
        }
        return Tensor(shape: x.shape, values: ys)
    }

    /// LayerNormalization (or RMSNormalization when `rms`) over `x.shape[axis...]`; scale
    /// and bias hold one value per element of that block. Returns y, mean, 1/std per row.
    public static func layerNorm(_ x: Tensor, axis: Int, scale: [Float], bias: [Float]?, epsilon: Double = 1e-5,
                                 rms: Bool = false) -> (y: Tensor, mean: [Float], invStd: [Float]) {
        let cols = x.shape[axis...].reduce(1, *), rows = x.elementCount / max(cols, 1)
        let xs = x.scalars(as: Float.self).map { Double($0) }
        var ys = [Float](repeating: 0, count: xs.count), means: [Float] = [], invs: [Float] = []
        for row in 0..<rows {
            let values = xs[(row * cols)..<((row + 1) * cols)]
            let mean = rms ? 0 : values.reduce(0, +) / Double(cols)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cols)
            let inv = 1 / (variance + epsilon).squareRoot()
            for j in 0..<cols {
                ys[row * cols + j] = Float((xs[row * cols + j] - mean) * inv * Double(scale[j]) + Double(bias?[j] ?? 0))
            }
            means.append(Float(mean))
            invs.append(Float(inv))
        }
        return (Tensor(shape: x.shape, values: ys), means, invs)
    }

    /// GroupNormalization with per-channel scale and bias (InstanceNormalization when
    /// `groups` equals the channel count).
    public static func groupNorm(_ x: Tensor, groups: Int, scale: [Float], bias: [Float], epsilon: Double = 1e-5) -> Tensor {
        let n = x.shape[0], c = x.shape[1], spatial = x.shape[2...].reduce(1, *)
        let xs = x.scalars(as: Float.self).map { Double($0) }
        var ys = [Float](repeating: 0, count: xs.count)
        let block = c / groups * spatial
        for b in 0..<(n * groups) {
            let values = xs[(b * block)..<((b + 1) * block)]
            let mean = values.reduce(0, +) / Double(block)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(block)
            for j in 0..<block {
                let ch = (b % groups) * (c / groups) + j / spatial
                let normalized = (xs[b * block + j] - mean) / (variance + epsilon).squareRoot()
                ys[b * block + j] = Float(normalized * Double(scale[ch]) + Double(bias[ch]))
            }
        }
        return Tensor(shape: x.shape, values: ys)
    }

    public enum SoftmaxForm: Sendable { case softmax, logSoftmax, hardmax }

    /// Softmax, LogSoftmax or Hardmax of a float tensor along the single dim `axis`
    /// (opset 13 form; the opset 1-12 form is this on the input reshaped to 2-D).
    public static func softmax(_ x: Tensor, axis: Int, form: SoftmaxForm) -> Tensor {
        let a = axis < 0 ? axis + x.rank : axis
        let length = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        let outer = x.shape[..<a].reduce(1, *)
        let xs = x.scalars(as: Float.self).map { Double($0) }
        var ys = [Float](repeating: 0, count: xs.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let positions = (0..<length).map { (o * length + $0) * inner + i }
                let values = positions.map { xs[$0] }
                let m = values.max() ?? 0
                let first = values.firstIndex(of: m) ?? 0
                let sum = values.reduce(0) { $0 + Foundation.exp($1 - m) }
                for (k, p) in positions.enumerated() {
                    switch form {
                    case .softmax: ys[p] = Float(Foundation.exp(values[k] - m) / sum)
                    case .logSoftmax: ys[p] = Float(values[k] - m - Foundation.log(sum))
                    case .hardmax: ys[p] = k == first ? 1 : 0
                    }
                }
            }
        }
        return Tensor(shape: x.shape, values: ys)
    }

    /// LRN across channels of a float `[N, C, ...]` tensor.
    public static func lrn(_ x: Tensor, size: Int, alpha: Double = 1e-4, beta: Double = 0.75, bias: Double = 1) -> Tensor {
        let c = x.shape[1], spatial = x.shape[2...].reduce(1, *)
        let xs = x.scalars(as: Float.self).map { Double($0) }
        var ys = [Float](repeating: 0, count: xs.count)
        for i in 0..<xs.count {
            let ch = (i / spatial) % c, base = i - ch * spatial
            var sum = 0.0
            for k in max(0, ch - (size - 1) / 2)...min(c - 1, ch + size / 2) { sum += xs[base + k * spatial] * xs[base + k * spatial] }
            ys[i] = Float(xs[i] / Foundation.pow(bias + alpha / Double(size) * sum, beta))
        }
        return Tensor(shape: x.shape, values: ys)
    }
}
