import VernierCost

/// The answer to "does it fit?": each budget line against what was measured.
public struct BudgetVerdict: Sendable {
    /// One budget line.
    public struct Check: Sendable, Equatable {
        /// `latency_p90`, `peak_memory`, `model_size`.
        public var name: String
        public var value: Double
        public var limit: Double
        /// `ms` or `MiB`.
        public var unit: String
        /// How the value was obtained, e.g. "measured end-to-end p90 over 40 runs".
        public var basis: String

        public var pass: Bool { value <= limit }
        /// Share of the limit left unused, in percent; negative when over.
        public var headroomPercent: Double { (limit - value) / limit * 100 }
    }

    /// A layer that holds part of a latency overshoot.
    public struct Offender: Sendable, Equatable {
        public var name: String
        public var opType: String
        public var medianMs: Double
        /// Share of the sum of node medians.
        public var share: Double
        /// The layer's median over the amount the latency is over budget, in percent
        /// (above 100: removing this layer alone would close the gap).
        public var overshootPercent: Double?
    }

    /// What the figures rest on: a measurement on this machine or a prediction.
    public struct Basis: Sendable, Equatable {
        public var modelPath: String
        /// `host`, or the device profile predicted for.
        public var device: String
        /// True when the latency is predicted, not measured.
        public var predicted: Bool
        /// For predictions: whether the device profile is calibrated.
        public var calibrated: Bool
        public var threads: Int
        public var runs: Int
        public var warmupRuns: Int
        public var interrupted: Bool
        /// Arena plus weights, bytes.
        public var plannedBytes: Int
        public var seconds: Double
    }

    public var checks: [Check]
    /// The most expensive layers (at most five), listed when a budget fails.
    public var offenders: [Offender]
    public var basis: Basis
    public var budget: Budget

    public var pass: Bool { checks.allSatisfy(\.pass) }
    public var failed: [Check] { checks.filter { !$0.pass } }

    /// MiB = 2^20 bytes.
    public static let mebibyte = 1024.0 * 1024.0

    /// Compares a measured profile with a budget.
    public static func evaluate(_ profile: Profile, against budget: Budget) -> BudgetVerdict {
        var checks: [Check] = []
        var overshootMs: Double?
        if let limit = budget.latencyMs, let e2e = profile.endToEnd {
            let value: Double
            switch budget.percentile {
            case 50: value = e2e.median
            case 99: value = e2e.p99
            default: value = e2e.p90
            }
            let name = budget.percentile == 50 ? "latency_median" : "latency_p\(budget.percentile)"
            checks.append(Check(name: name, value: value, limit: limit, unit: "ms",
                                basis: "measured end to end, \(budget.percentile == 50 ? "median" : "p\(budget.percentile)") over \(e2e.count) runs"))
            if value > limit { overshootMs = value - limit }
        }
        if let limit = budget.memoryMiB {
            if let measured = profile.memory.measuredPeakBytes {
                checks.append(Check(name: "peak_memory", value: Double(measured) / mebibyte, limit: limit, unit: "MiB",
                                    basis: "measured peak resident set above the process's baseline"))
            } else {
                checks.append(Check(name: "peak_memory", value: Double(profile.memory.plannedBytes) / mebibyte, limit: limit, unit: "MiB",
                                    basis: "planned arena plus weights (this OS reports no peak resident set)"))
            }
        }
        if let limit = budget.sizeMiB { checks.append(sizeCheck(profile.table, limit: limit)) }
        let layers = profile.rows.map { (name: $0.name, opType: $0.fusedOpTypes.isEmpty ? $0.opType : $0.fusedOpTypes, ms: $0.latency.median, share: $0.share) }
        let basis = Basis(modelPath: profile.table.analyzed.model.path ?? "", device: "host", predicted: false, calibrated: true,
                          threads: profile.threads, runs: profile.endToEnd?.count ?? 0, warmupRuns: profile.warmupRuns,
                          interrupted: profile.interrupted, plannedBytes: profile.memory.plannedBytes, seconds: profile.measuringSeconds)
        return BudgetVerdict(checks: checks, offenders: offenders(layers, checks: checks, overshootMs: overshootMs),
                             basis: basis, budget: budget)
    }

    /// Compares a latency prediction for another device with a budget: the predicted
    /// total against the latency limit (whatever the percentile: a prediction has no
    /// spread), the planned arena plus weights against the memory limit.
    public static func evaluate(_ prediction: LatencyPrediction, against budget: Budget) -> BudgetVerdict {
        var checks: [Check] = []
        var overshootMs: Double?
        let device = prediction.device
        let planned = (prediction.table.memory?.arenaBytes ?? 0) + prediction.table.totals.weightBytes
        if let limit = budget.latencyMs {
            let value = prediction.totalMs
            let name = budget.percentile == 50 ? "latency_median" : "latency_p\(budget.percentile)"
            checks.append(Check(name: name, value: value, limit: limit, unit: "ms",
                                basis: "predicted for \(device.name) (\(device.isCalibrated ? "calibrated" : "uncalibrated: spec-derived priors")); a prediction has no percentiles"))
            if value > limit { overshootMs = value - limit }
        }
        if let limit = budget.memoryMiB {
            checks.append(Check(name: "peak_memory", value: Double(planned) / mebibyte, limit: limit, unit: "MiB",
                                basis: "planned arena plus weights (predicted, not measured)"))
        }
        if let limit = budget.sizeMiB { checks.append(sizeCheck(prediction.table, limit: limit)) }
        let layers = prediction.rows.map { (name: $0.costs.name, opType: $0.costs.fusedOpTypes.isEmpty ? $0.costs.opType : $0.costs.fusedOpTypes,
                                            ms: $0.predictedMs, share: $0.share) }
        let basis = Basis(modelPath: prediction.table.analyzed.model.path ?? "", device: device.name, predicted: true,
                          calibrated: device.isCalibrated, threads: prediction.threads, runs: 0, warmupRuns: 0,
                          interrupted: false, plannedBytes: planned, seconds: 0)
        return BudgetVerdict(checks: checks, offenders: offenders(layers, checks: checks, overshootMs: overshootMs),
                             basis: basis, budget: budget)
    }

    static func sizeCheck(_ table: CostTable, limit: Double) -> Check {
        Check(name: "model_size", value: Double(table.analyzed.model.fileBytes) / mebibyte, limit: limit,
              unit: "MiB", basis: "model file plus external data on disk")
    }

    /// The five slowest layers when a check fails.
    static func offenders(_ layers: [(name: String, opType: String, ms: Double, share: Double)], checks: [Check],
                          overshootMs: Double?) -> [Offender] {
        guard checks.contains(where: { !$0.pass }) else { return [] }
        return layers.sorted { $0.ms > $1.ms }.prefix(5).map { layer in
            Offender(name: layer.name, opType: layer.opType, medianMs: layer.ms, share: layer.share,
                     overshootPercent: overshootMs.map { layer.ms / $0 * 100 })
        }
    }
}
