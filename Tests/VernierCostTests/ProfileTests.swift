import Foundation
import Testing
import VernierTestSupport
import VernierGraph
@testable import VernierCost

/// The profile's join of static costs and measured timings, checked against numbers
/// worked out by hand.
struct ProfileTests {
    @Test func latencyStatisticsInterpolateBetweenRanks() {
        // Sorted: 1 2 3 4 5 6 7 8 9 10 (ms), given shuffled.
        let s = LatencyStats(milliseconds: [7, 3, 10, 1, 5, 9, 2, 8, 4, 6])
        #expect(s.count == 10)
        #expect(s.median == 5.5)
        #expect(abs(s.p90 - 9.1) < 1e-12)    // position 0.9 * 9 = 8.1: 9 + 0.1 * (10 - 9)
        #expect(abs(s.p99 - 9.91) < 1e-12)
        #expect(s.min == 1 && s.max == 10)
        #expect(s.mean == 5.5)
        // Sample variance of 1...10 is 55/6.
        #expect(abs(s.stdev - (55.0 / 6).squareRoot()) < 1e-12)
        #expect(abs(s.spread - 9.1 / 5.5) < 1e-12)

        let one = LatencyStats(milliseconds: [2.5])
        #expect(one.median == 2.5 && one.p90 == 2.5 && one.p99 == 2.5 && one.stdev == 0)
        #expect(LatencyStats(nanoseconds: []) == nil)
        #expect(LatencyStats(nanoseconds: [1_000_000, 3_000_000])?.median == 2)
    }

    /// x -> Conv(w, b) -> Relu -> y1 -> Add(y1, x2)... a fused Conv+Relu group followed by a
    /// lone Add: the group must not count the Conv output it passes to the Relu.
    func convReluAdd() throws -> CostTable {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(4), .value(8), .value(8)])
        b.weight("w", [4, 4, 3, 3])
        b.weight("bias", [4])
        b.node("Conv", ["x", "w", "bias"], ["c"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Relu", ["c"], ["r"])
        b.node("Add", ["r", "x"], ["y"])
        b.output("y")
        let model = try GraphValidator.validate(b.model)
        let inferred = try ShapeInference().infer(model)
        return CostModel.table(for: AnalyzedModel(model: model, inferred: inferred, libONNXNote: nil))
    }

    func runs(_ steps: [(String, String, [String], [UInt64])], endToEnd: [UInt64], threads: Int = 1) -> MeasuredRuns {
        MeasuredRuns(steps: steps.map { name, op, sources, durations in
            var clock: UInt64 = 1_000
            var step = MeasuredRuns.Step(name: name, opType: op, sourceNodes: sources)
            for d in durations {
                step.starts.append(clock)
                step.ends.append(clock + d)
                clock += 10 * d
            }
            return step
        }, timedRuns: endToEnd, endToEndRuns: endToEnd, warmupRuns: 1, threads: threads)
    }

    @Test func fusedGroupCountsOnlyTheBytesThatCrossItsBoundary() throws {
        let table = try convReluAdd()
        let measured = runs([("c", "Conv", ["c", "r"], [3_000_000, 1_000_000, 2_000_000]),
                             ("y", "Add", ["y"], [1_000_000, 1_000_000, 1_000_000])],
                            endToEnd: [3_100_000, 3_000_000, 3_200_000])
        let profile = Profile.build(table: table, runs: measured, memory: MeasuredMemory(arenaBytes: 0, constantBytes: 0),
                                    device: nil, deviceSource: nil)
        #expect(profile.rows.count == 2)
        let group = profile.rows[0]
        let activation = 4.0 * 8 * 8 * 4   // bytes of one [1,4,8,8] float tensor
        // Reads x, w (144 floats) and bias (4); writes r. The Conv output c stays inside.
        #expect(group.bytesRead == activation + (144 + 4) * 4)
        #expect(group.bytesWritten == activation)
        #expect(group.fused == ["c", "r"])
        #expect(group.fusedOpTypes == "Conv+Relu")
        // MACs: 256 outputs x 36 taps; FLOPs: 2 x MACs + bias adds + Relu's 256 elements.
        #expect(group.macs == 256 * 36)
        #expect(group.flops == Double(2 * 256 * 36 + 256 + 256))
        #expect(group.params == 148)
        #expect(group.inputTypes.count == 1, "weights are not listed as activation inputs")
        #expect(group.latency.median == 2)

        let add = profile.rows[1]
        #expect(add.bytesRead == 2 * activation && add.bytesWritten == activation)
        #expect(add.inputTypes.count == 2)

        #expect(profile.nodeSumMs == 3)
        #expect(abs(group.share - 2.0 / 3) < 1e-12)
        #expect(profile.rows[1].cumulativeShare == 1)
        #expect(profile.endToEnd?.median == 3.1)
        #expect(abs((profile.overheadPercent ?? 0) - (3 - 3.1) / 3.1 * 100) < 1e-9)
        #expect(profile.notRun.isEmpty)
        #expect(profile.byOp.map(\.opType) == ["Conv", "Add"])
    }

    @Test func rowsAreSharesOfTheNodeSumAndNodesWithoutKernelsAreListed() throws {
        let table = try convReluAdd()
        // As if the Relu had been removed: it runs in no step.
        let measured = runs([("c", "Conv", ["c"], [1_000_000]), ("y", "Add", ["y"], [3_000_000])], endToEnd: [4_000_000])
        let profile = Profile.build(table: table, runs: measured, memory: MeasuredMemory(arenaBytes: 0, constantBytes: 0),
                                    device: nil, deviceSource: nil)
        #expect(profile.notRun == ["r"])
        #expect(profile.rows.map(\.share) == [0.25, 0.75])
        #expect(profile.byOp.first?.opType == "Add", "by op type, most expensive first")
    }

    @Test func rooflinePlacementUsesTheDeviceRoofAtTheMeasuredThreadCount() throws {
        let table = try convReluAdd()
        let measured = runs([("c", "Conv", ["c", "r"], [1_000]), ("y", "Add", ["y"], [1_000])], endToEnd: [2_000], threads: 2)
        let device = DeviceProfile(name: "test", cpu: "test cpu", source: .specDerived, cores: 2, isa: [], caches: .init(),
                                   roofs: [.init(threads: 1, fp32Gflops: 10, bandwidthGBps: 5),
                                           .init(threads: 2, fp32Gflops: 20, bandwidthGBps: 8)])
        let profile = Profile.build(table: table, runs: measured, memory: MeasuredMemory(arenaBytes: 0, constantBytes: 0),
                                    device: device, deviceSource: "test.json")
        #expect(profile.roofline == Roofline(peakGflops: 20, bandwidthGBps: 8))
        let group = profile.rows[0]
        let placement = try #require(group.placement)
        // 1 µs: FLOPs / 1e-6 s / 1e9 = FLOPs / 1000 GFLOP/s.
        #expect(abs(placement.achievedGflops - group.flops / 1_000) < 1e-9)
        #expect(abs(placement.achievedGBps - group.bytesMoved / 1_000) < 1e-9)
        let intensity = group.flops / group.bytesMoved
        let attainable = min(20, intensity * 8)
        #expect(abs(placement.attainable - attainable) < 1e-9)
        #expect(placement.bound == (intensity < 2.5 ? .memory : .compute))
        // The Add does one FLOP per 12 bytes: memory-bound.
        #expect(profile.rows[1].placement?.bound == .memory)
    }
}

/// Pairing layers of two variants and comparing their outputs.
struct ComparisonTests {
    func row(_ name: String, _ op: String, ms: Double = 1) -> Profile.Row {
        Profile.Row(costs: KernelCosts(name: name, opType: op, fusedOpTypes: op, fused: [name]),
                    latency: LatencyStats(milliseconds: [ms]))
    }

    @Test func layersPairByNameThenByPositionAndOpType() {
        // The variant renamed conv2, dropped the pool and added a Relu at the end.
        let base = [row("conv1", "Conv"), row("pool", "MaxPool"), row("conv2", "Conv", ms: 4), row("fc", "Gemm")]
        let variant = [row("conv1", "Conv"), row("conv2_pruned", "Conv", ms: 3), row("fc", "Gemm"), row("act", "Relu")]
        let pairs = Comparison.match(base, variant)
        let described = pairs.map { "\($0.baseline?.name ?? "-")|\($0.candidate?.name ?? "-")|\($0.matchedByName)" }
        #expect(described == ["conv1|conv1|true", "pool|-|false", "conv2|conv2_pruned|false", "fc|fc|true", "-|act|false"])
        #expect(pairs[2].deltaMs == -1)
        #expect(pairs[1].deltaMs == nil)
    }

    @Test func agreementOfOutputs() throws {
        let same = try #require(OutputAgreement.compare("y", baseline: [1, 2, 3, 4], candidate: [1, 2, 3, 4], classes: 2))
        #expect(same.maxAbsDifference == 0 && same.cosineSimilarity == 1 && same.top1Agreement == 1)
        // Rows [1, 2] and [3, 4]: the candidate flips the second row's arg-max.
        let flipped = try #require(OutputAgreement.compare("y", baseline: [1, 2, 3, 4], candidate: [1, 2, 4, 3], classes: 2))
        #expect(flipped.maxAbsDifference == 1)
        #expect(abs(flipped.cosineSimilarity - 29.0 / 30.0) < 1e-12)   // (1+4+12+12) / (sqrt(30) * sqrt(30))
        #expect(flipped.top1Agreement == 0.5)
        let opposite = try #require(OutputAgreement.compare("y", baseline: [1, 0], candidate: [-1, 0], classes: nil))
        #expect(opposite.cosineSimilarity == -1 && opposite.top1Agreement == nil)
        #expect(OutputAgreement.compare("y", baseline: [1], candidate: [1, 2], classes: nil) == nil)
    }
}
