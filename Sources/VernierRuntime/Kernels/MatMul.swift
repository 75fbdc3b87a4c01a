import VernierGraph

/// Kernels of the MatMul family (same file name as the shape rules and cost formulas).
enum MatMulKernels {
    static let all: [String: KernelFactory] = [:]
}
