import VernierGraph

/// Kernels of the Recurrent family (same file name as the shape rules and cost formulas).
enum RecurrentKernels {
    static let all: [String: KernelFactory] = [:]
}
