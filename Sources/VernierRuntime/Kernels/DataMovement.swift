import VernierGraph

/// Kernels of the DataMovement family (same file name as the shape rules and cost formulas).
enum DataMovementKernels {
    static let all: [String: KernelFactory] = [:]
}
