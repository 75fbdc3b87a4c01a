import VernierGraph

/// Kernels of the ControlFlow family (same file name as the shape rules and cost formulas).
enum ControlFlowKernels {
    static let all: [String: KernelFactory] = [:]
}
