/// What the executor measured while profiling a model: per-step timings of the runs with
/// per-node timers, and whole-run timings of separate runs without them. Plain numbers,
/// so the cost model can join them with its static rows without knowing the executor.
public struct MeasuredRuns: Sendable {
    /// One kernel invocation of the execution plan (one node, or a fused group).
    public struct Step: Sendable {
        /// The kernel's node name and op type.
        public var name: String
        public var opType: String
        /// The original ONNX nodes it runs (more than one after fusion).
        public var sourceNodes: [String]
        /// The kernel copies nothing (`KernelCosts.copiesNothing`).
        public var copiesNothing: Bool
        /// Bytes the kernel reorders between layouts on each run (`KernelCosts.relayoutBytes`).
        public var relayoutBytes: Double
        /// The implementation the kernel ran on (`KernelCosts.implementation`).
        public var implementation: String?
        /// Start and end (monotonic clock, ns) in each measured run, in run order.
        public var starts: [UInt64]
        public var ends: [UInt64]

        public init(name: String, opType: String, sourceNodes: [String], copiesNothing: Bool = false, relayoutBytes: Double = 0,
                    implementation: String? = nil, starts: [UInt64] = [], ends: [UInt64] = []) {
            self.implementation = implementation
            self.copiesNothing = copiesNothing
            self.relayoutBytes = relayoutBytes
            self.name = name
            self.opType = opType
            self.sourceNodes = sourceNodes
            self.starts = starts
            self.ends = ends
        }

        /// Wall time of each run, ns.
        public var durations: [UInt64] { zip(starts, ends).map { $1 &- $0 } }
    }

    public var steps: [Step]
    /// Wall time (ns) of each run made with per-node timers.
    public var timedRuns: [UInt64]
    /// Wall time (ns) of each run made without them: the end-to-end latency.
    public var endToEndRuns: [UInt64]
    public var warmupRuns: Int
    public var threads: Int
    /// True when measuring stopped early (Ctrl-C): the figures cover fewer runs than asked.
    public var interrupted: Bool
    /// Wall time spent measuring (warm-up included), seconds.
    public var seconds: Double

    public init(steps: [Step], timedRuns: [UInt64] = [], endToEndRuns: [UInt64] = [], warmupRuns: Int = 0,
                threads: Int = 1, interrupted: Bool = false, seconds: Double = 0) {
        self.steps = steps
        self.timedRuns = timedRuns
        self.endToEndRuns = endToEndRuns
        self.warmupRuns = warmupRuns
        self.threads = threads
        self.interrupted = interrupted
        self.seconds = seconds
    }
}

/// Memory a profiled run used: what the plan says, and what the process measured.
public struct MeasuredMemory: Sendable {
    /// The executor's activation arena (the memory planner's peak).
    public var arenaBytes: Int
    /// Weights and folded constants the plan holds.
    public var constantBytes: Int
    /// Resident set before the model was loaded, and its peak afterwards (`VmRSS`,
    /// `VmHWM`); nil where the OS does not report them.
    public var baselineResidentBytes: Int?
    public var peakResidentBytes: Int?

    public init(arenaBytes: Int, constantBytes: Int, baselineResidentBytes: Int? = nil, peakResidentBytes: Int? = nil) {
        self.arenaBytes = arenaBytes
        self.constantBytes = constantBytes
        self.baselineResidentBytes = baselineResidentBytes
        self.peakResidentBytes = peakResidentBytes
    }

    /// Peak resident bytes the model added to the process: peak minus baseline.
    public var measuredPeakBytes: Int? {
        guard let peak = peakResidentBytes else { return nil }
        return Swift.max(0, peak - (baselineResidentBytes ?? 0))
    }

    /// What the plan accounts for: arena plus constants.
    public var plannedBytes: Int { arenaBytes + constantBytes }
}
