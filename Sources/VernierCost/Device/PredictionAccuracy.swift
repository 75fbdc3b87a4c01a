import Foundation

/// How well calibrated predictions match measurements, by leave-one-out: for each model,
/// the device profile is calibrated on every other model and predicts the one held out.
public struct PredictionAccuracy: Sendable {
    /// One held-out model at one thread count.
    public struct ModelResult: Sendable {
        public var model: String
        public var threads: Int
        public var measuredMs: Double
        public var predictedMs: Double
        /// Measured and predicted kernel time per op class (Vernier rows measured
        /// kernel by kernel only; empty when the truth came from another runtime).
        public var byClass: [ClassTime] = []
        /// Each measured kernel with its prediction, in the profile's order (Vernier rows
        /// only, as `byClass`): which layers a miss comes from.
        public var kernels: [KernelResult] = []
        /// (predicted - measured) / measured, in percent.
        public var errorPercent: Double { (predictedMs - measuredMs) / measuredMs * 100 }
    }

    /// One kernel of a held-out model, measured and predicted.
    public struct KernelResult: Sendable, Equatable {
        public var name: String
        public var opClass: OpClass
        public var measuredUs: Double
        public var predictedUs: Double
    }

    /// One op class's kernels in one held-out model: where an end-to-end miss comes from.
    public struct ClassTime: Sendable, Equatable {
        public var opClass: OpClass
        public var kernels: Int
        public var measuredUs: Double
        public var predictedUs: Double
    }

    /// Error figures over a set of predictions.
    public struct Summary: Sendable, Equatable {
        public var count: Int
        public var within10Percent: Double
        public var within20Percent: Double
        /// Root mean square of the percentage errors.
        public var rmspe: Double
        public var medianAbsoluteErrorPercent: Double

        /// Figures over `errors` (percent); nil when there are none.
        public init?(errorsPercent errors: [Double]) {
            guard !errors.isEmpty else { return nil }
            let n = Double(errors.count)
            count = errors.count
            within10Percent = Double(errors.filter { abs($0) <= 10 }.count) / n * 100
            within20Percent = Double(errors.filter { abs($0) <= 20 }.count) / n * 100
            rmspe = (errors.reduce(0) { $0 + $1 * $1 } / n).squareRoot()
            medianAbsoluteErrorPercent = LatencyStats(milliseconds: errors.map(abs)).median
        }
    }

    public var models: [ModelResult]
    /// Per-layer errors of every held-out model, in percent, for kernels measured at
    /// 1% or more of their model's kernel time (smaller ones are timer noise and
    /// fixed costs), and for all kernels.
    public var layerErrorsPercent: [Double]
    public var allLayerErrorsPercent: [Double]

    public var endToEnd: Summary? { Summary(errorsPercent: models.map(\.errorPercent)) }
    public var layers: Summary? { Summary(errorsPercent: layerErrorsPercent) }
    public var allLayers: Summary? { Summary(errorsPercent: allLayerErrorsPercent) }

    /// Leave-one-out over `targets`: each target is predicted by `base` calibrated on the
    /// `calibration` sets of every other model (by name). Targets without a measured
    /// end-to-end time are skipped. Calibration and targets may come from different
    /// runtimes (ONNX Runtime traces to calibrate, Vernier's kernels as the rows to
    /// predict, and ONNX Runtime's latency as the truth): pass `truth` to take each
    /// model's measured latency from there instead.
    public static func leaveOneOut(base: DeviceProfile, calibration: [ModelSamples], targets: [ModelSamples],
                                   truth: [ModelSamples]? = nil) throws -> PredictionAccuracy {
        var results: [ModelResult] = []
        var layerErrors: [Double] = []
        var allLayerErrors: [Double] = []
        var fitted: [String: DeviceProfile] = [:]
        for target in targets {
            let measuredUs: Double?
            if let truth {
                measuredUs = truth.first { $0.model == target.model && $0.threads == target.threads }?.endToEndUs
            } else {
                measuredUs = target.endToEndUs
            }
            guard let measured = measuredUs, measured > 0 else { continue }
            let profile: DeviceProfile
            if let cached = fitted[target.model] {
                profile = cached
            } else {
                profile = try base.calibrated(on: calibration.filter { $0.model != target.model })
                fitted[target.model] = profile
            }
            let predicted = profile.predictEndToEndUs(target.kernels, threads: target.threads)
            var result = ModelResult(model: target.model, threads: target.threads, measuredMs: measured / 1e3,
                                     predictedMs: predicted / 1e3)
            if truth == nil {
                let kernelSum = target.kernelSumUs
                var byClass: [OpClass: ClassTime] = [:]
                for kernel in target.kernels {
                    guard let m = kernel.measuredUs, m > 0, let p = profile.predict(kernel, threads: target.threads) else { continue }
                    let error = (p.predictedUs - m) / m * 100
                    allLayerErrors.append(error)
                    if m >= 0.01 * kernelSum { layerErrors.append(error) }
                    result.kernels.append(KernelResult(name: kernel.name, opClass: kernel.opClass, measuredUs: m,
                                                       predictedUs: p.predictedUs))
                    byClass[kernel.opClass, default: ClassTime(opClass: kernel.opClass, kernels: 0, measuredUs: 0, predictedUs: 0)]
                        .add(measuredUs: m, predictedUs: p.predictedUs)
                }
                result.byClass = OpClass.allCases.compactMap { byClass[$0] }
            }
            results.append(result)
        }
        return PredictionAccuracy(models: results, layerErrorsPercent: layerErrors, allLayerErrorsPercent: allLayerErrors)
    }
}

extension PredictionAccuracy.ClassTime {
    mutating func add(measuredUs m: Double, predictedUs p: Double) {
        kernels += 1
        measuredUs += m
        predictedUs += p
    }
}
