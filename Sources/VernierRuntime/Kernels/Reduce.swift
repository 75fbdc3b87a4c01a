import VernierGraph

/// Kernels of the Reduce family (same file name as the shape rules and cost formulas).
enum ReduceKernels {
    static let all: [String: KernelFactory] = [:]
}
