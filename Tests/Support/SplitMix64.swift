import VernierGraph

/// The tests' generator is the library's (VernierGraph.SplitMix64), so test data and
/// generated model inputs come from one implementation.
public typealias SplitMix64 = VernierGraph.SplitMix64
