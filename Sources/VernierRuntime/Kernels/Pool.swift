import VernierGraph

/// Kernels of the Pool family (same file name as the shape rules and cost formulas).
enum PoolKernels {
    static let all: [String: KernelFactory] = [:]
}
