import CDNNL

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
/// reorder per run would cost as much as it could save.
///
/// A fused residual is a `sum` post-op: the caller (or `run`) writes the addend into the
/// output first, see `FusedEpilogue.appendPostOps`.
public final class MatMulPlan: @unchecked Sendable {
    /// The operands and result as oneDNN sees them (same rank), before transposition.
    public let aShape: [Int]
    public let bShape: [Int]
    public let outputShape: [Int]
    public let transA: Bool
    public let transB: Bool
    public let postOps: DNNLPostOps
    public let hasBias: Bool
    public let threadCount: Int
    /// oneDNN's implementation name, e.g. `gemm:jit`.
    public let implementation: String
    /// Whether the right operand was given at plan time (and reordered then).
    public let hasConstantB: Bool

    public var fusedReLU: Bool { postOps.epilogue.activation == .relu }

    private let engine: DNNLEngine
    private let a: DNNLMemory
    private let b: DNNLMemory?
    private let c: DNNLMemory
    private let bias: DNNLMemory?
    private let matmul: DNNLPrimitive
    private let keptB: Tensor?
    private let k: Int

    /// - Parameters:
    ///   - a: left operand `[..., M, K]` (`[..., K, M]` when `transA`).
    ///   - b: right operand `[..., K, N]` (`[..., N, K]` when `transB`).
    ///   - constantB: the right operand's values at plan time, or nil to bind it per run.
    ///   - bias: whether a bias row of N floats is bound per run.
    ///   - relu: shorthand for an epilogue of ReLU alone.
    public init(a aShape: [Int], b bShape: [Int], transA: Bool = false, transB: Bool = false,
                constantB: Tensor? = nil, bias: Bool = false, relu: Bool = false,
                postOps: DNNLPostOps? = nil, engine: DNNLEngine? = nil) throws {
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
        if let constantB, constantB.shape.reduce(1, *) != b.reduce(1, *) || constantB.elementType != .float {
            throw DNNLError.shapeMismatch("constant right operand \(constantB.shape) for \(bShape)")
        }
        self.engine = engine
        self.aShape = a
        self.bShape = b
        self.outputShape = out
        self.transA = transA
        self.transB = transB
        var postOps = postOps ?? DNNLPostOps()
        if relu { postOps.epilogue.activation = .relu }
        self.postOps = postOps
        self.hasBias = bias
        self.threadCount = ThreadPool.threadCount
        self.k = ka
        self.hasConstantB = constantB != nil

        // The logical [..., rows, cols] view of a stored operand, transposed by strides.
        func view(_ stored: [Int], transposed: Bool) throws -> dnnl_memory_desc_t {
            guard transposed else { return try plainDescriptor(stored) }
            var dims = stored, strides = rowMajorStrides(stored)
            dims.swapAt(rank - 1, rank - 2)
            strides.swapAt(rank - 1, rank - 2)
            return try stridedDescriptor(dims, strides: strides)
        }
        let aDesc = try view(a, transposed: transA)
        let bDesc = try view(b, transposed: transB)
        let cDesc = try plainDescriptor(out)
        let biasDesc = try plainDescriptor(Array(repeating: 1, count: rank - 1) + [n])
        var bLogical = b
        if transB { bLogical.swapAt(rank - 1, rank - 2) }

        var opDesc = dnnl_matmul_desc_t()
        var aCopy = aDesc, cCopy = cDesc, biasCopy = biasDesc
        var bAny = constantB != nil ? try descriptor(bLogical, tag: dnnl_format_tag_any) : bDesc
        try withUnsafeMutablePointer(to: &biasCopy) { biasPointer in
            try dnnlCheck(dnnl_matmul_desc_init(&opDesc, &aCopy, &bAny, bias ? biasPointer : nil, &cCopy),
                          "dnnl_matmul_desc_init")
        }
        let pd = try withUnsafePointer(to: &opDesc) {
            try makePrimitiveDescriptor($0, postOps: postOps, engine: engine, what: "matmul")
        }
        defer { dnnl_primitive_desc_destroy(pd) }

        self.a = try DNNLMemory(unbound: aDesc, engine: engine)
        c = try DNNLMemory(unbound: cDesc, engine: engine)
        var arguments: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, self.a), (DNNL_ARG_DST, c)]
        if let constantB {
            let chosen = try queryDescriptor(pd, dnnl_query_weights_md)
            let user = try DNNLMemory(unbound: bDesc, engine: engine)
            try user.bind(constantB.rawPointer)
            if descriptorsEqual(chosen, bDesc) {
                keptB = constantB
                arguments.append((DNNL_ARG_WEIGHTS, user))
            } else {
                let owned = try DNNLMemory(owning: chosen, engine: engine)
                try makeReorder(from: user, to: owned, engine: engine).execute(on: engine)
                try engine.wait()
                // The plan holds its own copy now; the file's pages need not stay resident.
                constantB.releaseResidentPages()
                keptB = nil
                arguments.append((DNNL_ARG_WEIGHTS, owned))
            }
            self.b = nil
        } else {
            let user = try DNNLMemory(unbound: bDesc, engine: engine)
            arguments.append((DNNL_ARG_WEIGHTS, user))
            self.b = user
            keptB = nil
        }
        if bias {
            let memory = try DNNLMemory(unbound: biasDesc, engine: engine)
            arguments.append((DNNL_ARG_BIAS, memory))
            self.bias = memory
        } else {
            self.bias = nil
        }
        if let scratchpad = try scratchpadMemory(pd, engine: engine) {
            arguments.append((DNNL_ARG_SCRATCHPAD, scratchpad))
        }
        matmul = try DNNLPrimitive(descriptor: pd, arguments: arguments)
        implementation = matmul.implementation
    }

    /// Multiply-adds of one run: batch * M * N * K.
    public var macs: Int { outputShape.reduce(1, *) * k }

    /// Computes `output = a x b` (with the fused epilogue) and waits. The operands are
    /// checked by element count (any shape with the plan's element count is the same
    /// memory). No allocation.
    public func run(a aTensor: Tensor, b bTensor: Tensor?, bias biasTensor: Tensor? = nil, output: Tensor) throws {
        guard aTensor.elementCount == aShape.reduce(1, *), output.elementCount == outputShape.reduce(1, *),
              aTensor.elementType == .float, output.elementType == .float,
              b == nil || (bTensor?.elementCount == bShape.reduce(1, *) && bTensor?.elementType == .float),
              bias == nil || (biasTensor?.elementCount == outputShape[outputShape.count - 1]
                              && biasTensor?.elementType == .float)
        else {
            throw DNNLError.shapeMismatch("MatMulPlan for \(aShape) x \(bShape) -> \(outputShape) run with "
                                          + "\(aTensor.shape) x \(bTensor?.shape ?? []) -> \(output.shape)")
        }
        try a.bind(aTensor.rawPointer)
        if let b, let bTensor { try b.bind(bTensor.rawPointer) }
        if let bias, let biasTensor { try bias.bind(biasTensor.rawPointer) }
        try c.bind(output.rawPointer)
        try matmul.execute(on: engine)
        try engine.wait()
    }

    /// `run` for a plan with a constant right operand and no bias.
    public func run(a aTensor: Tensor, output: Tensor) throws {
        try run(a: aTensor, b: nil, output: output)
    }
}
