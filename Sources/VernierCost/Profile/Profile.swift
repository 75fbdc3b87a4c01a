import VernierGraph

/// A measured profile: one row per kernel the executor ran (a node, or a fused group
/// named by its original nodes), joining the static costs of those nodes with their
/// measured latency and the roofline; plus end-to-end latency and memory.
public struct Profile: Sendable {
    /// One kernel: static costs of the nodes it runs and its measured latency. The
    /// costs' fields read as the row's own (`row.macs`, `row.fused`).
    @dynamicMemberLookup
    public struct Row: Sendable {
        public var costs: KernelCosts
        public var latency: LatencyStats
        /// Share of the sum of all rows' median latencies, and the running total in row order.
        public var share: Double
        public var cumulativeShare: Double
        /// Where the row stands against the device's roofs; nil without a device profile.
        public var placement: Roofline.Placement?

        public subscript<T>(dynamicMember field: KeyPath<KernelCosts, T>) -> T { costs[keyPath: field] }

        /// Operations (FLOPs plus two per integer MAC) per byte moved.
        public var intensity: Double? { costs.bytesMoved > 0 ? (costs.flops + 2 * costs.intMacs) / costs.bytesMoved : nil }
        /// Activation bytes the group writes.
        public var activationBytes: Double { costs.bytesWritten }

        /// A row from a kernel's static costs and its measured latency.
        public init(costs: KernelCosts, latency: LatencyStats, share: Double = 0, cumulativeShare: Double = 0,
                    placement: Roofline.Placement? = nil) {
            self.costs = costs
            self.latency = latency
            self.share = share
            self.cumulativeShare = cumulativeShare
            self.placement = placement
        }
    }

    /// Rows aggregated by kernel op type.
    public struct OpLatency: Sendable {
        public var opType: String
        public var count: Int
        /// Sum of the rows' median latencies.
        public var medianMs: Double
        public var share: Double
        public var macs: Double
        public var flops: Double
        public var intMacs: Double
        public var bytesMoved: Double
    }

    /// The static half (every original node, totals, memory plan).
    public var table: CostTable
    /// Rows in execution order.
    public var rows: [Row]
    /// Original nodes no kernel runs: constants folded at plan time, Identity and
    /// Dropout removed.
    public var notRun: [String]
    /// End-to-end latency (runs without per-node timers) and the whole-run latency of
    /// the runs with them.
    public var endToEnd: LatencyStats?
    public var timedRun: LatencyStats?
    /// Sum of the rows' median latencies.
    public var nodeSumMs: Double
    public var memory: MeasuredMemory
    public var threads: Int
    public var warmupRuns: Int
    public var interrupted: Bool
    public var measuringSeconds: Double
    /// The device profile the roofline columns use, and where it came from.
    public var device: DeviceProfile?
    public var deviceSource: String?
    public var roofline: Roofline?
    /// The raw timings (every step of every measured run), for traces.
    public var measurements: MeasuredRuns

    /// Runs measured with per-node timers.
    public var measuredRuns: Int { rows.first?.latency.count ?? 0 }

    /// Sum of node medians against the end-to-end median, in percent: what the per-node
    /// view adds or misses (timer cost, work between kernels). Nil without both figures.
    public var overheadPercent: Double? {
        guard let e2e = endToEnd?.median, e2e > 0, !rows.isEmpty else { return nil }
        return (nodeSumMs - e2e) / e2e * 100
    }

    /// Rows aggregated by op type, most expensive first.
    public var byOp: [OpLatency] {
        var order: [String] = []
        var entries: [String: OpLatency] = [:]
        for row in rows {
            if entries[row.opType] == nil {
                order.append(row.opType)
                entries[row.opType] = OpLatency(opType: row.opType, count: 0, medianMs: 0, share: 0,
                                                macs: 0, flops: 0, intMacs: 0, bytesMoved: 0)
            }
            entries[row.opType]?.count += 1
            entries[row.opType]?.medianMs += row.latency.median
            entries[row.opType]?.share += row.share
            entries[row.opType]?.macs += row.macs
            entries[row.opType]?.flops += row.flops
            entries[row.opType]?.intMacs += row.intMacs
            entries[row.opType]?.bytesMoved += row.bytesMoved
        }
        return order.compactMap { entries[$0] }.sorted { $0.medianMs > $1.medianMs }
    }

    /// Joins static costs and measurements. Each step's costs are the sums over its
    /// original nodes, with the values passed inside a fused group left out of the bytes.
    public static func build(table: CostTable, runs: MeasuredRuns, memory: MeasuredMemory,
                             device: DeviceProfile?, deviceSource: String?) -> Profile {
        let roofline = device?.roofline(threads: runs.threads)
        let grouping = KernelGrouping(table: table, executedNodes: Set(runs.steps.flatMap(\.sourceNodes)))

        var rows: [Row] = []
        var run = Set<String>()
        for step in runs.steps {
            run.formUnion(step.sourceNodes)
            guard let latency = LatencyStats(nanoseconds: step.durations) else { continue }
            var costs = grouping.costs(name: step.name, opType: step.opType, nodes: step.sourceNodes)
            costs.copiesNothing = step.copiesNothing
            costs.relayoutBytes = step.relayoutBytes
            costs.implementation = step.implementation
            var row = Row(costs: costs, latency: latency)
            // A kernel that moved nothing has no place against the roofline.
            if row.costKnown, !row.copiesNothing, let roofline {
                let peak = device?.roofline(threads: runs.threads, integer: row.isInteger) ?? roofline
                row.placement = peak.place(flops: row.flops + 2 * row.intMacs, bytes: row.bytesMoved,
                                           seconds: latency.median / 1e3)
            }
            rows.append(row)
        }
        let nodeSum = rows.reduce(0) { $0 + $1.latency.median }
        var running = 0.0
        for i in rows.indices {
            rows[i].share = nodeSum > 0 ? rows[i].latency.median / nodeSum : 0
            running += rows[i].share
            rows[i].cumulativeShare = running
        }
        return Profile(table: table, rows: rows, notRun: table.nodes.map(\.name).filter { !run.contains($0) },
                       endToEnd: LatencyStats(nanoseconds: runs.endToEndRuns), timedRun: LatencyStats(nanoseconds: runs.timedRuns),
                       nodeSumMs: nodeSum, memory: memory, threads: runs.threads, warmupRuns: runs.warmupRuns,
                       interrupted: runs.interrupted, measuringSeconds: runs.seconds,
                       device: device, deviceSource: deviceSource, roofline: roofline, measurements: runs)
    }
}
