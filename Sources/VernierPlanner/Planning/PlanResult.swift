import VernierCost

/// The outcome of `vernier plan`: the variant chosen for a budget, what was predicted
/// and measured of it, and how closely its outputs follow the original's.
public struct PlanResult: Sendable {
    /// One channel group's plan.
    public struct GroupPlan: Sendable, Equatable {
        public var name: String
        public var channels: Int
        public var kept: Int
        /// Params and MACs of the group's member nodes before and after.
        public var paramsBefore: Int?
        public var paramsAfter: Int?
        public var macsBefore: Double?
        public var macsAfter: Double?
        /// Share of the original's kernel time in kernels the group touches (kernels
        /// touched by several groups count for each).
        public var timeShare: Double?
        /// The same share of the variant's kernel time, predicted (device model, anchored
        /// to this machine's measurement of the original when on the host) and measured
        /// (host only).
        public var predictedShare: Double?
        public var measuredShare: Double?
        public var ratio: Double { channels > 0 ? 1 - Double(kept) / Double(channels) : 0 }

        public init(name: String, channels: Int, kept: Int) {
            self.name = name
            self.channels = channels
            self.kept = kept
        }
    }

    /// Static totals of a model.
    public struct Totals: Sendable, Equatable {
        public var params: Int
        public var macs: Double?
        public var weightBytes: Int
        public var fileBytes: Int

        public init(params: Int, macs: Double?, weightBytes: Int, fileBytes: Int) {
            self.params = params
            self.macs = macs
            self.weightBytes = weightBytes
            self.fileBytes = fileBytes
        }
    }

    public var modelPath: String
    public var strategy: String
    /// `host`, or the device predicted for.
    public var device: String
    /// True when the variant's latency could only be predicted (another device).
    public var predictedOnly: Bool
    public var deviceCalibrated: Bool
    public var threads: Int
    public var budget: Budget
    /// The original's latency at the budget's percentile: measured on the host,
    /// predicted elsewhere.
    public var originalMs: Double
    public var variantPredictedMs: Double
    /// Measured at the budget's percentile (host only).
    public var variantMeasuredMs: Double?
    public var groups: [GroupPlan]
    public var searchSteps: Int
    public var before: Totals
    public var after: Totals
    public var fidelity: [OutputAgreement]
    public var minFidelity: Double?
    /// Every budget line against the variant.
    public var checks: [BudgetVerdict.Check]
    /// Files written with --emit.
    public var emitted: [String]
    public var notes: [String]

    /// The lowest cosine similarity over the outputs (1 when nothing was compared).
    public var worstCosine: Double { fidelity.map(\.cosineSimilarity).min() ?? 1 }
    public var fidelityHolds: Bool { minFidelity.map { worstCosine >= $0 } ?? true }
    public var meetsBudget: Bool { checks.allSatisfy(\.pass) }
    public var success: Bool { meetsBudget && fidelityHolds }

    /// (predicted - measured) / measured in percent, when both exist.
    public var predictionErrorPercent: Double? {
        guard let m = variantMeasuredMs, m > 0 else { return nil }
        return (variantPredictedMs - m) / m * 100
    }

    public init(modelPath: String, strategy: String, device: String, predictedOnly: Bool, deviceCalibrated: Bool, threads: Int,
                budget: Budget, originalMs: Double, variantPredictedMs: Double, variantMeasuredMs: Double?, groups: [GroupPlan],
                searchSteps: Int, before: Totals, after: Totals, fidelity: [OutputAgreement], minFidelity: Double?,
                checks: [BudgetVerdict.Check], emitted: [String] = [], notes: [String] = []) {
        self.modelPath = modelPath
        self.strategy = strategy
        self.device = device
        self.predictedOnly = predictedOnly
        self.deviceCalibrated = deviceCalibrated
        self.threads = threads
        self.budget = budget
        self.originalMs = originalMs
        self.variantPredictedMs = variantPredictedMs
        self.variantMeasuredMs = variantMeasuredMs
        self.groups = groups
        self.searchSteps = searchSteps
        self.before = before
        self.after = after
        self.fidelity = fidelity
        self.minFidelity = minFidelity
        self.checks = checks
        self.emitted = emitted
        self.notes = notes
    }
}
