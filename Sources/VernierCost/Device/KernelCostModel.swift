import Foundation

/// A kernel's time as a weighted sum of what it does: microseconds per multiply-add, per
/// output and input element, per byte moved, per element of each fused epilogue op, plus
/// a fixed cost. Fitted per op class and thread count on measured kernels.
///
/// Why a second model beside the efficiency curves: a curve gives one efficiency per
/// kernel size, so a convolution that spends half its time in a fused Sigmoid+Mul, a
/// 1x1 convolution and a 3x3 one of equal size all get the same rate. On the same
/// leave-one-out measurements of 17 real models, weighing the terms separately took
/// the end-to-end predictions within 10% from 41% to 59% and the median per-layer
/// error from 20% to 14% (Scripts/prediction_accuracy.sh).
public struct KernelCostModel: Codable, Sendable, Equatable {
    public var opClass: OpClass
    public var threads: Int
    /// Microseconds per unit of each feature (`KernelCostModel.features`), never negative.
    public var weights: [String: Double]
    /// Kernels the model was fitted on.
    public var samples: Int
    /// Bytes moved above which a kernel streams from beyond the cores' L2 caches: its
    /// bytes then also count as `streamed_bytes`, at memory's rate rather than the
    /// caches'. Nil: one rate per byte.
    public var streamingBytes: Double?
    /// The last-level cache: a kernel of a model whose bytes (weights and planned
    /// activations, `KernelSample.modelBytes`) fit in it finds them there on the next
    /// run, so nothing it moves streams from memory. Nil: every model streams.
    ///
    /// Leave-one-out on 24 real models (Zen 5, 32 MB L3): MobileNetV2 went from +11/+13%
    /// to +7/+6%, end to end within 10% from 70.8% to 77.1%, RMSPE 13.4% to 12.2%. Giving
    /// such kernels features of their own instead (a rate for cached bytes, another for
    /// cached matrix-vector products) fitted worse: too few models of each kind.
    public var residentBytes: Double?
    /// The share of the last-level cache a model's bytes may take and still be found
    /// there on the next run (`residentBytes`): the rest holds other data, and ways
    /// conflict before the cache is full. Set between the models that show the edge on
    /// a 32 MB L3 (Zen 5): MobileNetV2's 20 MB stay (its classifier reads its weights at
    /// 94 GB/s), EfficientNet-B0's 27 MB do not (52 GB/s, memory's rate). With the whole
    /// L3, leave-one-out on 24 models read 75.0% within 10% (EfficientNet-B0 -12%/-14%);
    /// with three quarters 77.1% (-7%/-11%); with half 72.9% (MobileNetV2 +11%/+12%).
    public static let residentShareOfL3 = 0.75
    /// Bytes a core moves at the device's roofs in the time of one float multiply-add
    /// (its bandwidth over its multiply-add rate at one thread): a float convolution's
    /// first `macs` times this many bytes move while it computes, and only the rest is
    /// charged (`Feature.bytes`; `overlapsArithmetic`). Nil: every byte is.
    ///
    /// Added in full, the bytes of a compute-bound convolution made the fit charge every
    /// convolution for traffic that overlaps its arithmetic, and took the multiply-add
    /// rate above what the large ones run at to make up. MobileNetV3-Small's small 1x1
    /// convolutions, which run at the rate of ResNet-50's (129 GMAC/s), came out 1.2x
    /// their time. Leave-one-out on 24 models (6b7ab39's profiles): within 10% 89.6% ->
    /// 95.8%, RMSPE 5.7% -> 5.3%; MobileNetV3-Small +14/+13% -> +9/+10%. On four earlier
    /// profile sets RMSPE fell by 0.4-0.5 points on each. The balance at each thread
    /// count instead (two cores share the memory bandwidth: half the overlap at two
    /// threads) read 93.8%: the convolutions' data mostly sit in each core's caches.
    /// Integer convolutions too: layers within 10% 69.9% -> 71.4%, but MobileNetV3-Small
    /// at two threads out again. Float matrix products other than matrix-vector ones too:
    /// ViT-B/16 at one thread -11.1% -> -4.4% (BERT's attention products, at 0.12 bytes
    /// per multiply-add, set the rate per byte the projections pay), layers within 10%
    /// 70.3% -> 72.7%; but VGG-11 at one thread +13.8% (its Winograd F(4x4) convolutions'
    /// excess no longer offset by its classifier's shortfall), and calibrated on ONNX
    /// Runtime's traces at two threads, RMSPE 17.7% -> 27.5% (VGG-11 predicted at 2x).
    public var overlapBytesPerMac: Double?

    /// A float convolution: its bytes overlap its arithmetic (`overlapBytesPerMac`).
    static func overlapsArithmetic(_ kernel: KernelSample) -> Bool { !kernel.integer && kernel.opClass == .conv }

    public init(opClass: OpClass, threads: Int, weights: [String: Double], samples: Int, streamingBytes: Double? = nil,
                residentBytes: Double? = nil, overlapBytesPerMac: Double? = nil) {
        self.overlapBytesPerMac = overlapBytesPerMac
        self.opClass = opClass
        self.threads = threads
        self.weights = weights
        self.samples = samples
        self.streamingBytes = streamingBytes
        self.residentBytes = residentBytes
    }

    enum CodingKeys: String, CodingKey {
        case opClass = "op_class", threads, weights, samples, streamingBytes = "streaming_bytes", residentBytes = "resident_bytes"
        case overlapBytesPerMac = "overlap_bytes_per_mac"
    }

    /// The classes whose kernels are dominated by arithmetic on shapes the features
    /// describe, and pooling, whose time follows its input and output elements more
    /// than its bytes (a global pool reads a map and writes one value per channel); the
    /// rest keep their efficiency curves. Pooling's model took the leave-one-out
    /// predictions within 10% from 56.8% to 59.1% on 40827bc's profiles and its share
    /// of the end-to-end error from 0.7% to 0.5%, and left ONNX Runtime's unchanged.
    /// Giving element-wise kernels one too gained within 20% (88.6%) but lost within
    /// 10% (52.3%): they stay on their curve. Quantization kernels are weighed by their
    /// op (`Feature.opPrefix`): one curve over them all placed MobileNetV3 int8's plain
    /// DequantizeLinear passes, which run from cache at 110-155 GB/s, at the 30 GB/s of
    /// the average conversion group. Leave-one-out on 24 models: within 10% 87.5% ->
    /// 91.7%, MobileNetV3-Small int8 +19% -> +5% at one thread.
    public static let classes: [OpClass] = [.conv, .depthwiseConv, .convTranspose, .matmul, .pooling, .quantization]

    /// Classes whose fit weighs each kernel by the square root of its time as well
    /// (`fit`). The quantization class mixes hundreds of sub-microsecond conversions of
    /// scalars and bias vectors with passes over whole activations; on relative errors
    /// alone the small ones set the rates, and the class's sum came out 15-39% under on
    /// all 14 int8 predictions (by up to 7.8% of the model; BERT int8's bias Adds at 40%
    /// of their time). With the weight the class's summed error over the 14 fell from 37%
    /// to 19% of their models' times. Weighing the other classes so lost
    /// five models (within 10% 91.7% -> 81.2%).
    static let timeWeightedClasses: Set<OpClass> = [.quantization]

    /// Fewest measured kernels a model is fitted on: a few per feature.
    static let minSamples = 24

    /// The fixed cost per float kernel, in microseconds.
    public var perKernelUs: Double { weights[Feature.kernel] ?? 0 }

    /// The fixed cost of an integer kernel (`integer`) or a float one, in microseconds;
    /// a profile calibrated before integer kernels had their own gives the shared one.
    public func perKernelUs(integer: Bool) -> Double {
        integer ? weights[Feature.integerPrefix + Feature.kernel] ?? perKernelUs : perKernelUs
    }

    /// Feature names, as stored in device profiles.
    enum Feature {
        /// The fixed cost of a kernel; integer kernels have their own (`integerPrefix`):
        /// they set up requantization and zero-point terms besides the product. Shared,
        /// the constant fitted at 2.5 us on the convolutions, above what MobileNetV3's
        /// float squeeze-excitation convolutions take in all (1.1-1.7 us). Leave-one-out
        /// on 24 models: RMSPE 6.9% -> 6.7%, layers within 10% 68.7% -> 69.9%.
        static let kernel = "kernel"
        static let macs = "macs"
        /// A convolution's multiply-adds split by window: 1x1 ones are matrix products
        /// with little reuse per input; larger windows reuse each input many times.
        static let pointwiseMacs = "pointwise_macs"
        static let windowMacs = "window_macs"
        /// A matrix product with fewer than `vectorRows` rows (a classifier's Gemm on
        /// one image, a squeeze-excitation 1x1 conv on a pooled map): each weight is
        /// read for one or two multiply-adds, so its time follows the weights' bytes,
        /// and fitted together with large products it gave those the rate of reading
        /// memory.
        static let vectorMacs = "vector_macs"
        static let vectorRows = 8.0
        /// A convolution the executor runs as Winograd F(2x2, 3x3) (`jit_fp32_wino_2x3`),
        /// or as Winograd when its implementation is unknown (`WinogradConvolution`):
        /// 2.25x fewer multiplies than its count says.
        static let winogradMacs = "winograd_macs"
        /// A convolution oneDNN runs as Winograd F(4x4, 3x3) (`jit_wino_4x3`): 4x fewer
        /// multiplies than its count says, against F(2x2, 3x3)'s 2.25x. oneDNN picks the
        /// variant by shape and thread count (ResNet-50's 64-channel 56x56 convolutions
        /// get F(2x2), its 128-channel 28x28 ones and all of VGG-11's F(4x4); DenseNet's
        /// 56x56 ones F(4x4) at one thread and F(2x2) at two), so the kernel's
        /// implementation (`KernelSample.implementation`) says which; without it the
        /// shape rule's `winogradMacs`. Leave-one-out leaves VGG-11's at 1.1-1.6x their
        /// time all the same (at the one rate 1.25-1.6x; VGG-11 +10.5% -> +8.9% at one
        /// thread): the other models' F(4x4) convolutions, of 128 input channels, run at
        /// 171-220 GMAC/s of direct count, VGG-11's, of up to 512, at 280-364.
        static let winograd4Macs = "winograd_f4_macs"
        static let outputElements = "output_elements"
        static let inputElements = "input_elements"
        static let bytes = "bytes"
        static let streamedBytes = "streamed_bytes"
        /// Bytes reordered between layouts inside the kernel (`KernelSample.relayoutBytes`):
        /// where the executor keeps an activation in another layout than the kernel's
        /// primitive works in. EfficientNet-B0 int8 reorders 4.8 MB per run in 34 of its
        /// kernels, ShuffleNet's channel shuffles 4.8 MB in 37, U-Net 56 MB in 13,
        /// MobileNetV2 int8 0.2 MB in 2. Leave-one-out on 24 models: within 10% 77.1% ->
        /// 87.5%, within 20% 95.8% -> 97.9%, RMSPE 9.4% -> 7.5%, layers within 10% 56.3%
        /// -> 68.4%. One rate for float and integer reorders read 83.3%: ShuffleNet's
        /// float ones went +26%/+31% at the rate fitted mostly on int8 ones.
        static let relayoutBytes = "relayout_bytes"
        static let epiloguePrefix = "epilogue."
        /// Per output element, the anchor op of a quantization kernel: a plain
        /// DequantizeLinear, a QuantizeLinear and a QDQ group around an Add or a Mul take
        /// different passes over their elements.
        static let opPrefix = "op."
        /// Epilogue ops of a few instructions per element on outputs still in registers
        /// (a clamp, a piecewise-linear gate): no feature, they cost nothing measurable.
        /// Fitted, their weights only soaked up what set their kernels' models apart:
        /// depthwise Relu, which only the OCR detector's large maps and MobileNetV3 carry,
        /// came out at the cap (0.17 ns per element), and MobileNetV3's Conv+Relu
        /// depthwise convs were predicted at twice their time. Leave-one-out on 24 models:
        /// within 20% 91.7% -> 95.8%, RMSPE 9.9% -> 9.4%, MobileNetV3-Small +24/+21% ->
        /// +17/+17%.
        static let freeEpilogueOps: Set<String> = ["Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish"]
        static let integerPrefix = "int8."
        /// Integer products whose activation has a zero point other than 0.
        static let zeroPointPrefix = "int8.zero_point."
        /// A direct float convolution's kernel computes a block of up to `rowBlock`
        /// outputs along a row for up to `channelBlocks` blocks of output channels at
        /// once: each weight it loads serves the row block, each input it broadcasts
        /// serves the channel blocks. Narrow maps (DenseNet's 7x7) and few output channels
        /// (the OCR detector's 24) leave loads a larger share of each multiply-add; these
        /// two features are the multiply-adds over each blocking, so the fit can charge
        /// them. Leave-one-out on 24 models: SqueezeNet's 27x27 3x3 convs (131 GMAC/s
        /// against ResNet's 108 at 14x14) +16/+21% -> +9/+13%, the CRNN's 4x33 ones
        /// +10/+14% -> +4/+7%; within 10% 72.9% -> 75.0%, layers 54.2% -> 55.0%.
        /// Integer convolutions run other kernels (channels-last) and 1x1 ones block by
        /// positions: giving them these too lost MobileNetV2 int8 (+13% -> +18%). Not in
        /// `arithmetic`: a profile calibrated before them predicts without them.
        static let windowRowMacs = "window_row_macs"
        static let windowChannelBlockMacs = "window_channel_block_macs"
        static let rowBlock = 28.0, channelBlock = 16.0, channelBlocks = 4.0
        /// The multiply-add features, float and integer.
        static let arithmetic: Set<String> = Set([macs, pointwiseMacs, windowMacs, vectorMacs, winogradMacs, winograd4Macs]
            .flatMap { [$0, integerPrefix + $0, zeroPointPrefix + $0] })
    }

    /// A kernel's features. Nil when the kernel has no shape to weigh (a source that did
    /// not record one).
    public static func features(of kernel: KernelSample, streamingBytes: Double? = nil,
                                residentBytes: Double? = nil, overlapBytesPerMac: Double? = nil) -> [String: Double]? {
        let s = kernel.shape
        guard s.outputElements > 0 else { return nil }
        var f: [String: Double] = [(kernel.integer ? Feature.integerPrefix : "") + Feature.kernel: 1, Feature.outputElements: s.outputElements,
                                   Feature.inputElements: s.inputElements, Feature.bytes: kernel.bytes]
        let resident = residentBytes.map { cache in kernel.modelBytes.map { $0 <= cache } ?? false } ?? false
        if let limit = streamingBytes, kernel.bytes > limit, !resident { f[Feature.streamedBytes] = kernel.bytes }
        if let perMac = overlapBytesPerMac, overlapsArithmetic(kernel) {
            f[Feature.bytes] = max(0, kernel.bytes - s.macs * perMac)
        }
        // Integer kernels reorder int8 values between plain and channels-last; float ones
        // between plain and channel blocks: other reorders at another rate.
        if kernel.relayoutBytes > 0 { f[(kernel.integer ? Feature.integerPrefix : "") + Feature.relayoutBytes] = kernel.relayoutBytes }
        // Integer products run on other instructions at another rate.
        let prefix = !kernel.integer ? "" : s.sourceZeroPoint ? Feature.zeroPointPrefix : Feature.integerPrefix
        switch kernel.opClass {
        case .conv, .convTranspose:
            // Window size from the multiply-adds per output and input channel (a grouped
            // convolution reads as a smaller window, which is what its reuse is).
            let window = s.inputChannels > 0 ? s.macs / (s.outputElements * s.inputChannels) : 1
            // Which Winograd variant runs, if any: the implementation says, else the shape.
            let winogradTile = kernel.winogradTile ?? (s.isWinograd(integer: kernel.integer) ? 2 : 0)
            // A 1x1 convolution over a few positions (a squeeze-excitation conv on a
            // pooled 1x1 map) is a matrix-vector product.
            let feature = window < 1.5 ? (s.isVectorProduct ? Feature.vectorMacs : Feature.pointwiseMacs)
                : winogradTile == 4 ? Feature.winograd4Macs : winogradTile > 0 ? Feature.winogradMacs : Feature.windowMacs
            f[prefix + feature] = s.macs
            // A direct float convolution's register blocking (`Feature.windowRowMacs`).
            if feature == Feature.windowMacs, !kernel.integer, s.outputWidth > 0, s.outputChannels > 0 {
                f[Feature.windowRowMacs] = s.macs / min(s.outputWidth, Feature.rowBlock)
                let channelBlocks = (s.outputChannels / Feature.channelBlock).rounded(.up)
                f[Feature.windowChannelBlockMacs] = s.macs / min(max(1, channelBlocks), Feature.channelBlocks)
            }
        case .quantization:
            if !s.anchor.isEmpty { f[Feature.opPrefix + s.anchor] = s.outputElements }
        default:
            f[prefix + (s.isVectorProduct ? Feature.vectorMacs : Feature.macs)] = s.macs
        }
        for op in s.epilogue where !Feature.freeEpilogueOps.contains(op) {
            f[Feature.epiloguePrefix + op, default: 0] += s.outputElements
        }
        return f
    }

    /// The predicted time of `kernel`, in microseconds; nil without features, or when
    /// the kernel's arithmetic has no weight (integer products and a fit on float
    /// kernels only): leaving out its main cost would predict it far too fast. Other
    /// features the fit never saw (an epilogue op no calibration kernel had) add nothing.
    public func predictUs(_ kernel: KernelSample) -> Double? {
        guard let f = Self.features(of: kernel, streamingBytes: streamingBytes, residentBytes: residentBytes,
                                    overlapBytesPerMac: overlapBytesPerMac) else { return nil }
        // A product with a zero point the fit never saw runs at the rate of one without;
        // an integer kernel of a profile calibrated before they had their own fixed cost
        // takes the shared one.
        func weight(_ key: String) -> Double? {
            if let w = weights[key] { return w }
            if key == Feature.integerPrefix + Feature.kernel { return perKernelUs(integer: true) }
            // A profile calibrated before the Winograd variants were told apart has one rate.
            if key == Feature.winograd4Macs { return weights[Feature.winogradMacs] }
            return key.hasPrefix(Feature.zeroPointPrefix) ? weights[Feature.integerPrefix + key.dropFirst(Feature.zeroPointPrefix.count)] : nil
        }
        if f.contains(where: { $0.value > 0 && weight($0.key) == nil && Feature.arithmetic.contains($0.key) }) { return nil }
        return f.reduce(0) { $0 + $1.value * (weight($1.key) ?? 0) }
    }

    /// Fits the weights on measured kernels of one class at one thread count: least
    /// squares on relative errors (a 10 us kernel weighs as much as a 10 ms one; in
    /// `timeWeightedClasses`, each error times the square root of the kernel's time), weights
    /// kept non-negative by dropping the most negative feature and refitting. A fused
    /// epilogue op's weight is held at `epilogueCapUs` per element at most (pinned there
    /// and the rest refitted): the op works on outputs already in registers, so it costs
    /// no more than running it as a kernel of its own that streams each element in and
    /// out of memory. An epilogue only a few kernels carry otherwise soaks up what else
    /// those kernels cost: fitted on 22 real models, HardSigmoid after a convolution came
    /// out at 29 ns per element and Relu after a matmul at 385, against 0.3-0.4 for the
    /// epilogues many kernels carry; MobileNetV3's squeeze-and-excitation convolutions
    /// were predicted twice their time. `timeWeighted` (default: the class is in
    /// `timeWeightedClasses`) weighs each kernel by the square root of its time. Nil when
    /// there are too few kernels.
    static func fit(_ kernels: [KernelSample], opClass: OpClass, threads: Int, streamingBytes: Double? = nil,
                    residentBytes: Double? = nil, overlapBytesPerMac: Double? = nil, epilogueCapUs: Double? = nil,
                    timeWeighted: Bool? = nil) -> KernelCostModel? {
        let rows = kernels.compactMap { k -> (features: [String: Double], us: Double)? in
            guard let us = k.measuredUs, us > 0,
                  let f = features(of: k, streamingBytes: streamingBytes, residentBytes: residentBytes,
                                   overlapBytesPerMac: overlapBytesPerMac) else { return nil }
            return (f, us)
        }
        guard rows.count >= minSamples else { return nil }
        let seen = Set(rows.flatMap { $0.features.filter { $0.value > 0 }.map(\.key) })
        let weighted = timeWeighted ?? timeWeightedClasses.contains(opClass)
        func weight(_ us: Double) -> Double { weighted ? us.squareRoot() : 1 }
        var active = seen.sorted()
        var pinned: [String: Double] = [:]
        while !active.isEmpty {
            // Each row divided by its measured time, so the target is 1 less the pinned
            // features' share.
            let x = rows.map { row in active.map { (row.features[$0] ?? 0) / row.us * weight(row.us) } }
            let targets = rows.map { row in (1 - pinned.reduce(0) { $0 + $1.value * (row.features[$1.key] ?? 0) } / row.us) * weight(row.us) }
            guard let solution = ScaledLeastSquares.solve(x, targets: targets) else { return nil }
            if let worst = solution.indices.min(by: { solution[$0] < solution[$1] }), solution[worst] < 0 {
                active.remove(at: worst)
                continue
            }
            if let cap = epilogueCapUs,
               let over = solution.indices.filter({ active[$0].hasPrefix(Feature.epiloguePrefix) && solution[$0] > cap })
                   .max(by: { solution[$0] < solution[$1] }) {
                pinned[active[over]] = cap
                active.remove(at: over)
                continue
            }
            // A feature dropped for a negative weight costs nothing: its kernels were
            // seen and their time is in the other features. Kept at 0, not left out,
            // so `predictUs` tells it from a feature the fit never saw. MobileNetV3's
            // classifier and squeeze-excitation products had fallen back to the class
            // curve that way (+37%/+41% end to end).
            let fitted = Dictionary(uniqueKeysWithValues: zip(active, solution))
            let dropped = Dictionary(uniqueKeysWithValues: seen.subtracting(active).subtracting(pinned.keys).map { ($0, 0.0) })
            let weights = fitted.merging(pinned) { a, _ in a }.merging(dropped) { a, _ in a }
            return KernelCostModel(opClass: opClass, threads: threads, weights: weights, samples: rows.count, streamingBytes: streamingBytes,
                                   residentBytes: residentBytes, overlapBytesPerMac: overlapBytesPerMac)
        }
        return nil
    }
}

/// Ordinary least squares for the small, badly scaled systems of `KernelCostModel`
/// (features from 1 to 1e10): columns scaled to unit root-mean-square, normal equations
/// with a tiny ridge, solved by Gaussian elimination with partial pivoting.
enum ScaledLeastSquares {
    /// The `w` minimising sum over rows i of (x_i . w - targets_i)^2; nil for a singular
    /// system. Signs are not constrained here: callers drop negative weights and refit.
    static func solve(_ x: [[Double]], targets: [Double]) -> [Double]? {
        guard let n = x.first?.count, n > 0 else { return nil }
        var scale = [Double](repeating: 0, count: n)
        for row in x { for j in 0..<n { scale[j] += row[j] * row[j] } }
        scale = scale.map { ($0 / Double(x.count)).squareRoot() }
        guard scale.allSatisfy({ $0 > 0 && $0.isFinite }) else { return nil }
        var a = [[Double]](repeating: [Double](repeating: 0, count: n + 1), count: n)
        for (row, target) in zip(x, targets) {
            let z = (0..<n).map { row[$0] / scale[$0] }
            for i in 0..<n {
                for j in 0..<n { a[i][j] += z[i] * z[j] }
                a[i][n] += z[i] * target
            }
        }
        let ridge = 1e-9 * (0..<n).reduce(0) { $0 + a[$1][$1] }
        for i in 0..<n { a[i][i] += ridge }
        for col in 0..<n {
            guard let pivot = (col..<n).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }), abs(a[pivot][col]) > 0 else { return nil }
            a.swapAt(col, pivot)
            for r in 0..<n where r != col {
                let f = a[r][col] / a[col][col]
                if f != 0 { for c in col...n { a[r][c] -= f * a[col][c] } }
            }
        }
        let w = (0..<n).map { a[$0][n] / a[$0][$0] / scale[$0] }
        return w.allSatisfy(\.isFinite) ? w : nil
    }
}

extension KernelSample.Shape {
    /// Rows of the product [rows, K] x [K, N] the kernel computes: output elements
    /// (rows x N) times first-input elements (rows x K) over multiply-adds (rows x K x N);
    /// for a 1x1 convolution, its positions.
    var productRows: Double { macs > 0 ? outputElements * inputElements / macs : 0 }

    /// Fewer rows than `KernelCostModel.Feature.vectorRows`: each weight is used a few times.
    var isVectorProduct: Bool { productRows > 0 && productRows < KernelCostModel.Feature.vectorRows }

    /// A convolution the executor runs as Winograd, as far as the shape tells: nine
    /// multiply-adds per output and input channel (3x3, one group) and as many output
    /// positions as input positions (stride 1, padded to keep the map).
    func isWinograd(integer: Bool) -> Bool {
        guard inputChannels > 0, outputChannels > 0, outputElements > 0 else { return false }
        let taps = macs / (outputElements * inputChannels)
        let positions = outputElements / outputChannels
        guard abs(taps - 9) < 1e-6, positions == inputElements / inputChannels, positions == positions.rounded() else { return false }
        return WinogradConvolution.applies(kernel: [3, 3], strides: [1, 1], dilations: [1, 1], group: 1,
                                           outputPositions: Int(positions), inputChannels: Int(inputChannels),
                                           outputChannels: Int(outputChannels), integer: integer)
    }
}
