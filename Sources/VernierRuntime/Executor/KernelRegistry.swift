import VernierGraph

/// Every op the executor runs, by op type: one table per family, in
/// `Kernels/<Family>.swift` (the same file names as the shape rules and cost formulas).
public enum KernelRegistry {
    static let table: [String: KernelFactory] = opRegistry([
        ElementwiseKernels.all, ConvKernels.all, MatMulKernels.all, PoolKernels.all, NormalizationKernels.all,
        ReduceKernels.all, ShapeOpKernels.all, DataMovementKernels.all, RecurrentKernels.all,
        QuantizationKernels.all, ControlFlowKernels.all,
    ], kind: "kernel")

    /// The factory for a node's op, or nil when Vernier has no kernel for it.
    public static func factory(for node: Node) -> KernelFactory? {
        if node.isDefaultDomain { return table[node.opType] }
        return node.domain == "com.microsoft" ? CustomDomainKernels.all[node.opType] : nil
    }

    /// Every default-domain op type with a kernel, sorted.
    public static var supportedOps: [String] { table.keys.sorted() }
}
