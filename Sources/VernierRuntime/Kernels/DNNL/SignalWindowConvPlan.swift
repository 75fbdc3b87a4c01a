import VernierGraph

/// A 1-D convolution over a plain signal of a few channels with a wide window (a learned
/// audio filterbank: one channel, 400 taps, stride 160) run as one matrix product: the
/// windows of the signal become the rows of a matrix, each followed by a 1 for the bias,
/// a oneDNN matmul multiplies them by the weights `[C x K + 1, M]` (packed at plan time,
/// the bias as their last row) with the fused epilogue as its post-ops, and the
/// `[positions, M]` result is transposed into the plain `[M, positions]` output.
/// (The weights as the left operand would write the output directly, but oneDNN cannot
/// pack a left operand: the product then copied the windows on every run and took 25 us
/// at one thread against 17 at two.)
///
/// Why: oneDNN 2.6 has no direct kernel for so few channels and runs it through its
/// gemm:jit convolution, which took 47 us at one thread for the keyword-spotting
/// model's 1 -> 64 channel, 400-tap frontend on 16000 samples (2.6 M multiply-adds,
/// 55 GMAC/s: a third of what its other convolutions reach). ONNX Runtime took 39 us.
final class SignalWindowConvPlan {
    let inputShape: [Int]
    let outputShape: [Int]
    private let channels: Int, taps: Int, length: Int
    private let stride: Int, dilation: Int, padBegin: Int
    private let positions: Int
    /// One window row: channels x taps values, then 1.
    private let row: Int
    private let outChannels: Int
    private let product: MatMulPlan
    /// `[positions, row]` and the product `[positions, M]`, kept between runs; the 1s at
    /// the ends of the windows' rows set once.
    private let windows: Tensor
    private let result: Tensor

    /// Inputs of fewer channels than a channel block (oneDNN's direct kernels want whole
    /// blocks) and windows of at least this many values take the plan.
    static let fewestWindowValues = 64

    /// Whether a convolution of these shapes takes this plan: 1-D, one group, batch 1,
    /// plain input and output, fewer input channels than `block`, a window of
    /// `fewestWindowValues` values or more over all channels, and no fused residual.
    static func takes(input: [Int], weights: [Int], geometry: ConvGeometry, inputLayout: TensorLayout,
                      outputLayout: TensorLayout, epilogue: FusedEpilogue, block: Int) -> Bool {
        guard input.count == 3, weights.count == 3, geometry.group == 1, input[0] == 1, input[1] < block, !epilogue.addsResidual,
              inputLayout == .plain, outputLayout == .plain,
              let output = geometry.outputShape(input: input, weights: weights), output[2] >= 1 else { return false }
        return weights[1] * weights[2] >= fewestWindowValues
    }

    /// - Parameter weights: `[M, C, K]`, read once here; `bias`: M values or nil.
    init(input: [Int], weights w: Tensor, bias: Tensor?, geometry: ConvGeometry, epilogue: FusedEpilogue, block: Int) throws {
        guard Self.takes(input: input, weights: w.shape, geometry: geometry, inputLayout: .plain, outputLayout: .plain,
                         epilogue: epilogue, block: block),
              let output = geometry.outputShape(input: input, weights: w.shape) else {
            throw KernelError.invalid("no signal-window plan for input \(input), weights \(w.shape)")
        }
        if let bias, bias.elementCount != w.shape[0] {
            throw KernelError.invalid("Conv bias has \(bias.elementCount) values for \(w.shape[0]) output channels")
        }
        inputShape = input
        outputShape = output
        (channels, length, taps) = (input[1], input[2], w.shape[2])
        (stride, dilation, padBegin) = (geometry.strides[0], geometry.dilations[0], geometry.pads[0])
        positions = output[2]
        row = channels * taps + 1
        outChannels = w.shape[0]
        let stored = w.scalars(as: Float.self)
        let biasValues = bias?.scalars(as: Float.self)
        // [row, M]: the weights transposed, the bias as the last row.
        var packed = [Float](repeating: 0, count: row * outChannels)
        for m in 0..<outChannels {
            for i in 0..<(row - 1) { packed[i * outChannels + m] = stored[m * (row - 1) + i] }
            packed[(row - 1) * outChannels + m] = biasValues?[m] ?? 0
        }
        windows = Tensor(shape: [positions, row])
        result = Tensor(shape: [positions, outChannels])
        let (rows, width) = (positions, row)
        windows.withUnsafeMutableBufferPointer(as: Float.self) { b in
            for p in 0..<rows { b[p * width + width - 1] = 1 }
        }
        product = try MatMulPlan(a: [positions, row], b: [row, outChannels],
                                 constantB: Tensor(.float, shape: [row, outChannels], values: packed),
                                 postOps: DNNLPostOps(epilogue: epilogue), split: false)
        w.releaseResidentPages()
    }

    /// Bytes the plan holds besides the packed weights: the windows and the product.
    var scratchBytes: Int { windows.byteCount + result.byteCount }

    /// Computes the convolution into `output` (plain, the plan's shapes).
    func run(input: Tensor, output: Tensor) throws {
        guard input.shape == inputShape, output.shape == outputShape, input.layout == .plain, output.layout == .plain else {
            throw DNNLError.shapeMismatch("signal-window convolution for \(inputShape) -> \(outputShape) run with "
                                          + "\(input.shape) -> \(output.shape)")
        }
        fillWindows(from: input.rawPointer.assumingMemoryBound(to: Float.self))
        try product.run(a: windows, output: result)
        let r = UnsafePointer(result.rawPointer.assumingMemoryBound(to: Float.self))
        let y = output.rawPointer.assumingMemoryBound(to: Float.self)
        let (channels, positions) = (outChannels, positions)
        ThreadPool.parallelFor(channels, minimumPerThread: 8) { range in
            for m in range {
                for p in 0..<positions { y[m * positions + p] = r[p * channels + m] }
            }
        }
    }

    /// The rows of `windows`, split over the threads.
    private func fillWindows(from signal: UnsafePointer<Float>) {
        let b = windows.rawPointer.assumingMemoryBound(to: Float.self)
        ThreadPool.parallelFor(positions, minimumPerThread: 16) { range in
            for p in range { self.fillWindow(p, into: b, from: signal) }
        }
    }

    /// Row p of `windows`: for each channel, the taps of the window at position p, zeros
    /// where they fall in the padding. Without dilation a window's taps inside the signal
    /// are one contiguous run, copied at once.
    private func fillWindow(_ p: Int, into b: UnsafeMutablePointer<Float>, from signal: UnsafePointer<Float>) {
        let start = p * stride - padBegin
        for c in 0..<channels {
            let target = b + p * row + c * taps
            let source = signal + c * length
            if dilation == 1 {
                let first = min(taps, max(0, -start)), end = max(first, min(taps, length - start))
                if first > 0 { target.update(repeating: 0, count: first) }
                if end > first { target.advanced(by: first).update(from: source + (start + first), count: end - first) }
                if end < taps { target.advanced(by: end).update(repeating: 0, count: taps - end) }
            } else {
                for k in 0..<taps {
                    let x = start + k * dilation
                    target[k] = x >= 0 && x < length ? source[x] : 0
                }
            }
        }
    }
}
