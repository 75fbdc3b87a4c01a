import VernierGraph

/// Kernels of the Elementwise family (same file name as the shape rules and cost formulas).
enum ElementwiseKernels {
    static let all: [String: KernelFactory] = [:]
}
