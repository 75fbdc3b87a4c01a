import VernierRuntime

/// SplitMix64: a small, fixed-seed generator so every test sees the same numbers.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A float tensor of `shape` with values uniform in [-1, 1).
func randomTensor(_ shape: [Int], using rng: inout SeededGenerator) -> Tensor {
    let count = shape.reduce(1, *)
    return Tensor(shape: shape, values: (0..<count).map { _ in Float.random(in: -1..<1, using: &rng) })
}

/// max |actual - expected| / max |expected| (0 when both are all zeros).
func relativeError(_ actual: Tensor, _ expected: Tensor) -> Float {
    let x = actual.scalars(as: Float.self), y = expected.scalars(as: Float.self)
    precondition(x.count == y.count)
    let diff = zip(x, y).map { abs($0 - $1) }.max() ?? 0
    let scale = y.map { abs($0) }.max() ?? 0
    return scale == 0 ? diff : diff / scale
}

let tolerance: Float = 1e-4
