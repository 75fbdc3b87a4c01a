import Foundation

/// A kernel's predicted time and how it was reached.
public struct KernelPrediction: Sendable, Equatable {
    /// Time at the roofline for the kernel's intensity.
    public var idealUs: Double
    /// Share of the roofline the kernel's class reaches at its size.
    public var efficiency: Double
    public var overheadUs: Double
    public var bound: Roofline.Bound
    /// `idealUs / efficiency + overheadUs`.
    public var predictedUs: Double
}

extension DeviceProfile {
    /// The roofline time of `kernel` at `threads` and the roof that sets it; nil when the
    /// profile has no roofs.
    public func idealTime(of kernel: KernelSample, threads: Int) -> (us: Double, bound: Roofline.Bound)? {
        guard let roofline = roofline(threads: threads, integer: kernel.integer) else { return nil }
        let computeUs = kernel.ops / (roofline.peakGflops * 1e3)
        let memoryUs = kernel.bytes / (roofline.bandwidthGBps * 1e3)
        return computeUs > memoryUs ? (computeUs, .compute) : (memoryUs, .memory)
    }

    /// The predicted time of one kernel at `threads`: by its class's kernel model when
    /// one was fitted and applies, else by its class's efficiency curve.
    public func predict(_ sample: KernelSample, threads: Int) -> KernelPrediction? {
        let kernel = sample.paddedToChannelBlocks(channelBlock)
        guard let (ideal, bound) = idealTime(of: kernel, threads: threads) else { return nil }
        let model = effectiveEfficiency
        if let costModel = model.kernelModel(for: kernel, threads: threads), let us = costModel.predictUs(kernel), us > 0 {
            let overhead = min(costModel.perKernelUs(integer: kernel.integer), us)
            return KernelPrediction(idealUs: ideal, efficiency: us > overhead ? min(1e3, ideal / (us - overhead)) : 1,
                                    overheadUs: overhead, bound: bound, predictedUs: us)
        }
        let efficiency = model.curve(for: kernel.opClass, bound: bound, threads: threads)?.efficiency(atIdealUs: ideal) ?? 1
        let overhead = model.overhead(threads: threads).perKernelUs
        return KernelPrediction(idealUs: ideal, efficiency: efficiency, overheadUs: overhead, bound: bound,
                                predictedUs: ideal / max(efficiency, 1e-6) + overhead)
    }

    /// Predicted end-to-end time of a model's kernels at `threads`: the kernels' sum plus
    /// the per-run overhead.
    public func predictEndToEndUs(_ kernels: [KernelSample], threads: Int) -> Double {
        let sum = kernels.reduce(0.0) { $0 + (predict($1, threads: threads)?.predictedUs ?? 0) }
        return effectiveEfficiency.overhead(threads: threads).runUs(kernelSumUs: sum, kernels: kernels.count)
    }

    /// This profile with its efficiency model fitted on measured kernels (`sets`: one per
    /// model and thread count, any runtime). Thread counts without samples keep no
    /// curves of their own and borrow the nearest fitted count's.
    public func calibrated(on sets: [ModelSamples], fittedAt: String? = nil) throws -> DeviceProfile {
        var curves: [EfficiencyModel.Curve] = []
        var kernelModels: [KernelCostModel] = []
        var overheads: [EfficiencyModel.Overhead] = []
        var sampleCount = 0
        for threads in Set(sets.map(\.threads)).sorted() {
            let atThreads = sets.filter { $0.threads == threads }
            let kernels = atThreads.flatMap(\.kernels).filter { ($0.measuredUs ?? 0) > 0 }.map { $0.paddedToChannelBlocks(channelBlock) }
            guard !kernels.isEmpty else { continue }
            let fit = Calibrator(profile: self, threads: threads)
            let perKernel = fit.perKernelOverhead(kernels)
            let points = kernels.compactMap { fit.point($0, overheadUs: perKernel) }
            sampleCount += points.count
            curves += fit.curves(points)
            // A float read and written at the memory roof: what an epilogue op would cost
            // as a kernel of its own.
            let epilogueCap = roofline(threads: threads, integer: false).map { 8 / ($0.bandwidthGBps * 1e3) }
            let overlap = roofline(threads: 1, integer: false).map { $0.bandwidthGBps / ($0.peakGflops / 2) }
            kernelModels += KernelCostModel.classes.compactMap { opClass in
                KernelCostModel.fit(kernels.filter { $0.opClass == opClass }, opClass: opClass, threads: threads,
                                    streamingBytes: caches.l2Bytes.map { Double($0 * threads) },
                                    residentBytes: caches.l3Bytes.map { Double($0) * KernelCostModel.residentShareOfL3 },
                                    overlapBytesPerMac: overlap, epilogueCapUs: epilogueCap)
            }
            let runs = atThreads.compactMap { set in
                set.endToEndUs.map { (kernelSum: set.kernelSumUs, kernels: set.kernels.count, run: $0) }
            }
            let (fraction, between) = Calibrator.runOverhead(runs)
            overheads.append(.init(threads: threads, perKernelUs: perKernel, perRunUs: 0, perRunFraction: fraction,
                                   betweenKernelsUs: between))
        }
        guard sampleCount > 0 else { throw CalibrationError.noSamples }
        var copy = self
        let models = Set(sets.map { "\($0.model) (\($0.runtime.rawValue), \($0.threads)t)" }).sorted()
        copy.efficiency = EfficiencyModel(curves: curves, kernelModels: kernelModels, overheads: overheads, calibrated: true, fittedOn: models,
                                          fittedAt: fittedAt, sampleCount: sampleCount)
        return copy
    }
}

/// Why a calibration could not be made.
public enum CalibrationError: Error, Equatable, CustomStringConvertible {
    case noSamples

    public var description: String {
        "no measured kernels with known costs to calibrate on; pass profiles from `vernier profile --format json` or ONNX Runtime's profiler"
    }
}

/// Fits efficiency curves at one thread count.
struct Calibrator {
    /// One measured kernel placed against the roofline.
    struct FitPoint {
        var opClass: OpClass
        var bound: Roofline.Bound
        var idealUs: Double
        /// Measured time less the per-kernel overhead.
        var workUs: Double
    }

    let profile: DeviceProfile
    let threads: Int

    /// Fewest kernels a (class, bound) curve, a class curve, and a bin are fitted on.
    static let minBoundCurve = 12
    static let minClassCurve = 1
    static let perBin = 6
    static let maxBins = 6

    /// The fixed cost every kernel pays: the intercept of measured time against
    /// roofline time over the smaller half of the kernels (least squares), where fixed
    /// costs show most; kept between 0 and the fastest measured kernel.
    func perKernelOverhead(_ kernels: [KernelSample]) -> Double {
        let pairs = kernels.compactMap { k -> (x: Double, y: Double)? in
            guard let y = k.measuredUs, let (x, _) = profile.idealTime(of: k, threads: threads) else { return nil }
            return (x, y)
        }.sorted { $0.x < $1.x }
        guard let fastest = pairs.map(\.y).min() else { return 0 }
        let small = pairs.prefix(max(4, pairs.count / 2))
        let n = Double(small.count)
        let meanX = small.reduce(0) { $0 + $1.x } / n, meanY = small.reduce(0) { $0 + $1.y } / n
        let sxx = small.reduce(0) { $0 + ($1.x - meanX) * ($1.x - meanX) }
        let sxy = small.reduce(0) { $0 + ($1.x - meanX) * ($1.y - meanY) }
        let intercept = sxx > 0 ? meanY - sxy / sxx * meanX : fastest
        return min(max(0, intercept), fastest)
    }

    /// Time outside kernels (input and output copies, work between kernels): run =
    /// kernel sum x (1 + fraction) + gap x kernel count, fitted by least squares on
    /// relative errors so small models weigh as much as large ones; the gap is never
    /// negative and the fraction stays within -5%...+50%. Profiles whose run-to-kernels
    /// ratio is far from the others' (kernels timed while the machine was busier than
    /// during the end-to-end runs: one model read 0.79) are left out: a single one
    /// pulled the fraction negative and the rest of the fit up.
    static func runOverhead(_ runs: [(kernelSum: Double, kernels: Int, run: Double)]) -> (fraction: Double, betweenKernelsUs: Double) {
        let positive = runs.filter { $0.kernelSum > 0 && $0.run > 0 }
        guard !positive.isEmpty else { return (0, 0) }
        let ratios = positive.map { $0.run / $0.kernelSum }
        let median = LatencyStats(milliseconds: ratios).median
        let deviation = LatencyStats(milliseconds: ratios.map { abs($0 - median) }).median
        let valid = positive.filter { abs($0.run / $0.kernelSum - median) <= max(3 * deviation, 0.05) }
        // Minimise sum(((1 + f) s + g n - r) / r)^2: with u = s / r, v = n / r and
        // target t = 1 - u, solve for (f, g) in f u + g v = t.
        var suu = 0.0, suv = 0.0, svv = 0.0, sut = 0.0, svt = 0.0
        for x in valid {
            let u = x.kernelSum / x.run, v = Double(x.kernels) / x.run, t = 1 - u
            suu += u * u; suv += u * v; svv += v * v; sut += u * t; svt += v * t
        }
        // One model (or models all alike) cannot tell the two terms apart: the system
        // is singular up to rounding, and solving it anyway gave wild gaps.
        let det = suu * svv - suv * suv
        let solvable = det > 1e-9 * suu * svv
        var f = solvable ? (sut * svv - svt * suv) / det : sut / suu
        var g = solvable ? (suu * svt - suv * sut) / det : 0
        if g < 0 || !g.isFinite { g = 0; f = sut / suu }
        f = min(0.5, max(-0.05, f))
        return (f, g)
    }

    func point(_ kernel: KernelSample, overheadUs: Double) -> FitPoint? {
        guard let measured = kernel.measuredUs, measured > 0, kernel.ops + kernel.bytes > 0,
              let (ideal, bound) = profile.idealTime(of: kernel, threads: threads), ideal > 0 else { return nil }
        // A kernel faster than the overhead still did some work; keep a floor so its
        // efficiency stays finite.
        return FitPoint(opClass: kernel.opClass, bound: bound, idealUs: ideal, workUs: max(measured - overheadUs, 0.25 * measured))
    }

    /// Curves for every (class, bound) and class with enough kernels, and one over all.
    func curves(_ points: [FitPoint]) -> [EfficiencyModel.Curve] {
        var out: [EfficiencyModel.Curve] = []
        for opClass in OpClass.allCases {
            let ofClass = points.filter { $0.opClass == opClass }
            guard ofClass.count >= Self.minClassCurve else { continue }
            out.append(curve(ofClass, opClass: opClass, bound: nil))
            for bound in [Roofline.Bound.compute, .memory] {
                let side = ofClass.filter { $0.bound == bound }
                if side.count >= Self.minBoundCurve { out.append(curve(side, opClass: opClass, bound: bound)) }
            }
        }
        out.append(curve(points, opClass: nil, bound: nil))
        return out
    }

    /// Points sorted by size and cut into bins of equal count; each bin's efficiency is
    /// its total ideal time over its total measured work time, so the curve reproduces
    /// the bin's summed latency (what end-to-end prediction adds up), placed at the
    /// bin's size weighted by measured time.
    func curve(_ points: [FitPoint], opClass: OpClass?, bound: Roofline.Bound?) -> EfficiencyModel.Curve {
        let sorted = points.sorted { $0.idealUs < $1.idealUs }
        let bins = max(1, min(Self.maxBins, sorted.count / Self.perBin))
        var curvePoints: [EfficiencyModel.Point] = []
        for b in 0..<bins {
            let lo = b * sorted.count / bins, hi = (b + 1) * sorted.count / bins
            let bin = sorted[lo..<hi]
            guard !bin.isEmpty else { continue }
            let ideal = bin.reduce(0.0) { $0 + $1.idealUs }
            let work = bin.reduce(0.0) { $0 + $1.workUs }
            // The point sits at the bin's time-weighted size, where the kernels that
            // dominate its time are, so interpolation gives them the bin's efficiency.
            let logMean = work > 0 ? bin.reduce(0.0) { $0 + $1.workUs * log($1.idealUs) } / work
                                   : bin.reduce(0.0) { $0 + log($1.idealUs) } / Double(bin.count)
            curvePoints.append(.init(idealUs: exp(logMean), efficiency: work > 0 ? ideal / work : 1))
        }
        return EfficiencyModel.Curve(opClass: opClass, bound: bound, threads: threads, points: curvePoints, samples: sorted.count)
    }
}
