/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator, so generated
/// inputs and every test run see the same numbers on every platform.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n > 0); the modulo bias is irrelevant here.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Uniform in range.
    public mutating func within(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    public mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }

    /// Uniform in [-1, 1), on a 2^-23 grid.
    public mutating func signedUnit() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
