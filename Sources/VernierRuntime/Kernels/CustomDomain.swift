import CVernierSIMD
import VernierGraph

/// Kernels of the `com.microsoft` ops (same file name as their shape rules and cost
/// formulas): QLinearAdd, QLinearMul, QLinearSigmoid and QGemm, which ONNX Runtime's
/// quantizer writes in its QOperator format and which `GraphPasses.fuseQDQBinary`,
/// `fuseQDQUnary` and `fuseQDQGemm` make of QDQ Adds, Muls, Sigmoids and Gemms.
enum CustomDomainKernels {
    static let all: [String: KernelFactory] = [
        "QGemm": { ctx in
            if let int8 = try Int8MatMulKernel.makeGemm(ctx) { return int8 }
            return try QGemmReferenceKernel(ctx)
        },
        "QLinearAdd": { QLinearBinaryKernel($0, op: "QLinearAdd", multiplies: false) },
        "QLinearMul": { ctx in
            if ctx.node.hasAttribute(FusedAttributes.gate) { return try QLinearGateKernel(ctx) }
            return QLinearBinaryKernel(ctx, op: "QLinearMul", multiplies: true)
        },
        "QLinearSigmoid": { QLinearLookupKernel($0, op: "QLinearSigmoid", SigmoidOp()) },
    ]
}

/// Y = quantize(f(dequantize(X))) for an element-wise f, inputs (X, X_scale,
/// X_zero_point, Y_scale, Y_zero_point) of one 8-bit type, each scale and zero point one
/// value. An 8-bit X has 256 values, so the kernel computes f for each of them with the
/// fp32 steps of the QDQ graph (DequantizeLinear, f's own vector kernel, QuantizeLinear)
/// and looks every element up (`vernier_lookup_bytes`: 64 bytes per step with AVX-512
/// VBMI): bit for bit the graph's result, one byte-to-byte pass
/// instead of three passes over fp32 tensors (EfficientNet's SiLU gates). The table is
/// made at plan time when the scales and zero points are constants (as quantizers write
/// them), else on each run.
final class QLinearLookupKernel<F: FloatMap>: Kernel {
    let op: String
    let function: F
    /// The table for X's planned type, when every quantization parameter is a constant.
    let planned: (type: ElementType, table: [UInt8])?

    init(_ ctx: KernelContext, op: String, _ function: F) {
        (self.op, self.function) = (op, function)
        // An input the node names but that is not constant arrives only at run time.
        let known = (1...4).allSatisfy { i in i >= ctx.node.inputs.count || ctx.node.inputs[i].isEmpty || ctx.constant(i) != nil }
        if known, let type = ctx.inputTypes.first??.elementType,
           let table = try? Self.table(ctx.constantInputs, type: type, op: op, function: function) {
            planned = (type, table)
        } else {
            planned = nil
        }
    }

    /// table[byte] = quantize(f(dequantize(byte))) for the byte pattern of each 8-bit value.
    static func table(_ inputs: [Tensor?], type: ElementType, op: String, function: F) throws -> [UInt8] {
        guard type == .uint8 || type == .int8 else {
            throw KernelError.unsupported("\(op) of \(type) tensors (uint8 or int8)")
        }
        let qx = try ScalarQuantization(inputs, scale: 1, zeroPoint: 2, type: type, op: op, operand: "X")
        let qy = try ScalarQuantization(inputs, scale: 3, zeroPoint: 4, type: type, op: op, operand: "Y")
        let range = try quantizedRange(type, what: "\(op) output")
        let quantize = ByteQuantizer(scale: qy.scale, zeroPoint: qy.zeroPoint, low: Float(range.lowerBound), high: Float(range.upperBound))
        var table = [UInt8](repeating: 0, count: 256)
        for start in stride(from: 0, to: 256, by: 8) {
            var real = SIMD8<Float>()
            for lane in 0..<8 {
                let bits = UInt8(start + lane)
                real[lane] = type == .uint8 ? qx.real(bits) : qx.real(Int8(bitPattern: bits))
            }
            let mapped = function(real)
            for lane in 0..<8 { table[start + lane] = quantize(mapped[lane]) }
        }
        return table
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let table = try planned.flatMap { $0.type == x.elementType ? $0.table : nil }
            ?? Self.table(inputs, type: x.elementType, op: op, function: function)
        try lookUp(x, in: table, into: outputs)
    }
}

/// Output 0 of `outputs` as `table[x]` for every byte of `x` (an 8-bit tensor).
func lookUp(_ x: Tensor, in table: [UInt8], into outputs: OutputSlots) throws {
    let out = try outputs.allocate(0, x.elementType, x.shape)
    let source = UnsafePointer(x.rawPointer.assumingMemoryBound(to: UInt8.self))
    let target = out.rawPointer.assumingMemoryBound(to: UInt8.self)
    table.withUnsafeBufferPointer { lookup in
        guard let entries = lookup.baseAddress else { return }
        ThreadPool.parallelFor(x.elementCount, minimumPerThread: ElementLoops.grain) { range in
            vernier_lookup_bytes(source + range.lowerBound, target + range.lowerBound, range.count, entries)
        }
    }
}

/// `QLinearMul(x, xs, xz, x, ss, sz, ys, yz)` with `fused_gate` (`GraphPasses.fuseQLinearGate`):
/// `x * QLinearSigmoid(x, xs, xz, ss, sz)`, a quantized SiLU, or the same with the
/// quantized HardSigmoid of x (its `alpha` and `beta` on the node), a quantized
/// HardSwish. For each of the 256 values of x: the gate's table entry, then
/// QLinearMul's fp32 steps on x and that entry, so every element is bit for bit what
/// the two kernels give; then one look-up pass.
final class QLinearGateKernel: Kernel {
    /// The gate's fp32 function.
    enum Gate {
        case sigmoid
        case hardSigmoid(alpha: Float, beta: Float)
    }
    let gate: Gate
    /// The table for X's planned type, when every quantization parameter is a constant.
    let planned: (type: ElementType, table: [UInt8])?

    init(_ ctx: KernelContext) throws {
        switch try ctx.node.string(FusedAttributes.gate) {
        case "QLinearSigmoid": gate = .sigmoid
        case "HardSigmoid":
            gate = .hardSigmoid(alpha: try ctx.node.float("alpha", default: 0.2), beta: try ctx.node.float("beta", default: 0.5))
        case let other: throw KernelError.unsupported("a QLinearMul gated by \(other)")
        }
        if QLinearBinaryKernel.parametersAreConstant(ctx), let type = ctx.inputTypes.first??.elementType,
           let table = try? Self.table(ctx.constantInputs, type: type, gate: gate) {
            planned = (type, table)
        } else {
            planned = nil
        }
    }

    static func table(_ inputs: [Tensor?], type: ElementType, gate: Gate) throws -> [UInt8] {
        let op = "QLinearMul (fused_gate)"
        guard inputs.count >= 8 else { throw KernelError.invalid("\(op) takes 8 inputs, got \(inputs.count)") }
        let gateInputs = [inputs[0], inputs[1], inputs[2], inputs[4], inputs[5]]
        let gated: [UInt8]
        switch gate {
        case .sigmoid:
            gated = try QLinearLookupKernel.table(gateInputs, type: type, op: op, function: SigmoidOp())
        case .hardSigmoid(let alpha, let beta):
            gated = try QLinearLookupKernel.table(gateInputs, type: type, op: op, function: HardSigmoidOp(alpha: alpha, beta: beta))
        }
        // QLinearMul's own element path on each x and its gate entry.
        var products = inputs
        products[0] = QLinearBinaryKernel.allBytes(type)
        products[3] = Tensor(type, shape: [256], values: gated)
        return try QLinearBinaryKernel.elementPath(products, op: "QLinearMul", multiplies: true)
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let table = try planned.flatMap { $0.type == x.elementType ? $0.table : nil } ?? Self.table(inputs, type: x.elementType, gate: gate)
        try lookUp(x, in: table, into: outputs)
    }
}

/// The fp32 step of a QLinear binary op.
protocol QLinearOperation {
    static func apply(_ a: Float, _ b: Float) -> Float
}
struct QLinearSum: QLinearOperation {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
}
struct QLinearProduct: QLinearOperation {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
}

/// C = quantize(dequantize(A) op dequantize(B)) with NumPy broadcasting, inputs (A,
/// A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point), A, B and C
/// of one 8-bit type, each scale and zero point one value. Each element takes the fp32
/// steps DequantizeLinear, Add (Mul) and QuantizeLinear take, in their order, so the
/// result is bit for bit the QDQ graph's, in one pass over 8-bit data instead of four
/// passes, three of them over fp32 tensors.
///
/// (Not generic over the operation: a generic class's `run` is called through the
/// protocol unspecialized, and its loops then made a witness call per element, 15x
/// slower than the QDQ graph. The generic statics below are specialized at each call.)
final class QLinearBinaryKernel: Kernel {
    let op: String
    let multiplies: Bool
    let plans = BroadcastPlanCache()
    /// When one operand is a constant single value (GELU's + 1 and * 0.5) and every
    /// scale and zero point is constant: the result for each of the 256 values of the
    /// other operand (its input index 0 or 3), with the same fp32 steps, so a run is one
    /// look-up pass (`vernier_lookup_bytes`) instead of a division per element.
    let constantOperand: (variable: Int, type: ElementType, table: [UInt8])?

    init(_ ctx: KernelContext, op: String, multiplies: Bool) {
        (self.op, self.multiplies) = (op, multiplies)
        constantOperand = Self.lookup(ctx, op: op, multiplies: multiplies)
    }

    private static func lookup(_ ctx: KernelContext, op: String, multiplies: Bool) -> (variable: Int, type: ElementType, table: [UInt8])? {
        guard parametersAreConstant(ctx) else { return nil }
        for (variable, fixed) in [(0, 3), (3, 0)] {
            guard let value = ctx.constant(fixed), value.elementCount == 1, ctx.constant(variable) == nil,
                  let type = ctx.inputTypes[variable]?.elementType, type == value.elementType, type == .uint8 || type == .int8
            else { continue }
            var inputs = ctx.constantInputs
            inputs[variable] = allBytes(type)
            guard let table = try? elementPath(inputs, op: op, multiplies: multiplies) else { return nil }
            return (variable, type, table)
        }
        return nil
    }

    /// The kernel without a table (each element computed).
    private init(op: String, multiplies: Bool) {
        (self.op, self.multiplies, constantOperand) = (op, multiplies, nil)
    }

    /// Whether every scale and zero point (inputs 1, 2, 4, 5, 6, 7) is a constant, so a
    /// table over the operands' byte values can be made at plan time.
    static func parametersAreConstant(_ ctx: KernelContext) -> Bool {
        [1, 2, 4, 5, 6, 7].allSatisfy { $0 < ctx.node.inputs.count && ctx.constant($0) != nil }
    }

    /// Every value of the 8-bit `type` (uint8 or int8), in byte order 0...255.
    static func allBytes(_ type: ElementType) -> Tensor {
        Tensor(type, shape: [256], values: (0..<256).map { UInt8($0) })
    }

    /// The bytes the element path (no table) computes for `inputs`: one run, so a table
    /// built from operands of 256 values holds exactly what that path gives each of them.
    static func elementPath(_ inputs: [Tensor?], op: String, multiplies: Bool) throws -> [UInt8] {
        let outputs = OutputSlots(count: 1, maxBytes: 1 << 12)
        try QLinearBinaryKernel(op: op, multiplies: multiplies).run(inputs, outputs)
        guard let y = outputs.results[0], y.elementCount == 256 else {
            throw KernelError.invalid("\(op) of 256 values gave \(outputs.results[0]?.elementCount ?? 0)")
        }
        return y.scalars(as: UInt8.self)
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        if let constantOperand, let x = inputs[constantOperand.variable], x.elementType == constantOperand.type,
           let fixed = inputs[3 - constantOperand.variable], fixed.rank <= x.rank {
            try lookUp(x, in: constantOperand.table, into: outputs)
            return
        }
        let a = try requiredInput(inputs, 0), b = try requiredInput(inputs, 3)
        let type = a.elementType
        guard type == .uint8 || type == .int8 else {
            throw KernelError.unsupported("\(op) of \(type) tensors (uint8 or int8)")
        }
        guard b.elementType == type else { throw KernelError.invalid("\(op) A is \(type) but B is \(b.elementType)") }
        let qa = try ScalarQuantization(inputs, scale: 1, zeroPoint: 2, type: type, op: op, operand: "A")
        let qb = try ScalarQuantization(inputs, scale: 4, zeroPoint: 5, type: type, op: op, operand: "B")
        let qc = try ScalarQuantization(inputs, scale: 6, zeroPoint: 7, type: type, op: op, operand: "C")
        let range = try quantizedRange(type, what: "\(op) output")
        let quantize = ByteQuantizer(scale: qc.scale, zeroPoint: qc.zeroPoint, low: Float(range.lowerBound), high: Float(range.upperBound))
        // Channels-last operands (`LayoutPlanner.channelsLastValues`: a map and a
        // per-channel vector, or two maps) broadcast as their NHWC storage does: the
        // plan runs on the shapes permuted to [N, H, W, C], a vector's [1, 1, 1, C].
        let channelsLast = a.layout == .channelsLast || b.layout == .channelsLast
        let plan = try plans.plan(channelsLast ? [a.shape, b.shape].map(Self.channelsLastOrder) : [a.shape, b.shape])
        let outputShape = channelsLast ? Self.logicalOrder(plan.outputShape) : plan.outputShape
        let out = try outputs.allocate(0, type, outputShape)
        guard (out.layout == .channelsLast) == channelsLast else {
            throw KernelError.invalid("\(op) output planned \(out.layout) for inputs \(a.layout) and \(b.layout)")
        }
        if channelsLast, let channels = outputShape.count == 4 ? outputShape[1] : nil, channels > 0, out.elementCount % channels == 0,
           let vector = [a, b].firstIndex(where: { $0.elementCount == channels && $0.elementCount != out.elementCount }) {
            switch (type == .uint8, multiplies) {
            case (true, false): Self.scaleChannels(UInt8.self, QLinearSum.self, a, qa, b, qb, vector: vector, into: out, quantize)
            case (true, true): Self.scaleChannels(UInt8.self, QLinearProduct.self, a, qa, b, qb, vector: vector, into: out, quantize)
            case (false, false): Self.scaleChannels(Int8.self, QLinearSum.self, a, qa, b, qb, vector: vector, into: out, quantize)
            case (false, true): Self.scaleChannels(Int8.self, QLinearProduct.self, a, qa, b, qb, vector: vector, into: out, quantize)
            }
            return
        }
        switch (type == .uint8, multiplies) {
        case (true, false): Self.run(UInt8.self, QLinearSum.self, a, qa, b, qb, into: out, quantize, plan)
        case (true, true): Self.run(UInt8.self, QLinearProduct.self, a, qa, b, qb, into: out, quantize, plan)
        case (false, false): Self.run(Int8.self, QLinearSum.self, a, qa, b, qb, into: out, quantize, plan)
        case (false, true): Self.run(Int8.self, QLinearProduct.self, a, qa, b, qb, into: out, quantize, plan)
        }
    }

    /// A channels-last map and a per-channel vector (operand `vector`, 0 for A or 1 for
    /// B): the vector's real values tiled over whole positions to a row of at least
    /// `tileElements`, then one long element-wise loop per tile of the map. (Through the
    /// broadcast plan, each position was a row of its C channels: MobileNetV3's
    /// squeeze-excitation scale of 16 channels at 56x56 took 20 us against 4.8 plain.)
    private static func scaleChannels<T: FixedWidthInteger, Operation: QLinearOperation>(
        _: T.Type, _: Operation.Type, _ a: Tensor, _ qa: ScalarQuantization, _ b: Tensor, _ qb: ScalarQuantization,
        vector: Int, into out: Tensor, _ quantize: ByteQuantizer
    ) {
        let (map, v, qMap, qv) = vector == 1 ? (a, b, qa, qb) : (b, a, qb, qa)
        // The caller checked: C > 0 values, dividing the output's elements.
        let channels = v.elementCount, total = out.elementCount
        let values = UnsafePointer(v.rawPointer.assumingMemoryBound(to: T.self))
        let positions = max(1, tileElements / channels)
        let tile = (0..<(positions * channels)).map { qv.real(values[$0 % channels]) }
        let pm = UnsafePointer(map.rawPointer.assumingMemoryBound(to: T.self))
        let pc = out.rawPointer.assumingMemoryBound(to: UInt8.self)
        let width = tile.count
        tile.withUnsafeBufferPointer { tp in
            guard let t = tp.baseAddress else { return }
            ThreadPool.parallelFor((total + width - 1) / width, minimumPerThread: max(1, ElementLoops.grain / width)) { range in
                for chunk in range {
                    let start = chunk * width, count = min(width, total - start)
                    let x = pm + start, y = pc + start
                    // Operands in the node's order: the fp32 steps are QLinearAdd's / QLinearMul's.
                    if vector == 1 {
                        for i in 0..<count { y[i] = quantize(Operation.apply(qMap.real(x[i]), t[i])) }
                    } else {
                        for i in 0..<count { y[i] = quantize(Operation.apply(t[i], qMap.real(x[i]))) }
                    }
                }
            }
        }
    }

    /// Elements a channels-last per-channel tile spans at least (`scaleChannels`).
    static let tileElements = 1024

    /// A shape in NHWC order, lifted to rank 4 first: [C, 1, 1] is [1, C, 1, 1].
    static func channelsLastOrder(_ shape: [Int]) -> [Int] {
        let s = Array(repeating: 1, count: max(0, 4 - shape.count)) + shape
        return s.count == 4 ? [s[0], s[2], s[3], s[1]] : shape
    }

    /// An NHWC-ordered shape back in NCHW order.
    static func logicalOrder(_ shape: [Int]) -> [Int] {
        shape.count == 4 ? [shape[0], shape[3], shape[1], shape[2]] : shape
    }

    private static func run<T: FixedWidthInteger, Operation: QLinearOperation>(
        _: T.Type, _: Operation.Type, _ a: Tensor, _ qa: ScalarQuantization, _ b: Tensor, _ qb: ScalarQuantization,
        into out: Tensor, _ quantize: ByteQuantizer, _ plan: BroadcastPlan
    ) {
        let pa = UnsafePointer(a.rawPointer.assumingMemoryBound(to: T.self))
        let pb = UnsafePointer(b.rawPointer.assumingMemoryBound(to: T.self))
        let pc = out.rawPointer.assumingMemoryBound(to: UInt8.self)
        let strides = plan.innerStrides
        ThreadPool.parallelFor(plan.elementCount, minimumPerThread: ElementLoops.grain) { range in
            plan.forEachRow(in: range) { o, offsets, count in
                row(Operation.self, pa + offsets[0], strides[0], qa, pb + offsets[1], strides[1], qb, pc + o, count, quantize)
            }
        }
    }

    /// One row: each operand walks it (stride 1) or repeats one value (stride 0).
    @inline(__always)
    private static func row<T: FixedWidthInteger, Operation: QLinearOperation>(
        _: Operation.Type, _ a: UnsafePointer<T>, _ sa: Int, _ qa: ScalarQuantization, _ b: UnsafePointer<T>, _ sb: Int,
        _ qb: ScalarQuantization, _ c: UnsafeMutablePointer<UInt8>, _ count: Int, _ quantize: ByteQuantizer
    ) {
        if sa == 1 && sb == 1 {
            for i in 0..<count { c[i] = quantize(Operation.apply(qa.real(a[i]), qb.real(b[i]))) }
        } else if sa == 1 {
            let y = qb.real(b[0])
            for i in 0..<count { c[i] = quantize(Operation.apply(qa.real(a[i]), y)) }
        } else if sb == 1 {
            let x = qa.real(a[0])
            for i in 0..<count { c[i] = quantize(Operation.apply(x, qb.real(b[i]))) }
        } else {
            let value = quantize(Operation.apply(qa.real(a[0]), qb.real(b[0])))
            for i in 0..<count { c[i] = value }
        }
    }
}

/// `com.microsoft.QGemm` computed exactly, for the forms the int8 kernel does not take:
/// inputs (A, a_scale, a_zero_point, B, b_scale, b_zero_point, C, y_scale, y_zero_point),
/// A `[M, K]` (`[K, M]` with transA) and B `[K, N]` (`[N, K]` with transB) of 8-bit
/// types, one scale and zero point for A, one or N for B, an optional int32 C of shape
/// (), (N), (1, N), (M, 1) or (M, N). Each output is
/// `(C + sum((A - a_zp)(B - b_zp))) * alpha * a_scale * b_scale / y_scale + y_zp`, the
/// sum in int32, rounded half to even and saturated to y_zero_point's type; fp32 without
/// y_scale. This is what ONNX Runtime's QGemm computes.
final class QGemmReferenceKernel: Kernel {
    let transposed: (a: Bool, b: Bool)
    let alpha: Float

    init(_ ctx: KernelContext) throws {
        transposed = (try ctx.node.int("transA", default: 0) != 0, try ctx.node.int("transB", default: 0) != 0)
        alpha = try ctx.node.float("alpha", default: 1)
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let op = "QGemm"
        let a = try requiredInput(inputs, 0), b = try requiredInput(inputs, 3)
        guard a.rank == 2, b.rank == 2 else { throw KernelError.invalid("\(op) needs 2-D A and B, got \(a.shape) and \(b.shape)") }
        let transA = transposed.a, transB = transposed.b
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else { throw KernelError.invalid("\(op) inner dims differ: A \(a.shape), B \(b.shape)") }
        let av = try QuantizedBytes(a, what: "\(op) A"), bv = try QuantizedBytes(b, what: "\(op) B")
        let aZero = try inputs[2].map { try quantizedElements($0, what: "\(op) a_zero_point") } ?? [0]
        let bZero = try inputs[5].map { try quantizedElements($0, what: "\(op) b_zero_point") } ?? [0]
        let aScale = try floatElements(try requiredInput(inputs, 1), what: "\(op) a_scale")
        let bScale = try floatElements(try requiredInput(inputs, 4), what: "\(op) b_scale")
        guard aZero.count == 1, aScale.count == 1, [1, n].contains(bZero.count), [1, n].contains(bScale.count) else {
            throw KernelError.invalid("\(op) takes one scale and zero point for A and one or \(n) for B")
        }
        let c = inputs.count > 6 ? inputs[6] : nil
        var biasIndex: (Int, Int) -> Int = { _, _ in 0 }
        var bias: [Int32] = []
        if let c {
            guard c.elementType == .int32 else { throw KernelError.invalid("\(op) C must be int32, got \(c.elementType)") }
            bias = c.scalars(as: Int32.self)
            switch (c.elementCount, c.shape) {
            case (1, _): break
            case (n, [n]), (n, [1, n]): biasIndex = { _, j in j }
            case (m, [m, 1]): biasIndex = { i, _ in i }
            case (m * n, [m, n]): biasIndex = { i, j in i * n + j }
            default: throw KernelError.invalid("\(op) C of shape \(c.shape) does not broadcast to [\(m), \(n)]")
            }
        }
        let yScale = try (inputs.count > 7 ? inputs[7] : nil).map { try floatElements($0, what: "\(op) y_scale") }
        let yZeroTensor = inputs.count > 8 ? inputs[8] : nil
        let outType = yScale == nil ? ElementType.float : yZeroTensor?.elementType ?? .uint8
        let yZero = try yZeroTensor.map { try quantizedElements($0, what: "\(op) y_zero_point") } ?? [0]
        guard yScale.map({ $0.count == 1 && $0[0] > 0 }) ?? true, yZero.count == 1 else {
            throw KernelError.invalid("\(op) takes one positive y_scale and one y_zero_point")
        }
        let range = try yScale == nil ? Int32.min...Int32.max : quantizedRange(outType, what: "\(op) output")
        let out = try outputs.allocate(0, outType, [m, n])
        let alpha = Double(alpha)
        for i in 0..<m {
            for j in 0..<n {
                var sum = c == nil ? Int32(0) : bias[biasIndex(i, j)]
                let bz = bZero[bZero.count == 1 ? 0 : j]
                for p in 0..<k {
                    let x = av[transA ? p * m + i : i * k + p] - aZero[0]
                    let w = bv[transB ? j * k + p : p * n + j] - bz
                    sum &+= x * w
                }
                let real = Double(sum) * alpha * Double(aScale[0]) * Double(bScale[bScale.count == 1 ? 0 : j])
                guard let yScale else {
                    out.rawPointer.assumingMemoryBound(to: Float.self)[i * n + j] = Float(real)
                    continue
                }
                let q = requantize(real / Double(yScale[0]), yZero[0], range)
                if outType == .int8 {
                    out.rawPointer.assumingMemoryBound(to: Int8.self)[i * n + j] = Int8(q)
                } else {
                    out.rawPointer.assumingMemoryBound(to: UInt8.self)[i * n + j] = UInt8(q)
                }
            }
        }
    }
}
