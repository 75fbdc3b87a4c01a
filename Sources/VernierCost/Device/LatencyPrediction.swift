import VernierGraph

/// A model's latency predicted for a device: one row per kernel the executor would run
/// (the same fused groups a profile measures), each its roofline time divided by its
/// class's efficiency plus the per-kernel overhead; the total adds the per-run overhead.
public struct LatencyPrediction: Sendable {
    public struct Row: Sendable {
        public var costs: KernelCosts
        /// Nil when the kernel's costs are unknown (no formula, unknown shapes).
        public var prediction: KernelPrediction?
        public var share: Double
        public var cumulativeShare: Double

        public var predictedMs: Double { (prediction?.predictedUs ?? 0) / 1e3 }
    }

    public var table: CostTable
    public var rows: [Row]
    /// Original nodes no kernel runs (folded at plan time, removed).
    public var notRun: [String]
    public var device: DeviceProfile
    public var threads: Int
    public var kernelSumMs: Double
    /// Time outside kernels, from the device's per-run overhead.
    public var perRunMs: Double
    public var totalMs: Double { kernelSumMs + perRunMs }
    /// Kernels whose costs are unknown, so they add nothing to the total.
    public var unpredicted: [String] { rows.filter { $0.prediction == nil }.map(\.costs.name) }

    /// Predicts the kernels of `optimized` (the graph after `GraphPasses.optimize`, whose
    /// nodes name their original nodes) with costs from `table` (of the original graph).
    /// `copyFree` names the kernels the executor runs without copying
    /// (`ExecutionPlan.copyFreeSteps`), predicted at their fixed cost; `relayoutBytes`
    /// gives the bytes kernels reorder between layouts (`ExecutionPlan.relayoutBytes`),
    /// `implementations` what each runs on (`ExecutionPlan.implementations`).
    public static func build(table: CostTable, optimized: InferredGraph, device: DeviceProfile, threads: Int,
                             copyFree: Set<String> = [], relayoutBytes: [String: Double] = [:],
                             implementations: [String: String] = [:]) -> LatencyPrediction {
        let folded = PlanTimeConstants.foldedNodes(optimized)
        let kernels = optimized.graph.nodes.filter { !folded.contains($0.name) }
        let grouping = KernelGrouping(table: table, executedNodes: Set(kernels.flatMap(\.originalNodes)))
        let modelBytes = Double(table.totals.weightBytes + (table.memory?.arenaBytes ?? 0))
        var rows: [Row] = kernels.map { node in
            var costs = grouping.costs(name: node.displayName, opType: node.qualifiedOpType, nodes: node.originalNodes)
            costs.copiesNothing = copyFree.contains(node.displayName)
            costs.relayoutBytes = relayoutBytes[node.displayName] ?? 0
            costs.implementation = implementations[node.displayName]
            var sample = costs.sample
            sample.modelBytes = modelBytes
            let prediction = costs.costKnown ? device.predict(sample, threads: threads) : nil
            return Row(costs: costs, prediction: prediction, share: 0, cumulativeShare: 0)
        }
        let sum = rows.reduce(0) { $0 + $1.predictedMs }
        var running = 0.0
        for i in rows.indices {
            rows[i].share = sum > 0 ? rows[i].predictedMs / sum : 0
            running += rows[i].share
            rows[i].cumulativeShare = running
        }
        let run = Set(rows.flatMap(\.costs.fused))
        return LatencyPrediction(table: table, rows: rows, notRun: table.nodes.map(\.name).filter { !run.contains($0) },
                                 device: device, threads: threads, kernelSumMs: sum,
                                 perRunMs: device.effectiveEfficiency.overhead(threads: threads).runUs(kernelSumUs: sum * 1e3, kernels: rows.count) / 1e3 - sum)
    }
}

extension Profile {
    /// A prediction in a profile's shape, for the views that compare profiles
    /// (`compare --device`): each row's latency is its predicted time (one sample), the
    /// end-to-end latency the predicted total; memory is the plan's.
    public init(prediction p: LatencyPrediction) {
        let rows = p.rows.map { r -> Row in
            var row = Row(costs: r.costs, latency: LatencyStats(milliseconds: [r.predictedMs]))
            row.share = r.share
            row.cumulativeShare = r.cumulativeShare
            return row
        }
        let steps = p.rows.map {
            MeasuredRuns.Step(name: $0.costs.name, opType: $0.costs.opType, sourceNodes: $0.costs.fused, copiesNothing: $0.costs.copiesNothing,
                              relayoutBytes: $0.costs.relayoutBytes, implementation: $0.costs.implementation)
        }
        let memory = MeasuredMemory(arenaBytes: p.table.memory?.arenaBytes ?? 0, constantBytes: p.table.totals.weightBytes)
        self.init(table: p.table, rows: rows, notRun: p.notRun, endToEnd: LatencyStats(milliseconds: [p.totalMs]), timedRun: nil,
                  nodeSumMs: p.kernelSumMs, memory: memory, threads: p.threads, warmupRuns: 0, interrupted: false,
                  measuringSeconds: 0, device: p.device, deviceSource: nil, roofline: p.device.roofline(threads: p.threads),
                  measurements: MeasuredRuns(steps: steps, threads: p.threads))
    }
}
