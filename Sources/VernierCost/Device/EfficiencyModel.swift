import Foundation

/// How close to the roofline kernels run on a device: per op class, the achieved share
/// of the roofline as a function of the kernel's size, plus a fixed cost per kernel and
/// per run. Prediction divides a kernel's roofline time by its efficiency and adds the
/// per-kernel overhead.
///
/// Size is measured as the kernel's *ideal time*, the time it would take at the roof
/// for its intensity (`max(ops / peak, bytes / bandwidth)`): for a given intensity it
/// grows with the work, and it compares compute- and memory-bound kernels on one axis.
/// Curves are kept per op class, per bound (compute or memory: the intensity side of the
/// ridge) and per thread count.
public struct EfficiencyModel: Codable, Sendable, Equatable {
    /// One point of a curve: at `idealUs` microseconds of roofline time, kernels reach
    /// `efficiency` (0...1] of the roofline.
    public struct Point: Codable, Sendable, Equatable {
        public var idealUs: Double
        public var efficiency: Double

        public init(idealUs: Double, efficiency: Double) {
            self.idealUs = idealUs
            self.efficiency = efficiency
        }

        enum CodingKeys: String, CodingKey { case idealUs = "ideal_us", efficiency }
    }

    /// Efficiency against size for one op class (nil: every class) at one thread count,
    /// for one side of the ridge (nil: both).
    public struct Curve: Codable, Sendable, Equatable {
        public var opClass: OpClass?
        public var bound: Roofline.Bound?
        public var threads: Int
        /// Ascending in `idealUs`; efficiency is interpolated linearly in log(idealUs)
        /// between points and held flat beyond the ends.
        public var points: [Point]
        /// Kernels the curve was fitted on (0 for priors).
        public var samples: Int

        public init(opClass: OpClass?, bound: Roofline.Bound?, threads: Int, points: [Point], samples: Int) {
            self.opClass = opClass
            self.bound = bound
            self.threads = threads
            self.points = points.sorted { $0.idealUs < $1.idealUs }
            self.samples = samples
        }

        enum CodingKeys: String, CodingKey { case opClass = "op_class", bound, threads, points, samples }

        /// The efficiency at `idealUs`.
        public func efficiency(atIdealUs idealUs: Double) -> Double {
            guard let first = points.first, let last = points.last else { return 1 }
            let x = log(max(idealUs, 1e-6))
            if idealUs <= first.idealUs { return first.efficiency }
            if idealUs >= last.idealUs { return last.efficiency }
            for (a, b) in zip(points, points.dropFirst()) where idealUs <= b.idealUs {
                let xa = log(a.idealUs), xb = log(b.idealUs)
                let t = xb > xa ? (x - xa) / (xb - xa) : 0
                return a.efficiency + t * (b.efficiency - a.efficiency)
            }
            return last.efficiency
        }
    }

    /// Fixed costs at one thread count: per kernel (launch, dispatch, thread wake-up:
    /// inside each kernel's measured time) and per run (feeding inputs, copying outputs
    /// out, the work between kernels: outside them), the latter as a constant, a share
    /// of the kernels' sum and a cost per kernel run.
    public struct Overhead: Codable, Sendable, Equatable {
        public var threads: Int
        public var perKernelUs: Double
        public var perRunUs: Double
        /// The run takes the kernels' sum times (1 + this), plus `perRunUs`, plus
        /// `betweenKernelsUs` per kernel.
        public var perRunFraction: Double
        /// Time outside kernels per kernel run. Calibration fits this rather than a
        /// constant: a constant fitted on models of 2 ms and more tripled a 0.25 ms
        /// model of 17 kernels, whose runs spend 8 us outside them.
        public var betweenKernelsUs: Double

        public init(threads: Int, perKernelUs: Double, perRunUs: Double, perRunFraction: Double = 0, betweenKernelsUs: Double = 0) {
            self.threads = threads
            self.perKernelUs = perKernelUs
            self.perRunUs = perRunUs
            self.perRunFraction = perRunFraction
            self.betweenKernelsUs = betweenKernelsUs
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            threads = try c.decode(Int.self, forKey: .threads)
            perKernelUs = try c.decode(Double.self, forKey: .perKernelUs)
            perRunUs = try c.decode(Double.self, forKey: .perRunUs)
            perRunFraction = try c.decodeIfPresent(Double.self, forKey: .perRunFraction) ?? 0
            betweenKernelsUs = try c.decodeIfPresent(Double.self, forKey: .betweenKernelsUs) ?? 0
        }

        enum CodingKeys: String, CodingKey {
            case threads, perKernelUs = "per_kernel_us", perRunUs = "per_run_us", perRunFraction = "per_run_fraction",
                 betweenKernelsUs = "between_kernels_us"
        }

        /// A run's time from its kernels' summed time and count.
        public func runUs(kernelSumUs: Double, kernels: Int) -> Double {
            kernelSumUs * (1 + perRunFraction) + perRunUs + betweenKernelsUs * Double(kernels)
        }
    }

    public var curves: [Curve]
    /// Per class and thread count, a kernel's time as a sum of its costs; where one
    /// fits, it predicts instead of the class's curve.
    public var kernelModels: [KernelCostModel]
    public var overheads: [Overhead]
    /// False for the built-in priors; true once fitted on measured profiles.
    public var calibrated: Bool
    /// The models the curves were fitted on (file stems), and the profiles' runtimes.
    public var fittedOn: [String]
    public var fittedAt: String?
    public var sampleCount: Int

    public init(curves: [Curve], kernelModels: [KernelCostModel] = [], overheads: [Overhead], calibrated: Bool,
                fittedOn: [String] = [], fittedAt: String? = nil, sampleCount: Int = 0) {
        self.curves = curves
        self.kernelModels = kernelModels
        self.overheads = overheads.sorted { $0.threads < $1.threads }
        self.calibrated = calibrated
        self.fittedOn = fittedOn
        self.fittedAt = fittedAt
        self.sampleCount = sampleCount
    }

    enum CodingKeys: String, CodingKey {
        case curves, kernelModels = "kernel_models", overheads, calibrated, fittedOn = "fitted_on", fittedAt = "fitted_at",
             sampleCount = "sample_count"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        curves = try c.decode([Curve].self, forKey: .curves)
        // Profiles calibrated before kernel models existed have none.
        kernelModels = try c.decodeIfPresent([KernelCostModel].self, forKey: .kernelModels) ?? []
        overheads = try c.decode([Overhead].self, forKey: .overheads)
        calibrated = try c.decode(Bool.self, forKey: .calibrated)
        fittedOn = try c.decodeIfPresent([String].self, forKey: .fittedOn) ?? []
        fittedAt = try c.decodeIfPresent(String.self, forKey: .fittedAt)
        sampleCount = try c.decodeIfPresent(Int.self, forKey: .sampleCount) ?? 0
    }

    /// The kernel model of `opClass` at the thread count nearest `threads` that has one.
    public func kernelModel(for opClass: OpClass, threads: Int) -> KernelCostModel? {
        kernelModels.filter { $0.opClass == opClass }
            .min { (abs($0.threads - threads), $0.threads) < (abs($1.threads - threads), $1.threads) }
    }

    /// The kernel model that predicts `kernel` at `threads`: its class's, with what
    /// the class's fit never saw borrowed from the other arithmetic classes, because
    /// the kernels that show it are often measured only in the model being predicted:
    /// - an integer multiply-add rate, across the matrix-product classes (a 1x1
    ///   convolution is a matrix product). BERT's int8 MatMuls held out left no integer
    ///   matmul to fit on, and the float curve placed them three times too slow.
    /// - the cost per element of a fused epilogue op, from the convolutions: it is the
    ///   element-wise op's own cost, whatever kernel it is fused into. EfficientNet's
    ///   depthwise convolutions end in SiLU (Sigmoid, Mul), which no other model's
    ///   depthwise convolutions do; their prediction had left it out and came out half
    ///   the measured time.
    public func kernelModel(for kernel: KernelSample, threads: Int) -> KernelCostModel? {
        guard var model = kernelModel(for: kernel.opClass, threads: threads) else { return nil }
        typealias F = KernelCostModel.Feature
        let unseen = kernel.shape.epilogue.filter { !F.freeEpilogueOps.contains($0) }.map { F.epiloguePrefix + $0 }
            .filter { model.weights[$0] == nil }
        if !unseen.isEmpty {
            // Convolutions only: matmuls carry few epilogues, fitted on a handful of kernels.
            let donors = [OpClass.conv, .depthwiseConv].filter { $0 != kernel.opClass }
                .compactMap { kernelModel(for: $0, threads: threads) }
            for feature in unseen {
                model.weights[feature] = donors.lazy.compactMap { $0.weights[feature] }.first
            }
        }
        guard kernel.integer else { return model }
        let (own, other, otherFeature): (String, OpClass, String)
        switch kernel.opClass {
        case .matmul: (own, other, otherFeature) = (F.integerPrefix + F.macs, .conv, F.integerPrefix + F.pointwiseMacs)
        case .conv: (own, other, otherFeature) = (F.integerPrefix + F.pointwiseMacs, .matmul, F.integerPrefix + F.macs)
        default: return model
        }
        if model.weights[own] == nil, let borrowed = kernelModel(for: other, threads: threads)?.weights[otherFeature] {
            model.weights[own] = borrowed
        }
        return model
    }

    /// The curve for a kernel: the exact (class, bound, threads) entry, else the class at
    /// any bound, else every class; at the thread count nearest `threads` that has one.
    public func curve(for opClass: OpClass, bound: Roofline.Bound, threads: Int) -> Curve? {
        let counts = Set(curves.map(\.threads)).sorted { abs($0 - threads) != abs($1 - threads) ? abs($0 - threads) < abs($1 - threads) : $0 < $1 }
        for t in counts {
            let atThreads = curves.filter { $0.threads == t }
            if let c = atThreads.first(where: { $0.opClass == opClass && $0.bound == bound }) { return c }
            if let c = atThreads.first(where: { $0.opClass == opClass && $0.bound == nil }) { return c }
        }
        for t in counts {
            if let c = curves.first(where: { $0.threads == t && $0.opClass == nil }) { return c }
        }
        return nil
    }

    /// The overheads at `threads`, else at the nearest thread count below, else the first.
    public func overhead(threads: Int) -> Overhead {
        overheads.last(where: { $0.threads <= threads }) ?? overheads.first
            ?? Overhead(threads: threads, perKernelUs: 0, perRunUs: 0)
    }
}

extension Roofline.Bound: Codable {}

// MARK: - Priors

extension EfficiencyModel {
    /// Efficiencies for a device nobody has calibrated: the best share of the roofline
    /// each class reaches on large kernels (rounded from the host calibration of an
    /// x86 server, Reports/prediction_accuracy.md), falling off for small kernels where
    /// fixed costs dominate (half of it at 5 us of roofline time). Rough by nature:
    /// predictions on such a profile are labelled uncalibrated.
    public static func priors(threadCounts: [Int]) -> EfficiencyModel {
        let peak: [OpClass: Double] = [
            .conv: 0.6, .depthwiseConv: 0.3, .convTranspose: 0.45, .matmul: 0.7, .elementwise: 0.5,
            .normalization: 0.35, .pooling: 0.4, .reduce: 0.35, .dataMovement: 0.35, .recurrent: 0.2,
            .quantization: 0.4, .other: 0.3,
        ]
        let sizes: [Double] = [0.5, 5, 50, 500, 5000]
        var curves: [Curve] = []
        for threads in threadCounts {
            for opClass in OpClass.allCases {
                let top = peak[opClass] ?? 0.3
                let points = sizes.map { Point(idealUs: $0, efficiency: top * $0 / ($0 + 5)) }
                curves.append(Curve(opClass: opClass, bound: nil, threads: threads, points: points, samples: 0))
            }
        }
        let overheads = threadCounts.map { Overhead(threads: $0, perKernelUs: $0 > 1 ? 3 : 1, perRunUs: 10) }
        return EfficiencyModel(curves: curves, overheads: overheads, calibrated: false)
    }
}
