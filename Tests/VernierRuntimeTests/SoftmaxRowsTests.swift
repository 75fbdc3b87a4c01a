import CVernierSIMD
import Foundation
import Testing
import VernierCost
import VernierGraph

/// `vernier_softmax_rows` (the Softmax kernel's last-axis rows) against softmax and
/// log-softmax in double precision: every row length around its 16- and 32-lane steps,
/// masked (-inf) scores, in place, and nothing written past the rows.
struct SoftmaxRowsTests {
    static let lengths = Array(1...70) + [127, 128, 197, 1000]

    /// Softmax (or log-softmax) of each row of `x`, in double precision.
    static func reference(_ x: [Float], length: Int, log: Bool) -> [Double] {
        stride(from: 0, to: x.count, by: length).flatMap { start -> [Double] in
            let row = x[start..<start + length].map(Double.init)
            let m = row.max() ?? 0
            let sum = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            return row.map { log ? $0 - m - Foundation.log(sum) : Foundation.exp($0 - m) / sum }
        }
    }

    static let cpuHasAVX512F = HostInfo.current().isa.contains("avx512f")

    @Test func matchesDoublePrecisionOnEveryLength() throws {
        for length in Self.lengths {
            let rows = 3
            var random = SplitMix64(seed: UInt64(length))
            var x = (0..<rows * length).map { _ in Float(Double(random.next() % 40_000) / 1000 - 20) }
            // Masked scores in the middle row (when it has more than one), as attention masks leave them.
            if length > 1 { for i in stride(from: length, to: 2 * length, by: 3) { x[i] = -.infinity } }
            for log in [false, true] {
                var y = [Float](repeating: 7, count: x.count + 16)
                let vectorized = x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { vernier_softmax_rows(xp.baseAddress, $0.baseAddress, rows, length, log ? 1 : 0) }
                }
                // Without AVX-512F the caller keeps its Swift loop; nothing here to check.
                guard vectorized == 1 else {
                    #expect(!Self.cpuHasAVX512F, "the CPU has AVX-512F: the C rows must run")
                    return
                }
                let want = Self.reference(x, length: length, log: log)
                for (i, w) in want.enumerated() {
                    if w == -.infinity {
                        #expect(y[i] == -.infinity, "log-softmax of a masked score, length \(length)")
                    } else {
                        // Probabilities within 1e-6; log-probabilities (up to about 40) within 1e-5 relative.
                        let tolerance = log ? 1e-5 * Swift.max(1, Swift.abs(w)) : 1e-6
                        #expect(Swift.abs(Double(y[i]) - w) <= tolerance, "length \(length) log \(log) at \(i): \(y[i]) vs \(w)")
                    }
                }
                if !log { #expect(y[length..<2 * length].enumerated().allSatisfy { x[length + $0.offset] != -.infinity || $0.element == 0 }) }
                #expect(y.suffix(16).allSatisfy { $0 == 7 }, "written past the rows, length \(length)")
                var inPlace = x
                inPlace.withUnsafeMutableBufferPointer { p in _ = vernier_softmax_rows(p.baseAddress, p.baseAddress, rows, length, log ? 1 : 0) }
                #expect(inPlace == Array(y.prefix(x.count)), "in place, length \(length) log \(log)")
            }
        }
    }
}
