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

    public var checks: [Check]
    /// The most expensive layers (at most five), listed when a budget fails.
    public var offenders: [Offender]
    /// The profile the verdict was drawn from.
    public var profile: Profile
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
        if let limit = budget.sizeMiB {
            checks.append(Check(name: "model_size", value: Double(profile.table.analyzed.model.fileBytes) / mebibyte, limit: limit,
                                unit: "MiB", basis: "model file plus external data on disk"))
        }
        let failing = checks.contains { !$0.pass }
        let offenders: [Offender] = failing ? profile.rows.sorted { $0.latency.median > $1.latency.median }.prefix(5).map { row in
            Offender(name: row.name, opType: row.fusedOpTypes.isEmpty ? row.opType : row.fusedOpTypes, medianMs: row.latency.median,
                     share: row.share, overshootPercent: overshootMs.map { row.latency.median / $0 * 100 })
        } : []
        return BudgetVerdict(checks: checks, offenders: offenders, profile: profile, budget: budget)
    }
}
