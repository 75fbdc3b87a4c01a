import Testing
@testable import VernierPlanner

/// The NetAdapt-style search over per-group cuts, on hand-made kernels and groups.
struct PruningSearchTests {
    /// Two groups: A (8 channels) feeds a 10 ms kernel that writes B (8 channels) and a
    /// 2 ms kernel touching A only; B's 4 ms consumer touches B only.
    func search(scoresA: [Double] = [8, 7, 6, 5, 4, 3, 2, 1], scoresB: [Double] = [8, 7, 6, 5, 4, 3, 2, 1]) -> PruningSearch {
        PruningSearch(kernels: [.init(name: "convAB", ms: 10, groups: [0, 1]), .init(name: "reluA", ms: 2, groups: [0]),
                                .init(name: "fcB", ms: 4, groups: [1])],
                      groups: [.init(name: "A", channels: 8, scores: scoresA), .init(name: "B", channels: 8, scores: scoresB)],
                      fixedMs: 1, stepShare: 0.25, maxRatio: 0.75)
    }

    @Test func estimateScalesEachKernelByTheShareOfChannelsKeptInItsGroups() {
        let s = search()
        #expect(s.estimateMs(kept: [8, 8]) == 17)
        // A at 4 of 8: convAB 5, reluA 1, fcB 4, plus 1 fixed.
        #expect(s.estimateMs(kept: [4, 8]) == 11)
        // Both at 4: 2.5 + 1 + 2 + 1.
        #expect(s.estimateMs(kept: [4, 4]) == 6.5)
    }

    @Test func eachStepTakesTheCutWithTheMostLatencySavedPerImportanceLost() {
        // A's channels are all equally important; B's last two hold almost nothing, so
        // B's first cut loses far less importance although it saves less time.
        let s = search(scoresA: [1, 1, 1, 1, 1, 1, 1, 1], scoresB: [10, 10, 10, 10, 10, 10, 0.01, 0.01])
        let first = s.search(targetMs: 16)
        #expect(first.steps.map(\.group) == ["B"])
        #expect(first.kept == [8, 6])
        #expect(first.steps[0].estimatedMs == s.estimateMs(kept: [8, 6]))
    }

    @Test func aGroupsOwnMultipleOverridesTheSearchRounding() {
        // Rounding to 8 leaves an 8-channel group nothing to cut; a group of wide units
        // (attention heads) whose own multiple is 1 still steps down.
        var s = search()
        s.roundTo = 8
        #expect(s.nextKept(0, after: 8) == nil)
        s.groups[0].roundTo = 1
        #expect(s.nextKept(0, after: 8) == 6)
    }

    @Test func theSearchStopsAtTheTargetOrAtTheFloor() {
        let s = search()
        let met = s.search(targetMs: 10)
        #expect(s.estimateMs(kept: met.kept) <= 10)
        #expect(met.kept.allSatisfy { $0 >= 2 })   // never below 25% (maxRatio 0.75)
        // An unreachable target cuts every group to its floor, then stops.
        let floor = s.search(targetMs: 0)
        #expect(floor.kept == [2, 2])
        #expect(s.estimateMs(kept: floor.kept) > 0)
        // Already under the target: nothing to do.
        #expect(s.search(targetMs: 100).steps.isEmpty)
    }

    @Test func roundToKeepsMultiplesAndRatiosReproduceTheCounts() {
        var s = search()
        s.roundTo = 4
        let r = s.search(targetMs: 8)
        #expect(r.kept.allSatisfy { $0 % 4 == 0 && $0 >= 4 })
        let ratios = s.ratios(kept: r.kept)
        for (g, group) in s.groups.enumerated() {
            let ratio = ratios[group.name] ?? 0
            #expect(ChannelPruner.keepCount(channels: group.channels, ratio: ratio, roundTo: 4) == r.kept[g])
        }
    }

    @Test func timeSharesCountEveryKernelTouchingAGroupByName() {
        let s = search()
        // The variant's kernels by name; "extra" belongs to no group, "fcB" was not run.
        let shares = s.timeShares(of: [("convAB", 6), ("reluA", 2), ("extra", 2)])
        #expect(shares[0] == 0.8)   // (6 + 2) / 10
        #expect(shares[1] == 0.6)   // 6 / 10
        #expect(s.timeShares(of: []).allSatisfy { $0 == nil })
    }
}
