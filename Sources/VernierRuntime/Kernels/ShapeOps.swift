import VernierGraph

/// Kernels of the ShapeOps family (same file name as the shape rules and cost formulas).
enum ShapeOpKernels {
    static let all: [String: KernelFactory] = [:]
}
