import VernierGraph

/// Kernels of the Conv family (same file name as the shape rules and cost formulas).
enum ConvKernels {
    static let all: [String: KernelFactory] = [:]
}
