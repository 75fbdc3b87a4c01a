import CDNNL

/// A u8 x s8 -> s32 matrix product `[M, K] x [K, N] -> [M, N]` on oneDNN, with no zero
/// points or scales: the integer GEMM that int8 inference runtimes build on. The host
/// measurement uses it for the int8 roof (the executor's own MatMulInteger runs on
/// `ExactIntegerGemm`). The weights are reordered once into oneDNN's chosen layout.
///
/// Without VNNI (AVX2), oneDNN forms pairs of u8 x s8 products in int16 with saturation,
/// so results are exact only while a pair's sum fits in int16; the rate does not depend
/// on that.
final class Int8MatMulPlan {
    let m: Int, k: Int, n: Int
    /// oneDNN's implementation name, e.g. `gemm:jit`; `ref` ones are the slow reference.
    let implementation: String

    private let engine: DNNLEngine
    private let a: DNNLMemory
    private let c: DNNLMemory
    private let weights: DNNLMemory
    private let matmul: DNNLPrimitive

    /// - Parameter weights: `K * N` signed bytes, row-major `[K, N]`.
    init(m: Int, k: Int, n: Int, weights: UnsafeRawPointer, engine: DNNLEngine? = nil) throws {
        guard m >= 1, k >= 1, n >= 1 else { throw DNNLError.shapeMismatch("int8 matmul of \(m)x\(k) x \(k)x\(n)") }
        let engine = try engine ?? DNNLEngine.shared()
        self.engine = engine
        (self.m, self.k, self.n) = (m, k, n)

        var aDesc = try Self.descriptor([m, k], dnnl_u8, dnnl_ab)
        var bAny = try Self.descriptor([k, n], dnnl_s8, dnnl_format_tag_any)
        var cDesc = try Self.descriptor([m, n], dnnl_s32, dnnl_ab)
        var opDesc = dnnl_matmul_desc_t()
        try dnnlCheck(dnnl_matmul_desc_init(&opDesc, &aDesc, &bAny, nil, &cDesc), "dnnl_matmul_desc_init(u8s8s32)")
        let pd = try withUnsafePointer(to: &opDesc) {
            try makePrimitiveDescriptor($0, postOps: .none, engine: engine, what: "int8 matmul")
        }
        defer { dnnl_primitive_desc_destroy(pd) }

        let user = try DNNLMemory(unbound: try Self.descriptor([k, n], dnnl_s8, dnnl_ab), engine: engine)
        try user.bind(UnsafeMutableRawPointer(mutating: weights))
        let chosen = try queryDescriptor(pd, dnnl_query_weights_md)
        let owned = try DNNLMemory.reordered(from: user, into: chosen, engine: engine)
        try engine.wait()
        self.weights = owned

        a = try DNNLMemory(unbound: aDesc, engine: engine)
        c = try DNNLMemory(unbound: cDesc, engine: engine)
        var arguments: [(Int32, DNNLMemory)] = [(DNNL_ARG_SRC, a), (DNNL_ARG_WEIGHTS, owned), (DNNL_ARG_DST, c)]
        if let scratchpad = try scratchpadMemory(pd, engine: engine) {
            arguments.append((DNNL_ARG_SCRATCHPAD, scratchpad))
        }
        matmul = try DNNLPrimitive(descriptor: pd, arguments: arguments)
        implementation = matmul.implementation
    }

    /// Multiply-adds of one run.
    var macs: Int { m * n * k }

    /// `c = a x b`: `a` holds `M * K` unsigned bytes, `c` room for `M * N` Int32. Waits.
    func run(a source: UnsafeRawPointer, c destination: UnsafeMutableRawPointer) throws {
        try engine.exclusive {
            try a.bind(UnsafeMutableRawPointer(mutating: source))
            try c.bind(destination)
            try matmul.execute(on: engine)
            try engine.wait()
        }
    }

    /// A memory descriptor of `dims` with element type `type` in layout `tag`.
    private static func descriptor(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) throws
        -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let dims64 = dims.map { dnnl_dim_t($0) } + Array(repeating: 0, count: Int(DNNL_MAX_NDIMS) - dims.count)
        try dnnlCheck(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims64, type, tag),
                      "dnnl_memory_desc_init_by_tag(\(dims))")
        return md
    }
}
