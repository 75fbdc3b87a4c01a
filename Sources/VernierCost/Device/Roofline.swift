/// The roofline model of one machine at one thread count: work at arithmetic intensity
/// I (FLOPs per byte moved) runs at most at min(peak, I x bandwidth).
public struct Roofline: Sendable, Equatable {
    /// Which roof caps a layer.
    public enum Bound: String, Sendable {
        case compute, memory
    }

    /// Where one layer stands against the roofs.
    public struct Placement: Sendable, Equatable {
        /// FLOP/s and bytes/s the layer reached, in G per second.
        public var achievedGflops: Double
        public var achievedGBps: Double
        /// The attainable rate at the layer's intensity (GFLOP/s; for layers without
        /// arithmetic, the bandwidth roof in GB/s).
        public var attainable: Double
        /// Share of the attainable rate reached, in percent.
        public var percentOfRoof: Double
        public var bound: Bound
    }

    public var peakGflops: Double
    public var bandwidthGBps: Double

    public init(peakGflops: Double, bandwidthGBps: Double) {
        self.peakGflops = peakGflops
        self.bandwidthGBps = bandwidthGBps
    }

    /// Intensity (FLOPs per byte) where the two roofs meet.
    public var ridgeIntensity: Double { peakGflops / bandwidthGBps }

    /// The attainable GFLOP/s at `intensity`.
    public func attainableGflops(intensity: Double) -> Double { min(peakGflops, intensity * bandwidthGBps) }

    public func bound(intensity: Double) -> Bound { intensity < ridgeIntensity ? .memory : .compute }

    /// Places a layer that did `flops` and moved `bytes` in `seconds`. A layer without
    /// arithmetic (data movement) is measured against the bandwidth roof alone; nil when
    /// it did nothing measurable.
    public func place(flops: Double, bytes: Double, seconds: Double) -> Placement? {
        guard seconds > 0, flops >= 0, bytes >= 0, flops + bytes > 0 else { return nil }
        let gflops = flops / seconds / 1e9
        let gbps = bytes / seconds / 1e9
        guard bytes > 0 else {
            // All arithmetic and no bytes (cannot happen for real ops): compute roof only.
            return Placement(achievedGflops: gflops, achievedGBps: 0, attainable: peakGflops,
                             percentOfRoof: 100 * gflops / peakGflops, bound: .compute)
        }
        let intensity = flops / bytes
        if flops == 0 {
            return Placement(achievedGflops: 0, achievedGBps: gbps, attainable: bandwidthGBps,
                             percentOfRoof: 100 * gbps / bandwidthGBps, bound: .memory)
        }
        let attainable = attainableGflops(intensity: intensity)
        return Placement(achievedGflops: gflops, achievedGBps: gbps, attainable: attainable,
                         percentOfRoof: 100 * gflops / attainable, bound: bound(intensity: intensity))
    }
}
