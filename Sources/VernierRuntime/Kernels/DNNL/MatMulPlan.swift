import CDNNL
import VernierGraph

/// An fp32 matrix product on oneDNN, planned once for one pair of shapes and run many
/// times: `[batch..., M, K] x [batch..., K, N] -> [batch..., M, N]`, where the batch
/// dims broadcast (a dim of 1 on one side stands for the other side's) and a lower-rank
/// operand is lifted with leading 1s (up to oneDNN's 12 dims). Optional: either operand
/// transposed in its last two axes (Gemm's transA / transB, read through strides, no
/// copy), a bias row `[N]`, an output scale (Gemm's alpha), and a fused epilogue.
///
/// Layouts: the left operand and the result stay plain row-major. A constant right
/// operand (a weight) is created with `format_tag_any` and reordered once into the
/// layout oneDNN chooses (used in place when that is the caller's layout); a right
/// operand that arrives at run time (attention's K and V) is read in place, since a
/// reorder per run would cost as much as it could save. A wide constant right operand
/// is split into column panels (`widestPanel`), each with its own contiguous copy.
///
/// A fused residual is a `sum` post-op: the caller (or `run`) writes the addend into the
/// output first, see `FusedEpilogue.appendPostOps`.
///
/// The int8 form (`quantization`: QLinearMatMul's arithmetic) takes a u8 / s8 left
/// operand, a constant s8 right operand with zero point 0 (one scale, or one per output
/// column), optionally transposed (QGemm's transB), and writes u8 / s8 (or fp32 with
/// scale 1 and zero point 0); a bias is in the product's units (a_scale * b_scale), as
/// for the int8 convolution; the left operand is not transposed, no panels.
public final class MatMulPlan: @unchecked Sendable {
    /// The operands and result as oneDNN sees them (same rank), before transposition.
    public let aShape: [Int]
    public let bShape: [Int]
    public let outputShape: [Int]
    public let transA: Bool
    public let transB: Bool
    public let postOps: DNNLPostOps
    public let hasBias: Bool
    /// nil for an fp32 product.
    public let quantization: Int8Operands?
    public let threadCount: Int
    /// oneDNN's implementation name, e.g. `gemm:jit`.
    public let implementation: String
    /// Whether the right operand was given at plan time (and reordered then).
    public let hasConstantB: Bool
    /// Whether the plan holds its own copy of the constant right operand (so the caller
    /// may release the original).
    public var ownsB: Bool { hasConstantB && keptB == nil }

    public var fusedReLU: Bool { postOps.epilogue.activation == .relu }

    /// How many column panels the product is split into (1: not split).
    public var panelCount: Int { panels.count }

    private let engine: DNNLEngine
    /// The left operand, which every panel reads whole.
    private let a: DNNLMemory
    /// One oneDNN matmul per block of output columns; one block unless split.
    private let panels: [Panel]
    private let keptB: Tensor?
    private let k: Int

    /// One matmul computing output columns `column..<column + width` (all of them when
    /// not split); its memories are bound per run at the column's offset.
    private struct Panel {
        let b: DNNLMemory?
        let c: DNNLMemory
        let bias: DNNLMemory?
        let primitive: DNNLPrimitive
        let column: Int
    }

    /// Widest block of output columns one oneDNN matmul computes when the right operand
    /// is a constant matrix. oneDNN 2.6's only fp32 matmul on AVX2 is its jit sgemm, and
    /// with 768 inner dims it ran products with N = 3072 at about half the rate of
    /// N = 768 (BERT's FFN up-projection: 15.8 ms against 8.3 ms for the equal-work
    /// down-projection at 1 thread). The same product in panels, each writing its block
    /// of the row-major result through strides, runs at the narrow rate; narrower still
    /// was faster again (1 thread, medians of 3 interleaved rounds, [128,768]x[768,3072] /
    /// [128,3072]x[3072,768] / [128,768]x[768,768]: 12.0 / 11.2 / 2.4 ms in panels of
    /// 768, 9.1 / 8.5 / 2.3 ms in panels of 384, 9.7 / 8.7 / 2.3 ms in panels of 256;
    /// at 2 threads 384 and 768 were within noise).
    static let widestPanel = 384

    /// Fewest rows (M times the batch) of a product worth splitting into panels.
    static let fewestPanelRows = 64

    /// Column blocks for N columns: equal widths rounded up to multiples of 16, none
    /// over `widestPanel`; one block when N is not over it.
    static func panelColumns(_ n: Int) -> [Range<Int>] {
        guard n > widestPanel else { return [0..<n] }
        let count = (n + widestPanel - 1) / widestPanel
        let width = ((n + count - 1) / count + 15) / 16 * 16
        return stride(from: 0, to: n, by: width).map { $0..<min(n, $0 + width) }
    }

    /// - Parameters:
    ///   - a: left operand `[..., M, K]` (`[..., K, M]` when `transA`).
    ///   - b: right operand `[..., K, N]` (`[..., N, K]` when `transB`).
    ///   - constantB: the right operand's values at plan time, or nil to bind it per run.
    ///   - bias: whether a bias row of N floats is bound per run.
    ///   - relu: shorthand for an epilogue of ReLU alone.
    ///   - split: whether a constant right operand without batch dims may be split into
    ///     column panels (`panelColumns`) when the product has `fewestPanelRows` rows or
    ///     more.
    public init(a aShape: [Int], b bShape: [Int], transA: Bool = false, transB: Bool = false,
                constantB: Tensor? = nil, bias: Bool = false, relu: Bool = false,
                postOps: DNNLPostOps? = nil, engine: DNNLEngine? = nil, split: Bool = true,
                quantization: Int8Operands? = nil) throws {
        let engine = try engine ?? DNNLEngine.shared()
        let rank = max(aShape.count, bShape.count)
        guard aShape.count >= 2, bShape.count >= 2, rank <= Int(DNNL_MAX_NDIMS),
              aShape.allSatisfy({ $0 >= 1 }), bShape.allSatisfy({ $0 >= 1 })
        else {
            throw DNNLError.shapeMismatch("MatMulPlan takes operands of rank 2...\(DNNL_MAX_NDIMS) with no zero dims, "
                                          + "got \(aShape) x \(bShape)")
        }
        func lifted(_ shape: [Int]) -> [Int] { Array(repeating: 1, count: rank - shape.count) + shape }
        let a = lifted(aShape), b = lifted(bShape)
        let (m, ka) = transA ? (a[rank - 1], a[rank - 2]) : (a[rank - 2], a[rank - 1])
        let (kb, n) = transB ? (b[rank - 1], b[rank - 2]) : (b[rank - 2], b[rank - 1])
        var out: [Int] = []
        for axis in 0..<(rank - 2) {
            let (p, q) = (a[axis], b[axis])
            guard p == q || p == 1 || q == 1 else {
                throw DNNLError.shapeMismatch("batch dims of \(aShape) and \(bShape) do not broadcast")
            }
            out.append(max(p, q))
        }
        out += [m, n]
        guard ka == kb else {
            throw DNNLError.shapeMismatch("inner dims differ: \(aShape)\(transA ? "^T" : "") x \(bShape)\(transB ? "^T" : "")")
        }
        let bType: ElementType = quantization == nil ? .float : .int8
        if let constantB, constantB.shape.reduce(1, *) != b.reduce(1, *) || constantB.elementType != bType {
            throw DNNLError.shapeMismatch("constant right operand \(constantB.elementType) \(constantB.shape) for \(bShape)")
        }
        if let quantization {
            try quantization.validate("matmul")
            guard constantB != nil, !transA else {
                throw DNNLError.shapeMismatch("int8 matmul needs a constant right operand and an untransposed left one")
            }
        }
        let (aType, bDNNL, cType) = try (dnnlType(quantization?.sourceType ?? .float), dnnlType(bType),
                                         dnnlType(quantization?.destinationType ?? .float))
        self.engine = engine
        self.aShape = a
        self.bShape = b
        self.outputShape = out
        self.transA = transA
        self.transB = transB
        var postOps = postOps ?? DNNLPostOps()
        if relu { postOps.epilogue.activation = .relu }
        postOps.requantization = quantization?.requantization
        self.quantization = quantization
        self.postOps = postOps
        self.hasBias = bias
        self.threadCount = ThreadPool.threadCount
        self.k = ka
        self.hasConstantB = constantB != nil

        // The logical [..., rows, cols] strides of a stored operand (transposed: swapped).
        func logicalStrides(_ stored: [Int], transposed: Bool) -> [Int] {
            var strides = rowMajorStrides(stored)
            if transposed { strides.swapAt(rank - 1, rank - 2) }
            return strides
        }
        func logicalDims(_ stored: [Int], transposed: Bool) -> [Int] {
            var dims = stored
            if transposed { dims.swapAt(rank - 1, rank - 2) }
            return dims
        }
        let aDesc = transA ? try stridedDescriptor(logicalDims(a, transposed: true), strides: logicalStrides(a, transposed: true))
                           : try plainDescriptor(a, type: aType)
        let bLogical = logicalDims(b, transposed: transB)
        let bStrides = logicalStrides(b, transposed: transB)
        // A product of few rows (a classifier at batch 1) reads its weights once whatever
        // the panels; splitting would only copy them.
        let rows = out.dropLast().reduce(1, *)
        let splittable = split && quantization == nil && constantB != nil && b.dropLast(2).allSatisfy { $0 == 1 } && rows >= Self.fewestPanelRows
        let columns = splittable ? Self.panelColumns(n) : [0..<n]
        let outStrides = rowMajorStrides(out)
        let aMemory = try DNNLMemory(unbound: aDesc, engine: engine)
        var copiedB = false
        var panels: [Panel] = []
        for block in columns {
            // This block's columns of the result (through the full row stride) and of B.
            var cDims = out, bDims = bLogical
            cDims[rank - 1] = block.count
            bDims[rank - 1] = block.count
            let cDesc = try stridedDescriptor(cDims, strides: outStrides, type: cType)
            let bDesc = transB || columns.count > 1 ? try stridedDescriptor(bDims, strides: bStrides, type: bDNNL)
                                                    : try plainDescriptor(b, type: bDNNL)
            let biasDesc = try plainDescriptor(Array(repeating: 1, count: rank - 1) + [block.count])

            var opDesc = dnnl_matmul_desc_t()
            var aCopy = aDesc, cCopy = cDesc, biasCopy = biasDesc
            // Panels get contiguous copies of their blocks: read in place through B's
            // strides, BERT-base ran 1.33x slower at 1 thread and 1.4x at 2. The caller
            // releases the original (`ownsB`).
            var bAny = constantB != nil ? try descriptor(bDims, tag: dnnl_format_tag_any, type: bDNNL) : bDesc
            try withUnsafeMutablePointer(to: &biasCopy) { biasPointer in
                try dnnlCheck(dnnl_matmul_desc_init(&opDesc, &aCopy, &bAny, bias ? biasPointer : nil, &cCopy),
                              "dnnl_matmul_desc_init")
            }
            let pd = try withUnsafePointer(to: &opDesc) {
                try makePrimitiveDescriptor($0, postOps: postOps, engine: engine, what: "matmul")
            }
            defer { dnnl_primitive_desc_destroy(pd) }

            let cMemory = try DNNLMemory(unbound: cDesc, engine: engine)
            var arguments: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, aMemory), (DNNL_ARG_DST, cMemory)]
            var perRunB: DNNLMemory?
            if let constantB {
                let chosen = try queryDescriptor(pd, dnnl_query_weights_md)
                let user = try DNNLMemory(unbound: bDesc, engine: engine)
                // The block's first element: column `lowerBound` of the logical [K, N].
                try user.bind(constantB.rawPointer + block.lowerBound * bStrides[rank - 1] * MemoryLayout<Float>.stride)
                if columns.count == 1 && descriptorsEqual(chosen, bDesc) {
                    arguments.append((DNNL_ARG_WEIGHTS, user))
                } else {
                    let owned: DNNLMemory
                    if quantization == nil {
                        owned = try DNNLMemory.reordered(from: user, into: chosen, engine: engine)
                        try engine.wait()
                    } else {
                        owned = try DNNLMemory(owning: chosen, engine: engine)
                        let compensated = try ZeroPointCompensation.reorder(
                            from: user, weights: constantB.rawPointer, rows: ka, columns: n,
                            strides: (bStrides[rank - 2], bStrides[rank - 1]), into: owned, engine: engine)
                        if !compensated {
                            try makeReorder(from: user, to: owned, engine: engine).execute(on: engine)
                            try engine.wait()
                        }
                    }
                    copiedB = true
                    arguments.append((DNNL_ARG_WEIGHTS, owned))
                }
            } else {
                let user = try DNNLMemory(unbound: bDesc, engine: engine)
                arguments.append((DNNL_ARG_WEIGHTS, user))
                perRunB = user
            }
            var biasMemory: DNNLMemory?
            if bias {
                let memory = try DNNLMemory(unbound: biasDesc, engine: engine)
                arguments.append((DNNL_ARG_BIAS, memory))
                biasMemory = memory
            }
            if let scratchpad = try scratchpadMemory(pd, engine: engine) {
                arguments.append((DNNL_ARG_SCRATCHPAD, scratchpad))
            }
            panels.append(Panel(b: perRunB, c: cMemory, bias: biasMemory,
                                primitive: try DNNLPrimitive(descriptor: pd, arguments: arguments), column: block.lowerBound))
        }
        self.a = aMemory
        self.panels = panels
        if copiedB {
            // The plan holds its own copy now; the file's pages need not stay resident.
            constantB?.releaseResidentPages()
            keptB = nil
        } else {
            keptB = constantB
        }
        implementation = panels[0].primitive.implementation
    }

    /// Multiply-adds of one run: batch * M * N * K.
    public var macs: Int { outputShape.reduce(1, *) * k }

    /// Computes `output = a x b` (with the fused epilogue) and waits. The operands are
    /// checked by element count (any shape with the plan's element count is the same
    /// memory). No allocation.
    public func run(a aTensor: Tensor, b bTensor: Tensor?, bias biasTensor: Tensor? = nil, output: Tensor) throws {
        guard aTensor.elementCount == aShape.reduce(1, *), output.elementCount == outputShape.reduce(1, *),
              aTensor.elementType == quantization?.sourceType ?? .float,
              output.elementType == quantization?.destinationType ?? .float,
              hasConstantB || (bTensor?.elementCount == bShape.reduce(1, *) && bTensor?.elementType == .float),
              !hasBias || (biasTensor?.elementCount == outputShape[outputShape.count - 1]
                              && biasTensor?.elementType == .float)
        else {
            throw DNNLError.shapeMismatch("MatMulPlan for \(aShape) x \(bShape) -> \(outputShape) run with "
                                          + "\(aTensor.shape) x \(bTensor?.shape ?? []) -> \(output.shape)")
        }
        let floatBytes = MemoryLayout<Float>.stride
        try engine.exclusive {
            try a.bind(aTensor.rawPointer)
            for panel in panels {
                if let b = panel.b, let bTensor { try b.bind(bTensor.rawPointer) }
                if let bias = panel.bias, let biasTensor { try bias.bind(biasTensor.rawPointer + panel.column * floatBytes) }
                try panel.c.bind(output.rawPointer + panel.column * floatBytes)
                try panel.primitive.execute(on: engine)
            }
            try engine.wait()
        }
    }

    /// `run` for a plan with a constant right operand and no bias.
    public func run(a aTensor: Tensor, output: Tensor) throws {
        try run(a: aTensor, b: nil, output: output)
    }
}
