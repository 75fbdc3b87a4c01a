import CDNNL
import Foundation
import VernierGraph

/// Why a oneDNN call or a plan failed.
public enum DNNLError: Error, Equatable, CustomStringConvertible {
    /// A oneDNN C call returned a status other than `dnnl_success`; `status` is the
    /// `dnnl_status_t` name, e.g. `dnnl_unimplemented`.
    case call(function: String, status: String)
    /// The operands do not fit the op (or the plan); nothing was run.
    case shapeMismatch(String)
    /// A oneDNN query returned nothing where a value was required.
    case missing(String)

    public var description: String {
        switch self {
        case let .call(function, status): return "oneDNN: \(function) failed with \(status)"
        case let .shapeMismatch(message): return "oneDNN: shape mismatch: \(message)"
        case let .missing(message): return "oneDNN: \(message)"
        }
    }
}

/// Throws `DNNLError.call` unless `status` is `dnnl_success`.
@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ function: @autoclosure () -> String) throws {
    guard status != dnnl_success else { return }
    throw DNNLError.call(function: function(), status: dnnlStatusName(status))
}

/// `dnnl_status_t` as its C enumerator name (`dnnl_` + `dnnl_status2str`).
func dnnlStatusName(_ status: dnnl_status_t) -> String {
    guard let text = dnnl_status2str(status) else { return "dnnl_status_t(\(status.rawValue))" }
    return "dnnl_" + String(cString: text)
}

/// The oneDNN CPU engine and one in-order stream on it. One engine per process is
/// enough (`shared`); a stream must not be used from two threads at once, so an executor
/// running nodes concurrently would make one `DNNLEngine` per thread.
public final class DNNLEngine: @unchecked Sendable {
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t

    public init() throws {
        var engine: dnnl_engine_t?
        try dnnlCheck(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        guard let engine else { throw DNNLError.missing("dnnl_engine_create returned no engine") }
        var stream: dnnl_stream_t?
        let status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue)
        guard status == dnnl_success, let stream else {
            dnnl_engine_destroy(engine)
            throw DNNLError.call(function: "dnnl_stream_create", status: dnnlStatusName(status))
        }
        self.engine = engine
        self.stream = stream
    }

    deinit {
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    private static let sharedResult = Result { try DNNLEngine() }

    /// The process-wide engine, created on first use.
    public static func shared() throws -> DNNLEngine { try sharedResult.get() }

    /// oneDNN's version as `major.minor.patch`.
    public static var version: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    private var scratchpadBuffer: TensorBuffer?
    private let lock = NSRecursiveLock()

    /// Runs `body` while no other thread uses the engine. The stream and the shared
    /// scratchpad serve one primitive at a time, and a plan binds its memories before
    /// submitting, so a plan's whole run (bind, execute, wait) holds the engine; two
    /// threads running plans at once (test suites do) would otherwise overwrite each
    /// other's scratchpad. Uncontended, it costs tens of nanoseconds per kernel.
    func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The shared scratchpad, grown to at least `bytes` (only between runs of primitives:
    /// a primitive rebinds it before each run, so growing never leaves one dangling).
    func sharedScratchpad(bytes: Int) -> UnsafeMutableRawPointer {
        if let buffer = scratchpadBuffer, buffer.byteCount >= bytes { return buffer.baseAddress }
        // Nothing submitted earlier may still use the old buffer.
        _ = dnnl_stream_wait(stream)
        let buffer = TensorBuffer(byteCount: bytes)
        scratchpadBuffer = buffer
        return buffer.baseAddress
    }

    /// Blocks until everything submitted to the stream has finished.
    func wait() throws { try exclusive { try dnnlCheck(dnnl_stream_wait(stream), "dnnl_stream_wait") } }
}

// MARK: - Small owners of oneDNN handles, used by the plans

/// A plain (row-major) memory descriptor of `dims` (fp32 unless `type` says otherwise).
func plainDescriptor(_ dims: [Int], tag: dnnl_format_tag_t? = nil, type: dnnl_data_type_t = dnnl_f32) throws
    -> dnnl_memory_desc_t {
    try descriptor(dims, tag: tag ?? plainTag(rank: dims.count), type: type)
}

/// A memory descriptor of `dims` in layout `tag` (may be `dnnl_format_tag_any`), fp32
/// unless `type` says otherwise.
func descriptor(_ dims: [Int], tag: dnnl_format_tag_t, type: dnnl_data_type_t = dnnl_f32) throws -> dnnl_memory_desc_t {
    guard dims.count >= 1, dims.count <= Int(DNNL_MAX_NDIMS) else {
        throw DNNLError.shapeMismatch("rank \(dims.count) is outside 1...\(DNNL_MAX_NDIMS)")
    }
    var md = dnnl_memory_desc_t()
    let dims64 = dims.map { dnnl_dim_t($0) } + Array(repeating: 0, count: Int(DNNL_MAX_NDIMS) - dims.count)
    try dnnlCheck(dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), dims64, type, tag),
                  "dnnl_memory_desc_init_by_tag(\(dims))")
    return md
}

/// `dnnl_a`, `dnnl_ab`, ... for a rank: the row-major layout.
/// A descriptor of `dims` in `layout` (channel-blocked layouts are 4-D only), fp32
/// unless `type` says otherwise.
func layoutDescriptor(_ dims: [Int], _ layout: TensorLayout, type: dnnl_data_type_t = dnnl_f32) throws
    -> dnnl_memory_desc_t {
    switch layout {
    case .plain:
        return try plainDescriptor(dims, type: type)
    case .channelBlocked(let block):
        // oneDNN pads C to whole blocks itself, as `TensorLayout.storageShape` does.
        guard dims.count == 4, block == 8 || block == 16 else {
            throw DNNLError.shapeMismatch("no \(layout) layout for shape \(dims)")
        }
        return try descriptor(dims, tag: block == 8 ? dnnl_nChw8c : dnnl_nChw16c, type: type)
    case .channelsLast:
        let tags: [Int: dnnl_format_tag_t] = [3: dnnl_acb, 4: dnnl_acdb, 5: dnnl_acdeb]
        guard let tag = tags[dims.count] else { throw DNNLError.shapeMismatch("no channels-last layout for shape \(dims)") }
        return try descriptor(dims, tag: tag, type: type)
    }
}

/// The channel block oneDNN's convolutions use on this CPU: 16 with AVX-512, else 8.
public let preferredChannelBlock: Int = {
    let isa = dnnl_get_effective_cpu_isa()
    let avx512: [dnnl_cpu_isa_t] = [dnnl_cpu_isa_avx512_core, dnnl_cpu_isa_avx512_core_vnni,
                                    dnnl_cpu_isa_avx512_core_bf16, dnnl_cpu_isa_avx512_core_amx]
    return avx512.contains(isa) ? 16 : 8
}()

func plainTag(rank: Int) -> dnnl_format_tag_t {
    switch rank {
    case 1: return dnnl_a
    case 2: return dnnl_ab
    case 3: return dnnl_abc
    case 4: return dnnl_abcd
    case 5: return dnnl_abcde
    case 6: return dnnl_abcdef
    case 7: return dnnl_abcdefg
    case 8: return dnnl_abcdefgh
    case 9: return dnnl_abcdefghi
    case 10: return dnnl_abcdefghij
    case 11: return dnnl_abcdefghijk
    default: return dnnl_abcdefghijkl
    }
}

/// A memory descriptor of `dims` with explicit element strides (a transposed view, or
/// ConvTranspose's `[C, M/group, k...]` weights seen as oneDNN's `[G, O, I, k...]`), fp32
/// unless `type` says otherwise.
func stridedDescriptor(_ dims: [Int], strides: [Int], type: dnnl_data_type_t = dnnl_f32) throws -> dnnl_memory_desc_t {
    guard dims.count >= 1, dims.count <= Int(DNNL_MAX_NDIMS), strides.count == dims.count else {
        throw DNNLError.shapeMismatch("rank \(dims.count) is outside 1...\(DNNL_MAX_NDIMS)")
    }
    var md = dnnl_memory_desc_t()
    let pad = Array(repeating: dnnl_dim_t(0), count: Int(DNNL_MAX_NDIMS) - dims.count)
    let dims64 = dims.map { dnnl_dim_t($0) } + pad
    let strides64 = strides.map { dnnl_dim_t($0) } + pad
    try dnnlCheck(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims64, type, strides64),
                  "dnnl_memory_desc_init_by_strides(\(dims), \(strides))")
    return md
}

/// Row-major element strides of `dims`.
func rowMajorStrides(_ dims: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: dims.count)
    var step = 1
    for axis in stride(from: dims.count - 1, through: 0, by: -1) {
        strides[axis] = step
        step *= max(dims[axis], 1)
    }
    return strides
}

/// Owns a `dnnl_memory_t` and, when the memory is internal to a plan, the buffer behind
/// it. Edge memories have no buffer: their data handle is set to the caller's tensor on
/// each run.
final class DNNLMemory {
    let handle: dnnl_memory_t
    let desc: dnnl_memory_desc_t
    let buffer: TensorBuffer?

    /// Memory over a buffer of its own, sized by oneDNN for `desc` (any layout, padding
    /// included), zero-filled unless `prefill` names another byte.
    init(owning desc: dnnl_memory_desc_t, engine: DNNLEngine, prefill: UInt8? = 0) throws {
        var desc = desc
        let size = dnnl_memory_desc_get_size(&desc)
        let buffer = TensorBuffer(uninitializedByteCount: size)
        if let prefill { buffer.baseAddress.initializeMemory(as: UInt8.self, repeating: prefill, count: max(size, 1)) }
        var handle: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&handle, &desc, engine.engine, buffer.baseAddress),
                      "dnnl_memory_create")
        guard let handle else { throw DNNLError.missing("dnnl_memory_create returned no memory") }
        self.handle = handle
        self.desc = desc
        self.buffer = buffer
    }

    /// Memory of its own in layout `desc`, holding `source` reordered into it (weights
    /// packed once, at plan time). Not zero-filled first: the reorder writes every byte,
    /// padding included (oneDNN zero-pads a reorder's output), and a first pass over
    /// fresh pages costs about as much as the reorder. `prefill` exists for the test
    /// that holds oneDNN to that.
    static func reordered(from source: DNNLMemory, into desc: dnnl_memory_desc_t, engine: DNNLEngine,
                          prefill: UInt8? = nil) throws -> DNNLMemory {
        let owned = try DNNLMemory(owning: desc, engine: engine, prefill: prefill)
        try makeReorder(from: source, to: owned, engine: engine).execute(on: engine)
        return owned
    }

    /// Memory with no buffer yet (`DNNL_MEMORY_NONE`); bind one with `bind(_:)`.
    init(unbound desc: dnnl_memory_desc_t, engine: DNNLEngine) throws {
        var desc = desc
        var handle: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&handle, &desc, engine.engine, nil), "dnnl_memory_create")
        guard let handle else { throw DNNLError.missing("dnnl_memory_create returned no memory") }
        self.handle = handle
        self.desc = desc
        self.buffer = nil
    }

    /// Points the memory at `pointer` (no allocation, no copy).
    @inline(__always)
    func bind(_ pointer: UnsafeMutableRawPointer) throws {
        try dnnlCheck(dnnl_memory_set_data_handle(handle, pointer), "dnnl_memory_set_data_handle")
    }

    var byteCount: Int {
        var desc = desc
        return dnnl_memory_desc_get_size(&desc)
    }

    deinit { dnnl_memory_destroy(handle) }
}

/// Owns a `dnnl_primitive_t` and the argument list it runs with.
final class DNNLPrimitive {
    let handle: dnnl_primitive_t
    private let arguments: [dnnl_exec_arg_t]
    /// The memories the arguments point to, kept alive as long as the primitive.
    private let memories: [DNNLMemory]
    /// oneDNN's name for the implementation it chose, e.g. `jit:avx512_core`.
    let implementation: String
    /// An unbound scratchpad argument, pointed at the engine's shared scratchpad on
    /// each run.
    private let scratchpad: DNNLMemory?

    /// Creates the primitive from a primitive descriptor (which stays owned by the caller).
    init(descriptor pd: dnnl_primitive_desc_t, arguments: [(Int32, DNNLMemory)]) throws {
        var handle: dnnl_primitive_t?
        try dnnlCheck(dnnl_primitive_create(&handle, pd), "dnnl_primitive_create")
        guard let handle else { throw DNNLError.missing("dnnl_primitive_create returned no primitive") }
        self.handle = handle
        self.arguments = arguments.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1.handle) }
        self.memories = arguments.map { $0.1 }
        scratchpad = arguments.first { $0.0 == DNNL_ARG_SCRATCHPAD && $0.1.buffer == nil }?.1
        implementation = implementationName(pd)
    }

    /// Submits the primitive to the stream (no allocation).
    @inline(__always)
    func execute(on engine: DNNLEngine) throws {
        try engine.exclusive {
            if let scratchpad { try scratchpad.bind(engine.sharedScratchpad(bytes: scratchpad.byteCount)) }
            let status = arguments.withUnsafeBufferPointer {
                dnnl_primitive_execute(handle, engine.stream, Int32($0.count), $0.baseAddress)
            }
            try dnnlCheck(status, "dnnl_primitive_execute")
        }
    }

    deinit { dnnl_primitive_destroy(handle) }
}

/// A reorder primitive from `source` to `destination` (layout conversion, or a copy
/// when the layouts are equal).
func makeReorder(from source: DNNLMemory, to destination: DNNLMemory,
                 engine: DNNLEngine) throws -> DNNLPrimitive {
    var pd: dnnl_primitive_desc_t?
    var src = source.desc, dst = destination.desc
    try dnnlCheck(dnnl_reorder_primitive_desc_create(&pd, &src, engine.engine, &dst, engine.engine, nil),
                  "dnnl_reorder_primitive_desc_create")
    guard let pd else { throw DNNLError.missing("no reorder primitive descriptor") }
    defer { dnnl_primitive_desc_destroy(pd) }
    return try DNNLPrimitive(descriptor: pd, arguments: [(DNNL_ARG_FROM, source), (DNNL_ARG_TO, destination)])
}

/// What a primitive does after its product, in oneDNN attribute terms: the fused
/// epilogue, whether its destination already holds an addend to sum into
/// (`sumScale * dst + result`), and an output scale applied to the product first.
public struct DNNLPostOps: Sendable, Hashable {
    public var epilogue: FusedEpilogue
    /// Whether to add the destination's prior contents (the plan writes them first).
    public var sum: Bool
    public var sumScale: Float
    /// Multiplies the product before the post-ops (Gemm's alpha); 1 means none.
    public var outputScale: Float
    /// What an int8 primitive adds around the fp32 epilogue; nil for fp32 primitives.
    public var requantization: Requantization?

    /// The int8 arithmetic of a QLinearConv-style primitive: the integer product is
    /// `(x - sourceZeroPoint) * w + bias`, scaled per output channel by `productScales`
    /// (x_scale * w_scale[oc]) into real values, passed through the epilogue, then
    /// mapped to the output's integers as `round(y / outputScale) + outputZeroPoint`,
    /// saturated to the output type by oneDNN's conversion (scale 1 and zero point 0 for
    /// an fp32 output: the real values themselves).
    public struct Requantization: Sendable, Hashable {
        public var sourceZeroPoint: Int32
        /// One scale, or one per output channel.
        public var productScales: [Float]
        public var outputScale: Float
        public var outputZeroPoint: Int32

        public init(sourceZeroPoint: Int32, productScales: [Float], outputScale: Float, outputZeroPoint: Int32) {
            self.sourceZeroPoint = sourceZeroPoint
            self.productScales = productScales
            self.outputScale = outputScale
            self.outputZeroPoint = outputZeroPoint
        }
    }

    public init(epilogue: FusedEpilogue = .none, sum: Bool = false, sumScale: Float = 1, outputScale: Float = 1,
                requantization: Requantization? = nil) {
        self.epilogue = epilogue
        self.sum = sum
        self.sumScale = sumScale
        self.outputScale = outputScale
        self.requantization = requantization
    }

    public static let none = DNNLPostOps()
}

/// What makes a convolution or matrix product int8: the activations' integer types and
/// the requantization around the integer product. Weights are s8 with zero point 0; a
/// bias (convolutions only) is in the product's units (x_scale * w_scale), as
/// QLinearConv has it, stored as fp32.
public struct Int8Operands: Sendable {
    /// `.uint8` or `.int8`.
    public var sourceType: ElementType
    public var destinationType: ElementType
    public var requantization: DNNLPostOps.Requantization

    public init(sourceType: ElementType, destinationType: ElementType, requantization: DNNLPostOps.Requantization) {
        self.sourceType = sourceType
        self.destinationType = destinationType
        self.requantization = requantization
    }

    /// Throws unless the source is u8 or s8 and the destination u8, s8 or fp32.
    func validate(_ what: String) throws {
        let integers: Set<ElementType> = [.uint8, .int8]
        guard integers.contains(sourceType), integers.contains(destinationType) || destinationType == .float else {
            throw DNNLError.shapeMismatch("int8 \(what) of \(sourceType) -> \(destinationType) (u8 / s8 to u8, s8 or fp32)")
        }
    }
}

/// oneDNN's data type for the element types its plans take.
func dnnlType(_ type: ElementType) throws -> dnnl_data_type_t {
    switch type {
    case .float: return dnnl_f32
    case .uint8: return dnnl_u8
    case .int8: return dnnl_s8
    case .int32: return dnnl_s32
    default: throw DNNLError.shapeMismatch("no oneDNN data type for \(type)")
    }
}

/// Primitive attributes: scratchpad owned by the plan (so runs never allocate), the
/// output scale and the post-ops. The caller destroys the result.
func makeAttributes(_ postOps: DNNLPostOps) throws -> dnnl_primitive_attr_t {
    var attr: dnnl_primitive_attr_t?
    try dnnlCheck(dnnl_primitive_attr_create(&attr), "dnnl_primitive_attr_create")
    guard let attr else { throw DNNLError.missing("dnnl_primitive_attr_create returned nothing") }
    do {
        try dnnlCheck(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                      "dnnl_primitive_attr_set_scratchpad_mode")
        if let requantization = postOps.requantization {
            var scales = requantization.productScales
            // Mask bit 1: one scale per index of dimension 1, the output channel.
            try dnnlCheck(dnnl_primitive_attr_set_output_scales(attr, Int64(scales.count), scales.count == 1 ? 0 : 1 << 1,
                                                                &scales),
                          "dnnl_primitive_attr_set_output_scales(\(scales.count))")
            if requantization.sourceZeroPoint != 0 {
                var zero = requantization.sourceZeroPoint
                try dnnlCheck(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &zero),
                              "dnnl_primitive_attr_set_zero_points(source)")
            }
        } else if postOps.outputScale != 1 {
            var scale = postOps.outputScale
            try dnnlCheck(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale),
                          "dnnl_primitive_attr_set_output_scales")
        }
        if postOps.sum || postOps.epilogue.activation != nil || postOps.requantization != nil {
            var ops: dnnl_post_ops_t?
            try dnnlCheck(dnnl_post_ops_create(&ops), "dnnl_post_ops_create")
            guard let ops else { throw DNNLError.missing("dnnl_post_ops_create returned nothing") }
            defer { dnnl_post_ops_destroy(ops) }
            try postOps.epilogue.appendPostOps(to: ops, sum: postOps.sum, sumScale: postOps.sumScale)
            if let requantization = postOps.requantization,
               requantization.outputScale != 1 || requantization.outputZeroPoint != 0 {
                // Real values to the output's integers; the conversion to u8 / s8 rounds
                // to nearest even (QuantizeLinear's rounding) and saturates.
                try dnnlCheck(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_linear, 1 / requantization.outputScale,
                                                           Float(requantization.outputZeroPoint)),
                              "dnnl_post_ops_append_eltwise(requantize)")
            }
            try dnnlCheck(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops")
        }
    } catch {
        dnnl_primitive_attr_destroy(attr)
        throw error
    }
    return attr
}

/// The memory descriptor a primitive descriptor chose for `what` (a copy).
func queryDescriptor(_ pd: dnnl_primitive_desc_t, _ what: dnnl_query_t) throws -> dnnl_memory_desc_t {
    guard let md = dnnl_primitive_desc_query_md(pd, what, 0) else {
        throw DNNLError.missing("dnnl_primitive_desc_query_md(\(what.rawValue)) returned NULL")
    }
    return md.pointee
}

func descriptorsEqual(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
    var a = a, b = b
    return dnnl_memory_desc_equal(&a, &b) != 0
}

/// Plan-owned scratchpad memory for a primitive descriptor made with
/// `dnnl_scratchpad_mode_user`, or nil when the primitive needs none.
///
/// The memory is unbound: `DNNLPrimitive.execute` points it at the engine's one shared
/// scratchpad, sized for the largest primitive. Primitives run one at a time on the
/// stream, so one buffer serves them all (a scratchpad per plan cost ResNet-50 tens of MB).
func scratchpadMemory(_ pd: dnnl_primitive_desc_t, engine: DNNLEngine) throws -> DNNLMemory? {
    var desc = try queryDescriptor(pd, dnnl_query_scratchpad_md)
    guard dnnl_memory_desc_get_size(&desc) > 0 else { return nil }
    return try DNNLMemory(unbound: desc, engine: engine)
}

/// Creates the primitive descriptor for an initialised op descriptor, with its output
/// scale and post-ops: oneDNN's first implementation for it, except that names starting
/// with one of `avoiding` are passed over while another implementation remains. The
/// caller destroys it.
func makePrimitiveDescriptor(_ opDesc: UnsafeRawPointer, postOps: DNNLPostOps, engine: DNNLEngine,
                             what: String, avoiding: [String] = []) throws -> dnnl_primitive_desc_t {
    let attributes = try makeAttributes(postOps)
    defer { dnnl_primitive_attr_destroy(attributes) }
    var iteratorHandle: dnnl_primitive_desc_iterator_t?
    try dnnlCheck(dnnl_primitive_desc_iterator_create(&iteratorHandle, opDesc, attributes, engine.engine, nil),
                  "dnnl_primitive_desc_create(\(what))")
    guard let iterator = iteratorHandle else { throw DNNLError.missing("no \(what) primitive descriptor") }
    defer { dnnl_primitive_desc_iterator_destroy(iterator) }
    var firstChoice: dnnl_primitive_desc_t?
    repeat {
        guard let pd = dnnl_primitive_desc_iterator_fetch(iterator) else { break }
        let name = implementationName(pd)
        guard avoiding.contains(where: { name.hasPrefix($0) }) else {
            if let firstChoice { dnnl_primitive_desc_destroy(firstChoice) }
            return pd
        }
        if firstChoice == nil { firstChoice = pd } else { dnnl_primitive_desc_destroy(pd) }
    } while dnnl_primitive_desc_iterator_next(iterator) == dnnl_success
    guard let firstChoice else { throw DNNLError.missing("no \(what) primitive descriptor") }
    return firstChoice
}

/// oneDNN's name for the implementation behind a primitive descriptor, such as
/// "jit_1x1:avx512_core" ("unknown" if it does not say).
func implementationName(_ pd: const_dnnl_primitive_desc_t) -> String {
    var info: UnsafePointer<CChar>?
    guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) == dnnl_success, let info else {
        return "unknown"
    }
    return String(cString: info)
}

/// One edge between a caller's plain tensor and a primitive: when the primitive chose
/// another layout, a buffer in that layout and the reorder that fills it (or empties it,
/// for outputs); otherwise the caller's memory is used directly.
struct DNNLEdge {
    /// The memory the primitive reads or writes.
    let primitiveSide: DNNLMemory
    let reorder: DNNLPrimitive?
    /// Bytes the edge owns (the blocked copy).
    let ownedBytes: Int

    init(user: DNNLMemory, primitiveLayout: dnnl_memory_desc_t, isOutput: Bool, engine: DNNLEngine) throws {
        if descriptorsEqual(primitiveLayout, user.desc) {
            primitiveSide = user
            reorder = nil
            ownedBytes = 0
            return
        }
        let blocked = try DNNLMemory(owning: primitiveLayout, engine: engine)
        reorder = isOutput ? try makeReorder(from: blocked, to: user, engine: engine)
                           : try makeReorder(from: user, to: blocked, engine: engine)
        primitiveSide = blocked
        ownedBytes = blocked.byteCount
    }
}

/// Runs plan-making or plan-running code and turns oneDNN's errors into the executor's:
/// shapes that do not fit are the model's fault (`invalid`), a oneDNN refusal (e.g.
/// `dnnl_unimplemented` for a geometry it has no kernel for) is ours (`unsupported`).
func asKernelErrors<T>(_ what: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as DNNLError {
        switch error {
        case .shapeMismatch(let message): throw KernelError.invalid("\(what()): \(message)")
        default: throw KernelError.unsupported("\(what()): \(error)")
        }
    }
}
