import VernierGraph

/// Kernels of the MatMul family (same file name as the shape rules and cost formulas).
enum MatMulKernels {
    static let all: [String: KernelFactory] = [
        "MatMul": { try MatMulKernel($0) },
        "Gemm": { try GemmKernel($0) },
    ]
}

/// Checks that a node's inputs are fp32 where inference knows their types.
private func requireFloatInputs(_ ctx: KernelContext, _ op: String) throws {
    for (index, type) in ctx.inputTypes.enumerated() where index < ctx.node.inputs.count {
        if let type, type.elementType != .float {
            throw KernelError.unsupported("\(op) input \(index) of type \(type.elementType) (fp32 only)")
        }
    }
}

/// How NumPy matmul shapes map onto one oneDNN matmul: the operands as oneDNN sees them
/// (same memory, other shapes) and the result's ONNX shape.
struct MatMulLayout: Equatable {
    var a: [Int]
    var b: [Int]
    var output: [Int]
    var k: Int

    /// nil when the shapes do not fit (the caller reports them).
    init?(a: [Int], b: [Int]) {
        guard let output = ReferenceKernels.matMulShape(a, b) else { return nil }
        self.output = output
        let a2 = a.count == 1 ? [1] + a : a
        let b2 = b.count == 1 ? b + [1] : b
        let (m, k, n) = (a2[a2.count - 2], a2[a2.count - 1], b2[b2.count - 1])
        self.k = k
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        if bBatch.allSatisfy({ $0 == 1 }) {
            // One weight matrix for every row of every batch: a single [B*M, K] x [K, N]
            // product (what oneDNN runs fastest, and the common transformer case).
            self.a = [aBatch.reduce(1, *) * m, k]
            self.b = [k, n]
            return
        }
        // Batch axes lifted to one rank; size-1 axes of the result dropped; adjacent axes
        // broadcast the same way merged (contiguous memory on both sides), so any rank
        // fits oneDNN's 12 dims in practice.
        let rank = max(aBatch.count, bBatch.count)
        let pa = Array(repeating: 1, count: rank - aBatch.count) + aBatch
        let pb = Array(repeating: 1, count: rank - bBatch.count) + bBatch
        var mergedA: [Int] = [], mergedB: [Int] = [], pattern: [(Bool, Bool)] = []
        for axis in 0..<rank {
            let size = max(pa[axis], pb[axis])
            guard size != 1 else { continue }
            let p = (pa[axis] == 1, pb[axis] == 1)
            if let last = pattern.last, last == p {
                mergedA[mergedA.count - 1] *= pa[axis]
                mergedB[mergedB.count - 1] *= pb[axis]
            } else {
                pattern.append(p)
                mergedA.append(pa[axis])
                mergedB.append(pb[axis])
            }
        }
        self.a = mergedA + [m, k]
        self.b = mergedB + [k, n]
    }
}

/// Fills `output` (`m * n` floats) with `beta * C` broadcast from `cShape` (rank <= 2)
/// plus `addend` (m x n). Reads element i of `addend` before writing element i, so the
/// addend may be the output's own memory.
private func prefill(_ output: Tensor, m: Int, n: Int, c: Tensor?, beta: Float, addend: Tensor?) {
    let out = output.rawPointer.assumingMemoryBound(to: Float.self)
    let r = addend.map { UnsafePointer($0.rawPointer.assumingMemoryBound(to: Float.self)) }
    var rowStride = 0, columnStride = 0
    var cv: UnsafePointer<Float>?
    if let c {
        let shape = Array(repeating: 1, count: 2 - c.rank) + c.shape
        columnStride = shape[1] == 1 ? 0 : 1
        rowStride = shape[0] == 1 ? 0 : shape[1]
        cv = UnsafePointer(c.rawPointer.assumingMemoryBound(to: Float.self))
    }
    for i in 0..<m {
        let row = out + i * n
        if let cv {
            let cRow = cv + i * rowStride
            if let r {
                let rRow = r + i * n
                for j in 0..<n { row[j] = rRow[j] + beta * cRow[j * columnStride] }
            } else {
                for j in 0..<n { row[j] = beta * cRow[j * columnStride] }
            }
        } else if let r {
            let rRow = r + i * n
            if rRow != UnsafePointer(row) { row.update(from: rRow, count: n) }
        }
    }
}

/// Applies only the activation of `epilogue` in place (the K == 0 corner, where oneDNN
/// has no product to attach post-ops to).
private func activateInPlace(_ output: Tensor, _ epilogue: FusedEpilogue) {
    guard epilogue.activation != nil else { return }
    output.withUnsafeMutableBufferPointer(as: Float.self) { values in
        for i in values.indices { values[i] = Float(epilogue.activate(Double(values[i]))) }
    }
}

/// ONNX MatMul (NumPy semantics, fp32) on oneDNN through `MatMulPlan`: 1-D operands
/// promoted, batch dims broadcast (folded into M when the right side has no batch),
/// a constant right operand reordered once into oneDNN's layout, the fused epilogue as
/// post-ops. Plans are made at compile time when both shapes are known, else on the
/// first run with new shapes, and cached.
final class MatMulKernel: Kernel {
    let epilogue: FusedEpilogue
    /// The fused bias row (`fused_bias`): N values added to every output row.
    let biasIndex: Int?
    let addendIndex: Int?
    /// The constant right operand until a plan made at plan time has copied it (then
    /// released: `packedInputs`).
    private var constantB: Tensor?
    private(set) var packedInputs: [Int] = []
    private struct Entry {
        var a: [Int], b: [Int], threads: Int
        var layout: MatMulLayout
        var plan: MatMulPlan?
    }
    private var entries: [Entry] = []

    init(_ ctx: KernelContext) throws {
        epilogue = try FusedEpilogue(node: ctx.node)
        let hasBias = try ctx.node.int(FusedAttributes.bias, default: 0) != 0
        let count = ctx.node.inputs.count
        let expected = 2 + (hasBias ? 1 : 0) + (epilogue.addsResidual ? 1 : 0)
        guard count == expected else {
            throw KernelError.invalid("MatMul takes 2 inputs\(hasBias ? ", a fused bias" : "")"
                                      + "\(epilogue.addsResidual ? " and a fused addend" : ""), got \(count)")
        }
        try requireFloatInputs(ctx, "MatMul")
        biasIndex = hasBias ? 2 : nil
        addendIndex = epilogue.addsResidual ? expected - 1 : nil
        constantB = ctx.constant(1)
        let bShape = constantB?.shape ?? ctx.knownInputShape(1)
        if let aShape = ctx.knownInputShape(0), let bShape {
            let made = try entry(a: aShape, b: bShape)
            // The shapes are the graph's (a compiled graph refuses others), so a copied
            // right operand is never needed again.
            if made.plan?.ownsB == true {
                packedInputs = [1]
                constantB = nil
            }
        }
    }

    private func entry(a: [Int], b: [Int]) throws -> Entry {
        let threads = ThreadPool.threadCount
        if let index = entries.firstIndex(where: { $0.a == a && $0.b == b && $0.threads == threads }) {
            return entries[index]
        }
        if !packedInputs.isEmpty {
            // The plan keeps serving its shapes whatever the thread count now is.
            if let made = entries.first(where: { $0.a == a && $0.b == b }) { return made }
            throw KernelError.invalid("the right operand was packed for \(entries.first?.a ?? []); \(a) x \(b) needs a new plan")
        }
        guard let layout = MatMulLayout(a: a, b: b) else {
            throw KernelError.invalid("MatMul operands \(a) and \(b) do not fit (inner dims or batch dims)")
        }
        var plan: MatMulPlan?
        if layout.output.allSatisfy({ $0 >= 1 }), layout.k >= 1 {
            plan = try asKernelErrors("oneDNN matmul") {
                try MatMulPlan(a: layout.a, b: layout.b, constantB: constantB, bias: biasIndex != nil,
                               postOps: DNNLPostOps(epilogue: epilogue, sum: epilogue.addsResidual))
            }
        }
        let made = Entry(a: a, b: b, threads: threads, layout: layout, plan: plan)
        if entries.count >= 4 { entries.removeLast() }
        entries.insert(made, at: 0)
        return made
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let a = try requiredInput(inputs, 0)
        // A packed right operand is the plan's; the executor no longer holds it.
        let packedB = packedInputs.isEmpty ? nil : entries.first?.b
        let b = packedB == nil ? try requiredInput(inputs, 1) : nil
        let addend = try addendIndex.map { try requiredInput(inputs, $0) }
        let bias = try biasIndex.map { try requiredInput(inputs, $0) }
        guard a.elementType == .float, b?.elementType ?? .float == .float, addend?.elementType ?? .float == .float,
              bias?.elementType ?? .float == .float else {
            throw KernelError.unsupported("MatMul of \(a.elementType) x \(b?.elementType ?? .float) (fp32 only)")
        }
        let entry = try entry(a: a.shape, b: b?.shape ?? packedB ?? [])
        let output = try outputs.allocate(0, .float, entry.layout.output)
        if let addend, addend.shape != entry.layout.output {
            throw KernelError.invalid("fused addend \(addend.shape) differs from the output \(entry.layout.output)")
        }
        let rows = entry.layout.output.last ?? 1
        if let bias, bias.elementCount != rows {
            throw KernelError.invalid("fused bias \(bias.shape) does not hold the output's \(rows) columns")
        }
        let count = output.elementCount
        if addend != nil || entry.plan == nil {
            if entry.plan == nil, let bias {
                // No product: the result is bias (+ addend), then the activation.
                prefill(output, m: count / max(rows, 1), n: rows, c: bias.reshaped([rows]), beta: 1, addend: addend)
            } else if let addend {
                prefill(output, m: count / max(rows, 1), n: rows, c: nil, beta: 0, addend: addend)
            } else if count > 0 {
                output.rawPointer.initializeMemory(as: Float.self, repeating: 0, count: count)
            }
        }
        guard let plan = entry.plan else {
            // No product to compute (a zero dim): the result is the epilogue of 0 (+ addend).
            activateInPlace(output, epilogue)
            return
        }
        try asKernelErrors("oneDNN matmul") {
            try plan.run(a: a, b: plan.hasConstantB ? nil : b, bias: bias, output: output)
        }
    }
}

/// ONNX Gemm (fp32): `alpha * op(A) * op(B) + beta * C`, then the fused epilogue, on one
/// oneDNN matmul. Transposes are strides (no copy). A bias row (`C` of shape `[N]` or
/// `[1, N]` with alpha = beta = 1, as from a Linear layer) is oneDNN's bias; any other
/// `C` (scalar, column, full matrix, or other alpha / beta) is written into the output
/// first as `beta * C` and summed by a `sum` post-op, with alpha as the output scale.
final class GemmKernel: Kernel {
    let transA: Bool
    let transB: Bool
    let alpha: Float
    let beta: Float
    let epilogue: FusedEpilogue
    let cIndex: Int?
    let addendIndex: Int?
    let constantB: Tensor?
    private struct Entry {
        var a: [Int], b: [Int], c: [Int]?, threads: Int
        var m: Int, n: Int
        var usesBias: Bool, prefills: Bool
        var plan: MatMulPlan?
    }
    private var entries: [Entry] = []

    init(_ ctx: KernelContext) throws {
        transA = try ctx.node.int("transA", default: 0) != 0
        transB = try ctx.node.int("transB", default: 0) != 0
        alpha = try ctx.node.float("alpha", default: 1)
        beta = try ctx.node.float("beta", default: 1)
        epilogue = try FusedEpilogue(node: ctx.node)
        let count = ctx.node.inputs.count
        let regular = count - (epilogue.addsResidual ? 1 : 0)
        guard (2...3).contains(regular) else {
            throw KernelError.invalid("Gemm takes 2 or 3 inputs\(epilogue.addsResidual ? " and a fused addend" : ""), got \(count)")
        }
        try requireFloatInputs(ctx, "Gemm")
        cIndex = regular == 3 && !ctx.node.inputs[2].isEmpty ? 2 : nil
        addendIndex = epilogue.addsResidual ? count - 1 : nil
        constantB = ctx.constant(1)
        let cShape = cIndex.map { ctx.constant($0)?.shape ?? ctx.knownInputShape($0) }
        if let aShape = ctx.knownInputShape(0), let bShape = constantB?.shape ?? ctx.knownInputShape(1),
           let cShape = cShape ?? .some(nil) {
            _ = try entry(a: aShape, b: bShape, c: cShape)
        }
    }

    private func entry(a: [Int], b: [Int], c: [Int]?) throws -> Entry {
        let threads = ThreadPool.threadCount
        if let index = entries.firstIndex(where: { $0.a == a && $0.b == b && $0.c == c && $0.threads == threads }) {
            return entries[index]
        }
        guard a.count == 2, b.count == 2 else {
            throw KernelError.invalid("Gemm needs 2-D A and B, got \(a) and \(b)")
        }
        let (m, k) = transA ? (a[1], a[0]) : (a[0], a[1])
        let (kb, n) = transB ? (b[1], b[0]) : (b[0], b[1])
        guard k == kb else {
            throw KernelError.invalid("Gemm inner dims differ: A \(a) (transA \(transA)) and B \(b) (transB \(transB))")
        }
        var usesBias = false
        if let c {
            let lifted = Array(repeating: 1, count: max(0, 2 - c.count)) + c
            guard c.count <= 2, lifted[0] == 1 || lifted[0] == m, lifted[1] == 1 || lifted[1] == n else {
                throw KernelError.invalid("Gemm C \(c) does not broadcast to [\(m), \(n)]")
            }
            usesBias = alpha == 1 && beta == 1 && lifted == [1, n] && k >= 1
        }
        let prefills = (c != nil && beta != 0 && !usesBias) || epilogue.addsResidual
        var plan: MatMulPlan?
        if m >= 1, n >= 1, k >= 1 {
            plan = try asKernelErrors("oneDNN matmul (Gemm)") {
                // Not split into panels: this kernel keeps its constant B for other shapes, so
                // panel copies would hold the weights twice (VGG-11's first Linear: 411 MB).
                try MatMulPlan(a: a, b: b, transA: transA, transB: transB, constantB: constantB, bias: usesBias,
                               postOps: DNNLPostOps(epilogue: epilogue, sum: prefills, outputScale: alpha), split: false)
            }
        }
        let made = Entry(a: a, b: b, c: c, threads: threads, m: m, n: n, usesBias: usesBias, prefills: prefills, plan: plan)
        if entries.count >= 4 { entries.removeLast() }
        entries.insert(made, at: 0)
        return made
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let a = try requiredInput(inputs, 0), b = try requiredInput(inputs, 1)
        let c = try cIndex.map { try requiredInput(inputs, $0) }
        let addend = try addendIndex.map { try requiredInput(inputs, $0) }
        guard a.elementType == .float, b.elementType == .float, c?.elementType ?? .float == .float,
              addend?.elementType ?? .float == .float else {
            throw KernelError.unsupported("Gemm of \(a.elementType) (fp32 only)")
        }
        let entry = try entry(a: a.shape, b: b.shape, c: c?.shape)
        let output = try outputs.allocate(0, .float, [entry.m, entry.n])
        if let addend, addend.shape != output.shape {
            throw KernelError.invalid("fused addend \(addend.shape) differs from the output \(output.shape)")
        }
        if entry.prefills || entry.plan == nil {
            prefill(output, m: entry.m, n: entry.n, c: beta == 0 || entry.usesBias ? nil : c, beta: beta, addend: addend)
        }
        guard let plan = entry.plan else {
            // K == 0 (or an empty output): alpha * 0 + beta * C, then the activation.
            activateInPlace(output, epilogue)
            return
        }
        try asKernelErrors("oneDNN matmul (Gemm)") {
            try plan.run(a: a, b: constantB == nil ? b : nil, bias: entry.usesBias ? c : nil, output: output)
        }
    }
}
