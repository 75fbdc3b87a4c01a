import VernierRuntime
import VernierTestSupport

/// The tests' fixed-seed generator.
typealias SeededGenerator = SplitMix64

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
