import VernierGraph

/// Kernels of the Normalization family (same file name as the shape rules and cost formulas).
enum NormalizationKernels {
    static let all: [String: KernelFactory] = [:]
}
