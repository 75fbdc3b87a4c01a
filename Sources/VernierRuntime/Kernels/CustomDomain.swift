import VernierGraph

/// Kernels of the `com.microsoft` ops (same file name as their shape rules and cost
/// formulas): QLinearAdd and QLinearMul, which ONNX Runtime's quantizer writes in its
/// QOperator format and which `GraphPasses.fuseQDQBinary` makes of QDQ Adds and Muls.
enum CustomDomainKernels {
    static let all: [String: KernelFactory] = [
        "QLinearAdd": { _ in QLinearBinaryKernel(op: "QLinearAdd", multiplies: false) },
        "QLinearMul": { _ in QLinearBinaryKernel(op: "QLinearMul", multiplies: true) },
    ]
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

    init(op: String, multiplies: Bool) { (self.op, self.multiplies) = (op, multiplies) }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
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
        let plan = try plans.plan([a.shape, b.shape])
        let out = try outputs.allocate(0, type, plan.outputShape)
        switch (type == .uint8, multiplies) {
        case (true, false): Self.run(UInt8.self, QLinearSum.self, a, qa, b, qb, into: out, quantize, plan)
        case (true, true): Self.run(UInt8.self, QLinearProduct.self, a, qa, b, qb, into: out, quantize, plan)
        case (false, false): Self.run(Int8.self, QLinearSum.self, a, qa, b, qb, into: out, quantize, plan)
        case (false, true): Self.run(Int8.self, QLinearProduct.self, a, qa, b, qb, into: out, quantize, plan)
        }
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
