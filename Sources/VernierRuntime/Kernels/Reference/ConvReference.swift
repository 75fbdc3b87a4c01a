/// Plain reference kernels: obvious loops, no blocking, no threads. They exist to check
/// the fast kernels in tests; the executor never runs them.
public enum ReferenceKernels {}

extension ReferenceKernels {
    /// A 1-D, 2-D or 3-D window seen as 3-D (leading spatial axes of size 1), so one
    /// loop nest serves every rank.
    private struct Window3 {
        var input: [Int], kernel: [Int], output: [Int]
        var strides: [Int], dilations: [Int], padBegin: [Int]

        init(input: [Int], kernel: [Int], output: [Int], geometry: ConvGeometry) {
            let n = geometry.spatialRank
            let lead = 3 - n
            func lift(_ values: [Int], _ fill: Int) -> [Int] { Array(repeating: fill, count: lead) + values }
            self.input = lift(Array(input[2...]), 1)
            self.kernel = lift(Array(kernel[2...]), 1)
            self.output = lift(Array(output[2...]), 1)
            strides = lift(geometry.strides, 1)
            dilations = lift(geometry.dilations, 1)
            padBegin = lift(Array(geometry.pads[0..<n]), 0)
        }
    }

    /// Adds bias and addend, applies the activation, and packs the result.
    private static func finish(_ sums: [Double], shape: [Int], bias: Tensor?, addend: Tensor?,
                               epilogue: FusedEpilogue) -> Tensor {
        let b = bias?.scalars(as: Float.self)
        let r = addend?.scalars(as: Float.self)
        let channels = shape[1], spatial = shape[2...].reduce(1, *)
        var y = [Float](repeating: 0, count: sums.count)
        for index in sums.indices {
            var v = sums[index]
            if let b { v += Double(b[(index / spatial) % channels]) }
            if let r { v += Double(r[index]) }
            y[index] = Float(epilogue.activate(v))
        }
        return Tensor(shape: shape, values: y)
    }

    /// Convolution over 1, 2 or 3 spatial axes, `[N, C, ...]` with weights
    /// `[M, C/group, k...]`, groups, strides, pads, dilations, optional bias `[M]`, then
    /// the epilogue (`addend` of the output's shape when it adds a residual).
    /// Accumulates in Double.
    public static func conv(input: Tensor, weights: Tensor, bias: Tensor? = nil, geometry: ConvGeometry,
                            epilogue: FusedEpilogue = .none, addend: Tensor? = nil) -> Tensor {
        guard let outShape = geometry.outputShape(input: input.shape, weights: weights.shape) else {
            preconditionFailure("conv shapes do not fit: \(input.shape) * \(weights.shape), \(geometry)")
        }
        let w3 = Window3(input: input.shape, kernel: weights.shape, output: outShape, geometry: geometry)
        let (n, c, m) = (input.shape[0], input.shape[1], weights.shape[0])
        let g = geometry.group
        let cPerGroup = c / g, mPerGroup = m / g
        let x = input.scalars(as: Float.self)
        let wt = weights.scalars(as: Float.self)
        let inVolume = w3.input.reduce(1, *), kVolume = w3.kernel.reduce(1, *), outVolume = w3.output.reduce(1, *)
        var sums = [Double](repeating: 0, count: n * m * outVolume)
        for batch in 0..<n {
            for oc in 0..<m {
                let group = oc / mPerGroup
                for od in 0..<w3.output[0] { for oh in 0..<w3.output[1] { for ow in 0..<w3.output[2] {
                    var sum = 0.0
                    for icInGroup in 0..<cPerGroup {
                        let ic = group * cPerGroup + icInGroup
                        for kd in 0..<w3.kernel[0] {
                            let id = od * w3.strides[0] - w3.padBegin[0] + kd * w3.dilations[0]
                            if id < 0 || id >= w3.input[0] { continue }
                            for kh in 0..<w3.kernel[1] {
                                let ih = oh * w3.strides[1] - w3.padBegin[1] + kh * w3.dilations[1]
                                if ih < 0 || ih >= w3.input[1] { continue }
                                for kw in 0..<w3.kernel[2] {
                                    let iw = ow * w3.strides[2] - w3.padBegin[2] + kw * w3.dilations[2]
                                    if iw < 0 || iw >= w3.input[2] { continue }
                                    let xv = x[(batch * c + ic) * inVolume + (id * w3.input[1] + ih) * w3.input[2] + iw]
                                    let wv = wt[(oc * cPerGroup + icInGroup) * kVolume
                                                + (kd * w3.kernel[1] + kh) * w3.kernel[2] + kw]
                                    sum += Double(xv) * Double(wv)
                                }
                            }
                        }
                    }
                    sums[(batch * m + oc) * outVolume + (od * w3.output[1] + oh) * w3.output[2] + ow] = sum
                }}}
            }
        }
        return finish(sums, shape: outShape, bias: bias, addend: addend, epilogue: epilogue)
    }

    /// `conv` with an optional ReLU (the older spelling).
    public static func conv(input: Tensor, weights: Tensor, bias: Tensor? = nil,
                            geometry: ConvGeometry, relu: Bool) -> Tensor {
        conv(input: input, weights: weights, bias: bias, geometry: geometry,
             epilogue: FusedEpilogue(activation: relu ? .relu : nil))
    }

    /// Transposed convolution (ONNX ConvTranspose) over 1, 2 or 3 spatial axes: input
    /// `[N, C, ...]`, weights `[C, M/group, k...]`, output by
    /// `ConvGeometry.transposedOutputShape`. Each input element scatters
    /// `x * w` to output position `i * stride - padBegin + k * dilation`.
    public static func convTranspose(input: Tensor, weights: Tensor, bias: Tensor? = nil, geometry: ConvGeometry,
                                     epilogue: FusedEpilogue = .none, addend: Tensor? = nil) -> Tensor {
        guard let outShape = geometry.transposedOutputShape(input: input.shape, weights: weights.shape) else {
            preconditionFailure("convTranspose shapes do not fit: \(input.shape) * \(weights.shape), \(geometry)")
        }
        let w3 = Window3(input: input.shape, kernel: weights.shape, output: outShape, geometry: geometry)
        let (n, c, m) = (input.shape[0], input.shape[1], outShape[1])
        let g = geometry.group
        let cPerGroup = c / g, mPerGroup = m / g
        let x = input.scalars(as: Float.self)
        let wt = weights.scalars(as: Float.self)
        let inVolume = w3.input.reduce(1, *), kVolume = w3.kernel.reduce(1, *), outVolume = w3.output.reduce(1, *)
        var sums = [Double](repeating: 0, count: n * m * outVolume)
        for batch in 0..<n {
            for ic in 0..<c {
                let group = ic / cPerGroup
                for id in 0..<w3.input[0] { for ih in 0..<w3.input[1] { for iw in 0..<w3.input[2] {
                    let xv = Double(x[(batch * c + ic) * inVolume + (id * w3.input[1] + ih) * w3.input[2] + iw])
                    for ocInGroup in 0..<mPerGroup {
                        let oc = group * mPerGroup + ocInGroup
                        for kd in 0..<w3.kernel[0] {
                            let od = id * w3.strides[0] - w3.padBegin[0] + kd * w3.dilations[0]
                            if od < 0 || od >= w3.output[0] { continue }
                            for kh in 0..<w3.kernel[1] {
                                let oh = ih * w3.strides[1] - w3.padBegin[1] + kh * w3.dilations[1]
                                if oh < 0 || oh >= w3.output[1] { continue }
                                for kw in 0..<w3.kernel[2] {
                                    let ow = iw * w3.strides[2] - w3.padBegin[2] + kw * w3.dilations[2]
                                    if ow < 0 || ow >= w3.output[2] { continue }
                                    let wv = wt[(ic * mPerGroup + ocInGroup) * kVolume
                                                + (kd * w3.kernel[1] + kh) * w3.kernel[2] + kw]
                                    sums[(batch * m + oc) * outVolume + (od * w3.output[1] + oh) * w3.output[2] + ow]
                                        += xv * Double(wv)
                                }
                            }
                        }
                    }
                }}}
            }
        }
        return finish(sums, shape: outShape, bias: bias, addend: addend, epilogue: epilogue)
    }
}
