import VernierGraph

/// One weight tensor after unstructured pruning.
public struct SparsifiedTensor: Sendable {
    public var name: String
    public var elements: Int
    public var zeros: Int
    public var denseBytes: Int
    /// Bytes in a CSR-like form: float value + int32 column index per non-zero, plus
    /// int32 row offsets over dim 0.
    public var sparseBytes: Int
}

/// What unstructured pruning did, stated honestly: the dense file does not shrink, and
/// dense kernels do the same work on zeros.
public struct SparsityReport: Sendable {
    public var tensors: [SparsifiedTensor]
    /// Weight bytes of the whole model, unchanged by zeroing.
    public var weightBytes: Int

    public var zeros: Int { tensors.reduce(0) { $0 + $1.zeros } }
    public var prunedElements: Int { tensors.reduce(0) { $0 + $1.elements } }
    /// Weight bytes if the pruned tensors were stored sparse and the rest dense.
    public var sparseWeightBytes: Int {
        weightBytes - tensors.reduce(0) { $0 + $1.denseBytes } + tensors.reduce(0) { $0 + min($1.sparseBytes, $1.denseBytes) }
    }
}

/// Unstructured magnitude pruning: zeroes the smallest-magnitude fraction of each fp32
/// Conv, ConvTranspose, Gemm and MatMul weight (per tensor).
public enum MagnitudePruning {
    public static func sparsify(_ model: Model, sparsity: Double) throws -> (model: Model, report: SparsityReport) {
        guard sparsity >= 0 && sparsity < 1 else { throw PruningError.badRatio(group: nil, value: sparsity) }
        var graph = model.graph
        var weightNames = Set<String>()
        for node in graph.nodes where node.isDefaultDomain {
            switch node.opType {
            case "Conv", "ConvTranspose", "Gemm": if let w = node.input(1) { weightNames.insert(w) }
            case "MatMul": for i in 0..<2 { if let w = node.input(i) { weightNames.insert(w) } }
            default: break
            }
        }
        var tensors: [SparsifiedTensor] = []
        for i in graph.initializers.indices {
            let t = graph.initializers[i]
            guard weightNames.contains(t.name), t.elementType == .float, t.dims.count >= 2 else { continue }
            var values = t.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            let target = Int(Double(values.count) * sparsity)
            if target > 0 {
                let threshold = values.map(abs).sorted()[target - 1]
                var zeroed = 0
                // Strictly smaller first, then ties at the threshold until the target is met.
                for j in values.indices where abs(values[j]) < threshold { values[j] = 0; zeroed += 1 }
                for j in values.indices where zeroed < target && abs(values[j]) == threshold && values[j] != 0 {
                    values[j] = 0
                    zeroed += 1
                }
                graph.initializers[i] = TensorData(floats: values, name: t.name, dims: t.dims)
            }
            let zeros = values.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
            let nonZeros = values.count - zeros
            tensors.append(SparsifiedTensor(name: t.name, elements: values.count, zeros: zeros, denseBytes: t.byteCount,
                                            sparseBytes: nonZeros * 8 + (t.dims[0] + 1) * 4))
        }
        var out = model
        out.graph = graph
        let weightBytes = graph.initializers.reduce(0) { $0 + $1.byteCount }
        return (out, SparsityReport(tensors: tensors, weightBytes: weightBytes))
    }
}
