import CDNNL

/// An fp32 matrix product on oneDNN, planned once and run many times: `[M, K] x [K, N]`
/// or batched `[B, M, K] x [B, K, N]`, where either operand may be 2-D or have batch 1
/// (broadcast over the other's batch). Optional fused ReLU.
///
/// Layouts stay plain row-major: both operands arrive at run time (MatMul's right side
/// is often an activation, e.g. attention), and oneDNN's matmul reads plain layouts at
/// full speed, so there is nothing to gain from a blocked copy here. A constant-weights
/// variant (Gemm, MatMul against an initializer) can later ask for `format_tag_any`
/// weights and reorder them once, as `ConvPlan` does.
public final class MatMulPlan: @unchecked Sendable {
    public let aShape: [Int]
    public let bShape: [Int]
    public let outputShape: [Int]
    public let fusedReLU: Bool
    /// oneDNN's implementation name, e.g. `brg:avx512_core`.
    public let implementation: String

    private let engine: DNNLEngine
    private let a: DNNLMemory
    private let b: DNNLMemory
    private let c: DNNLMemory
    private let matmul: DNNLPrimitive

    /// - Parameters:
    ///   - a: shape of the left operand, `[M, K]` or `[B, M, K]`.
    ///   - b: shape of the right operand, `[K, N]` or `[B, K, N]`.
    public init(a aShape: [Int], b bShape: [Int], relu: Bool = false, engine: DNNLEngine? = nil) throws {
        let engine = try engine ?? DNNLEngine.shared()
        guard (2...3).contains(aShape.count), (2...3).contains(bShape.count),
              aShape.allSatisfy({ $0 >= 1 }), bShape.allSatisfy({ $0 >= 1 }),
              let outputShape = ReferenceKernels.matMulShape(aShape, bShape)
        else {
            throw DNNLError.shapeMismatch("MatMulPlan takes 2-D or 3-D operands that fit, got \(aShape) x \(bShape)")
        }
        self.engine = engine
        self.aShape = aShape
        self.bShape = bShape
        self.outputShape = outputShape
        self.fusedReLU = relu

        // oneDNN wants both operands and the result at the same rank; a 2-D operand next
        // to a 3-D one is the same memory seen as batch 1, which oneDNN broadcasts.
        let rank = max(aShape.count, bShape.count)
        func lifted(_ shape: [Int]) -> [Int] { Array(repeating: 1, count: rank - shape.count) + shape }
        let aDesc = try plainDescriptor(lifted(aShape))
        let bDesc = try plainDescriptor(lifted(bShape))
        let cDesc = try plainDescriptor(outputShape)

        var opDesc = dnnl_matmul_desc_t()
        var aCopy = aDesc, bCopy = bDesc, cCopy = cDesc
        try dnnlCheck(dnnl_matmul_desc_init(&opDesc, &aCopy, &bCopy, nil, &cCopy), "dnnl_matmul_desc_init")

        let pd = try withUnsafePointer(to: &opDesc) {
            try makePrimitiveDescriptor($0, relu: relu, engine: engine, what: "matmul")
        }
        defer { dnnl_primitive_desc_destroy(pd) }

        a = try DNNLMemory(unbound: aDesc, engine: engine)
        b = try DNNLMemory(unbound: bDesc, engine: engine)
        c = try DNNLMemory(unbound: cDesc, engine: engine)
        var arguments: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, a), (DNNL_ARG_WEIGHTS, b), (DNNL_ARG_DST, c)]
        if let scratchpad = try scratchpadMemory(pd, engine: engine) {
            arguments.append((DNNL_ARG_SCRATCHPAD, scratchpad))
        }
        matmul = try DNNLPrimitive(descriptor: pd, arguments: arguments)
        implementation = matmul.implementation
    }

    /// Multiply-adds of one run: batch * M * N * K.
    public var macs: Int { outputShape.reduce(1, *) * aShape[aShape.count - 1] }

    /// Computes `output = a x b` (then ReLU if fused) and waits. No allocation.
    public func run(a aTensor: Tensor, b bTensor: Tensor, output: Tensor) throws {
        guard aTensor.shape == aShape, bTensor.shape == bShape, output.shape == outputShape,
              aTensor.elementType == .float, bTensor.elementType == .float, output.elementType == .float
        else {
            throw DNNLError.shapeMismatch("MatMulPlan for \(aShape) x \(bShape) -> \(outputShape) run with "
                                          + "\(aTensor.shape) x \(bTensor.shape) -> \(output.shape)")
        }
        try a.bind(aTensor.rawPointer)
        try b.bind(bTensor.rawPointer)
        try c.bind(output.rawPointer)
        try matmul.execute(on: engine)
        try engine.wait()
    }
}
