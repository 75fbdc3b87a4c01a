import VernierGraph

/// Kernels of the Quantization family (same file name as the shape rules and cost formulas).
enum QuantizationKernels {
    static let all: [String: KernelFactory] = [:]
}
