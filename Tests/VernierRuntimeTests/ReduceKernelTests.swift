import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

struct ReduceKernelTests {
    static let reduceOps = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                            "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]

    /// Axes sets: the last axis, a contiguous middle block, the first, and a split set
    /// (the generic path), over a shape with no size a multiple of 8.
    @Test(arguments: [[3], [1, 2], [0], [0, 2], [-1, -3], [0, 1, 2, 3]])
    func everyReductionMatchesReference(_ axes: [Int]) throws {
        var rng = SeededGenerator(seed: UInt64(axes.count * 17 + (axes.first ?? 0) + 40))
        // Positive values keep ReduceLogSum and ReduceProd well defined.
        let x = Tensor(shape: [3, 5, 2, 19], values: (0..<(3 * 5 * 2 * 19)).map { _ in Float.random(in: 0.5..<1.5, using: &rng) })
        for op in Self.reduceOps {
            for keep in [true, false] {
                let want = ReferenceKernels.reduce(op, x, axes: axes, keepDims: keep)
                // Opset 18: axes as an input.
                let got = try PoolNormHarness.run(op, [x, PoolNormHarness.int64s(axes)], ["keepdims": .int(keep ? 1 : 0)], opset: 18)[0]
                #expect(got.shape == want.shape, "\(op) keepdims \(keep)")
                #expect(PoolNormHarness.error(got, want) <= 1e-5, "\(op) keepdims \(keep)")
                // Opset 13: axes as an attribute (ReduceSum already took the input).
                if op != "ReduceSum" {
                    let old = try PoolNormHarness.run(op, [x], ["axes": .ints(axes), "keepdims": .int(keep ? 1 : 0)], opset: 13)[0]
                    #expect(PoolNormHarness.error(old, want) <= 1e-5, "\(op) opset 13")
                }
            }
        }
    }

    @Test func emptyAxesReduceEverythingUnlessNoop() throws {
        let x = Tensor(shape: [2, 2], values: [1, -2, 3, 4])
        let all = try PoolNormHarness.run("ReduceSum", [x, PoolNormHarness.int64s([])], [:], opset: 13)[0]
        #expect(all.shape == [1, 1] && all.scalars(as: Float.self) == [6])
        let none = try PoolNormHarness.run("ReduceSum", [x], ["noop_with_empty_axes": .int(1)], opset: 13)[0]
        #expect(none.shape == [2, 2] && none.scalars(as: Float.self) == [1, -2, 3, 4])
        // Each element is its own group: the square for SumSquare, |x| for L1.
        let squares = try PoolNormHarness.run("ReduceSumSquare", [x], ["noop_with_empty_axes": .int(1)], opset: 18)[0]
        #expect(squares.scalars(as: Float.self) == [1, 4, 9, 16])
        let absolute = try PoolNormHarness.run("ReduceL1", [x], ["noop_with_empty_axes": .int(1)], opset: 18)[0]
        #expect(absolute.scalars(as: Float.self) == [1, 2, 3, 4])
    }

    @Test func reductionsOverAnEmptyAxisGiveTheIdentity() throws {
        let x = Tensor(shape: [2, 0, 3])
        let axes = PoolNormHarness.int64s([1])
        #expect(try PoolNormHarness.run("ReduceSum", [x, axes], [:], opset: 18)[0].scalars(as: Float.self) == Array(repeating: 0, count: 6))
        #expect(try PoolNormHarness.run("ReduceProd", [x, axes], [:], opset: 18)[0].scalars(as: Float.self) == Array(repeating: 1, count: 6))
        #expect(try PoolNormHarness.run("ReduceMin", [x, axes], [:], opset: 18)[0].scalars(as: Float.self) == Array(repeating: .infinity, count: 6))
    }

    @Test func integerReductionsStayExact() throws {
        let x = Tensor(.int64, shape: [2, 3], values: [Int64(1) << 40, 5, -7, 3, 3, 3])
        let sum = try PoolNormHarness.run("ReduceSum", [x, PoolNormHarness.int64s([1])], ["keepdims": .int(0)], opset: 13)[0]
        #expect(sum.elementType == .int64 && sum.scalars(as: Int64.self) == [(Int64(1) << 40) - 2, 9])
        let maxima = try PoolNormHarness.run("ReduceMax", [x], ["axes": .ints([0]), "keepdims": .int(0)], opset: 13)[0]
        #expect(maxima.scalars(as: Int64.self) == [Int64(1) << 40, 5, 3])
    }

    @Test func argMaxAndArgMinPickFirstOrLastTie() throws {
        let x = Tensor(shape: [2, 4], values: [1, 5, 5, 0, 2, 2, -1, -1])
        func arg(_ op: String, _ last: Int) throws -> [Int64] {
            try PoolNormHarness.run(op, [x], ["axis": .int(1), "keepdims": .int(0), "select_last_index": .int(last)])[0]
                .scalars(as: Int64.self)
        }
        #expect(try arg("ArgMax", 0) == [1, 0])
        #expect(try arg("ArgMax", 1) == [2, 1])
        #expect(try arg("ArgMin", 0) == [3, 2])
        #expect(try arg("ArgMin", 1) == [3, 3])
        var rng = SeededGenerator(seed: 99)
        let r = PoolNormHarness.random([3, 7, 5], &rng)
        for axis in 0..<3 {
            let got = try PoolNormHarness.run("ArgMax", [r], ["axis": .int(axis)])[0]
            #expect(got.shape == [3, 7, 5].enumerated().map { $0.offset == axis ? 1 : $0.element })
            #expect(got.scalars(as: Int64.self) == ReferenceKernels.argExtreme(r, axis: axis, isMax: true, selectLast: false))
        }
    }

    @Test func topKIsSortedWithLowerIndexFirstOnTies() throws {
        let x = Tensor(shape: [1, 6], values: [3, 1, 3, 2, 1, 3])
        let largest = try PoolNormHarness.run("TopK", [x, PoolNormHarness.int64s([4])], [:], opset: 11, outputs: 2)
        #expect(largest[0].scalars(as: Float.self) == [3, 3, 3, 2])
        #expect(largest[1].scalars(as: Int64.self) == [0, 2, 5, 3])
        let smallest = try PoolNormHarness.run("TopK", [x, PoolNormHarness.int64s([3])], ["largest": .int(0)], opset: 11, outputs: 2)
        #expect(smallest[0].scalars(as: Float.self) == [1, 1, 2])
        #expect(smallest[1].scalars(as: Int64.self) == [1, 4, 3])
        let none = try PoolNormHarness.run("TopK", [x, PoolNormHarness.int64s([0])], [:], opset: 11, outputs: 2)
        #expect(none[0].shape == [1, 0])
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("TopK", [x, PoolNormHarness.int64s([7])], [:], opset: 11, outputs: 2)
        }
        // Opset 1: k is an attribute.
        let old = try PoolNormHarness.run("TopK", [x], ["k": .int(2)], opset: 1, outputs: 2)
        #expect(old[1].scalars(as: Int64.self) == [0, 2])
        var rng = SeededGenerator(seed: 5)
        let r = PoolNormHarness.random([4, 9, 3], &rng)
        for largest in [true, false] {
            let got = try PoolNormHarness.run("TopK", [r, PoolNormHarness.int64s([5])], ["axis": .int(1), "largest": .int(largest ? 1 : 0)],
                                             opset: 11, outputs: 2)
            let want = ReferenceKernels.topK(r, k: 5, axis: 1, largest: largest)
            #expect(got[0].scalars(as: Float.self) == want.values)
            #expect(got[1].scalars(as: Int64.self) == want.indices)
        }
    }

    @Test func badAxesThrowInvalid() throws {
        let x = Tensor(shape: [2, 3])
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("ReduceMean", [x, PoolNormHarness.int64s([2])], [:], opset: 18)
        }
        #expect(throws: KernelError.self) { _ = try PoolNormHarness.run("ArgMax", [x], ["axis": .int(-3)]) }
    }

    /// Not a speed test: prints GB/s (input read) at 1 and 2 threads.
    @Test func reduceThroughputIsReported() throws {
        var rng = SeededGenerator(seed: 1)
        let x = PoolNormHarness.random([512, 768], &rng)
        let axes = PoolNormHarness.int64s([-1])
        _ = try PoolNormHarness.throughput("ReduceMean [512,768] last axis", bytes: x.byteCount,
                                           try PoolNormHarness.prepared("ReduceMean", [x, axes], [:], opset: 18))
    }
}
