/// Summary statistics of repeated timings, in milliseconds.
///
/// Percentiles interpolate linearly between the two nearest ranks (the rule NumPy's
/// `percentile` uses by default), so p90 of 10 runs lies between the 9th and 10th
/// fastest, not at the slowest.
public struct LatencyStats: Sendable, Equatable {
    public var count: Int
    public var median: Double
    public var p90: Double
    public var p99: Double
    public var min: Double
    public var max: Double
    public var mean: Double
    /// Sample standard deviation (n - 1 in the denominator); 0 for one sample.
    public var stdev: Double

    /// Statistics of `nanoseconds`; nil when there are none.
    public init?(nanoseconds: [UInt64]) {
        guard !nanoseconds.isEmpty else { return nil }
        self.init(milliseconds: nanoseconds.map { Double($0) / 1e6 })
    }

    /// Statistics of `milliseconds`, which must not be empty.
    public init(milliseconds samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        func percentile(_ q: Double) -> Double {
            guard sorted.count > 1 else { return sorted.first ?? 0 }
            let position = q / 100 * Double(sorted.count - 1)
            let lower = Int(position.rounded(.down))
            let upper = Swift.min(lower + 1, sorted.count - 1)
            return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
        }
        median = percentile(50)
        p90 = percentile(90)
        p99 = percentile(99)
        min = sorted.first ?? 0
        max = sorted.last ?? 0
        let average = sorted.reduce(0, +) / Double(Swift.max(1, sorted.count))
        mean = average
        let squares = sorted.reduce(0) { $0 + ($1 - average) * ($1 - average) }
        stdev = sorted.count > 1 ? (squares / Double(sorted.count - 1)).squareRoot() : 0
    }

    /// p90 over the median: 1.0 for perfectly steady timings.
    public var spread: Double { median > 0 ? p90 / median : 1 }
}
