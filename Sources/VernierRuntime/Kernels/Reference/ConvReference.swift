/// Plain reference kernels: obvious loops, no blocking, no threads. They exist to check
/// the fast kernels in tests; the executor never runs them.
public enum ReferenceKernels {}

extension ReferenceKernels {
    /// 2-D convolution, NCHW, with groups, strides, pads, dilations and optional bias
    /// (`[M]`); optionally followed by ReLU. Accumulates in Double.
    public static func conv(input: Tensor, weights: Tensor, bias: Tensor? = nil,
                            geometry: ConvGeometry, relu: Bool = false) -> Tensor {
        guard let outShape = geometry.outputShape(input: input.shape, weights: weights.shape) else {
            preconditionFailure("conv shapes do not fit: \(input.shape) * \(weights.shape), \(geometry)")
        }
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (m, kh, kw) = (weights.shape[0], weights.shape[2], weights.shape[3])
        let (oh, ow) = (outShape[2], outShape[3])
        let g = geometry.group
        let cPerGroup = c / g, mPerGroup = m / g
        let (sh, sw) = (geometry.strides[0], geometry.strides[1])
        let (dh, dw) = (geometry.dilations[0], geometry.dilations[1])
        let (padTop, padLeft) = (geometry.pads[0], geometry.pads[1])
        let x = input.scalars(as: Float.self)
        let wt = weights.scalars(as: Float.self)
        let b = bias?.scalars(as: Float.self)
        var y = [Float](repeating: 0, count: n * m * oh * ow)
        for batch in 0..<n {
            for oc in 0..<m {
                let group = oc / mPerGroup
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = Double(b?[oc] ?? 0)
                        for icInGroup in 0..<cPerGroup {
                            let ic = group * cPerGroup + icInGroup
                            for ky in 0..<kh {
                                let iy = oy * sh - padTop + ky * dh
                                if iy < 0 || iy >= h { continue }
                                for kx in 0..<kw {
                                    let ix = ox * sw - padLeft + kx * dw
                                    if ix < 0 || ix >= w { continue }
                                    let xv = x[((batch * c + ic) * h + iy) * w + ix]
                                    let wv = wt[((oc * cPerGroup + icInGroup) * kh + ky) * kw + kx]
                                    sum += Double(xv) * Double(wv)
                                }
                            }
                        }
                        if relu { sum = max(sum, 0) }
                        y[((batch * m + oc) * oh + oy) * ow + ox] = Float(sum)
                    }
                }
            }
        }
        return Tensor(shape: outShape, values: y)
    }
}
