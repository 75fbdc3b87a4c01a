import CVernierSIMD
import VernierGraph

/// A 2-D convolution on a small output map run as one matrix product: the windows of
/// the channel-blocked input become the rows of a matrix (`vernier_window_rows`), a
/// oneDNN matmul multiplies them by the weights (bias and the fused epilogue as its
/// post-ops), and the `[pixels, channels]` result is copied into the blocked output.
///
/// Why: on a 7x7 map, oneDNN 2.6's direct jit convolution computes a 512 -> 512 3x3
/// convolution at 94% of the fp32 roof while its 9.4 MB of weights sit in the L3
/// cache, but ResNet's weights (46 or 100 MB) do not stay there between runs, and read
/// from memory the same convolution took 1.48 ms (57%) on a 2-core Zen 5; the matrix
/// product of the same shape ([49, 4608] x [4608, 512]) streams its weights from
/// memory in 1.0 ms. ResNet-18 spent 36% of its time at one thread in four such
/// convolutions (its layer4), ResNet-50 14% in its three 3x3 ones.
final class WindowGemmConvPlan {
    let inputShape: [Int]
    let outputShape: [Int]
    let lanes: Int
    /// Output pixels: the product's rows.
    private let pixels: Int

    private let geometry: vernier_window_geometry
    private let blocks: Int
    private let product: MatMulPlan
    private let bias: Tensor?
    private let addsResidual: Bool
    /// The windows `[pixels, K]` and the product `[pixels, output channels]`, kept
    /// between runs.
    private let windows: Tensor
    private let result: Tensor
    /// Copies between the product's rows and the blocked output and addend, one per
    /// channel block, for the last run's output and addend (rebuilt when they move).
    private var toOutput: [RowPart] = []
    private var fromAddend: [RowPart] = []
    private var boundOutput: UnsafeMutableRawPointer?
    private var boundAddend: UnsafeMutableRawPointer?

    /// Output maps of at most this many pixels, weights of at least `fewestWeightBytes`.
    static let mostPixels = 64
    static let fewestWeightBytes = 2 << 20

    /// Whether a convolution of these shapes takes this plan: 2-D, one group, batch 1,
    /// channel-blocked input and output whose channels fill whole blocks, constant
    /// weights large enough to stream from memory, and a small output map.
    static func takes(input: [Int], weights: [Int], geometry: ConvGeometry, inputLayout: TensorLayout,
                      outputLayout: TensorLayout) -> Bool {
        guard input.count == 4, weights.count == 4, geometry.group == 1, input[0] == 1,
              case .channelBlocked(let lanes) = inputLayout, outputLayout == inputLayout,
              input[1] % lanes == 0, weights[0] % lanes == 0,
              let output = geometry.outputShape(input: input, weights: weights) else { return false }
        let pixels = output[2] * output[3]
        return pixels >= 1 && pixels <= mostPixels && weights.reduce(1, *) * 4 >= fewestWeightBytes
    }

    /// - Parameter weights: `[M, C, kh, kw]`, read once here.
    init(input: [Int], weights: Tensor, bias: Tensor?, geometry: ConvGeometry, epilogue: FusedEpilogue,
         layout: TensorLayout) throws {
        guard case .channelBlocked(let lanes) = layout, Self.takes(input: input, weights: weights.shape, geometry: geometry,
                                                                   inputLayout: layout, outputLayout: layout),
              let output = geometry.outputShape(input: input, weights: weights.shape) else {
            throw KernelError.invalid("no window-rows plan for input \(input), weights \(weights.shape) in \(layout)")
        }
        let (channels, height, width) = (input[1], input[2], input[3])
        let (outChannels, kh, kw) = (weights.shape[0], weights.shape[2], weights.shape[3])
        pixels = output[2] * output[3]
        let k = channels * kh * kw
        inputShape = input
        outputShape = output
        self.lanes = lanes
        blocks = channels / lanes
        self.geometry = vernier_window_geometry(
            height: height, width: width, kernel_h: kh, kernel_w: kw,
            stride_h: geometry.strides[0], stride_w: geometry.strides[1], pad_top: geometry.pads[0], pad_left: geometry.pads[1],
            dilation_h: geometry.dilations[0], dilation_w: geometry.dilations[1], out_h: output[2], out_w: output[3])

        // The weights as [M, K] in the windows' order (block, kernel row, column, lane),
        // the product's right operand transposed.
        let ordered = Tensor(shape: [outChannels, k])
        weights.withUnsafeMutableBufferPointer(as: Float.self) { w in
            ordered.withUnsafeMutableBufferPointer(as: Float.self) { b in
                var index = 0
                for m in 0..<outChannels {
                    for block in 0..<(channels / lanes) {
                        for y in 0..<kh {
                            for x in 0..<kw {
                                for lane in 0..<lanes {
                                    b[index] = w[((m * channels + block * lanes + lane) * kh + y) * kw + x]
                                    index += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        // The file's pages of the original weights need not stay resident.
        weights.releaseResidentPages()
        product = try MatMulPlan(a: [pixels, k], b: [outChannels, k], transB: true, constantB: ordered, bias: bias != nil,
                                 postOps: DNNLPostOps(epilogue: epilogue, sum: epilogue.addsResidual), split: false)
        self.bias = bias
        addsResidual = epilogue.addsResidual
        windows = Tensor(shape: [pixels, k])
        result = Tensor(shape: [pixels, outChannels])
    }

    /// Bytes the plan holds besides the packed weights: the windows and the product.
    var scratchBytes: Int { windows.byteCount + result.byteCount }

    /// Computes the convolution into `output` (blocked, the plan's shapes); `addend`, of
    /// the output's shape and layout, when the epilogue adds a residual (it may be the
    /// output's own memory). No allocation after the first run.
    func run(input: Tensor, addend: Tensor?, output: Tensor) throws {
        guard input.shape == inputShape, output.shape == outputShape, input.layout == .channelBlocked(lanes),
              output.layout == input.layout else {
            throw DNNLError.shapeMismatch("window-rows convolution for \(inputShape) -> \(outputShape) run with "
                                          + "\(input.shape) -> \(output.shape)")
        }
        if output.rawPointer != boundOutput {
            toOutput = blockCopies(blocked: output.rawPointer, toBlocked: true)
            boundOutput = output.rawPointer
        }
        vernier_window_rows(input.rawPointer.assumingMemoryBound(to: Float.self), blocks, lanes, geometry,
                            windows.rawPointer.assumingMemoryBound(to: Float.self))
        if addsResidual {
            guard let addend, addend.shape == outputShape, addend.layout == output.layout else {
                throw DNNLError.shapeMismatch("window-rows convolution needs an addend \(outputShape) in \(output.layout)")
            }
            if addend.rawPointer != boundAddend {
                fromAddend = blockCopies(blocked: addend.rawPointer, toBlocked: false)
                boundAddend = addend.rawPointer
            }
            // The matmul's sum post-op adds what the result holds: the addend, as rows.
            copyRows(fromAddend, rows: pixels)
        }
        try product.run(a: windows, b: nil, bias: bias, output: result)
        copyRows(toOutput, rows: pixels)
    }

    /// One copy per channel block between the product's rows (`result`) and a blocked
    /// tensor at `blocked`, in either direction, over the pixels as rows.
    private func blockCopies(blocked: UnsafeMutableRawPointer, toBlocked: Bool) -> [RowPart] {
        let float = MemoryLayout<Float>.stride
        let outChannels = outputShape[1]
        let rowBytes = outChannels * float, blockBytes = lanes * float
        return (0..<(outChannels / lanes)).map { block in
            let row = result.rawPointer + block * blockBytes, plane = blocked + block * pixels * blockBytes
            return toBlocked
                ? RowPart(from: row, sourceStride: rowBytes, to: plane, destinationStride: blockBytes, bytes: blockBytes)
                : RowPart(from: plane, sourceStride: blockBytes, to: row, destinationStride: rowBytes, bytes: blockBytes)
        }
    }
}
