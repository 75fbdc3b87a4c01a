import VernierGraph

/// Kernels of the `com.microsoft` ops (same file name as their shape rules and cost
/// formulas): QLinearAdd, QLinearMul and QLinearSigmoid, which ONNX Runtime's quantizer
/// writes in its QOperator format and which `GraphPasses.fuseQDQBinary` and
/// `fuseQDQUnary` make of QDQ Adds, Muls and Sigmoids.
enum CustomDomainKernels {
    static let all: [String: KernelFactory] = [
        "QLinearAdd": { _ in QLinearBinaryKernel(op: "QLinearAdd", multiplies: false) },
        "QLinearMul": { _ in QLinearBinaryKernel(op: "QLinearMul", multiplies: true) },
        "QLinearSigmoid": { QLinearLookupKernel($0, op: "QLinearSigmoid", SigmoidOp()) },
    ]
}

/// Y = quantize(f(dequantize(X))) for an element-wise f, inputs (X, X_scale,
/// X_zero_point, Y_scale, Y_zero_point) of one 8-bit type, each scale and zero point one
/// value. An 8-bit X has 256 values, so the kernel computes f for each of them with the
/// fp32 steps of the QDQ graph (DequantizeLinear, f's own vector kernel, QuantizeLinear)
/// and looks every element up: bit for bit the graph's result, one byte-to-byte pass
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
        let out = try outputs.allocate(0, x.elementType, x.shape)
        let source = UnsafePointer(x.rawPointer.assumingMemoryBound(to: UInt8.self))
        let target = out.rawPointer.assumingMemoryBound(to: UInt8.self)
        table.withUnsafeBufferPointer { lookup in
            ThreadPool.parallelFor(x.elementCount, minimumPerThread: ElementLoops.grain) { range in
                for i in range { target[i] = lookup[Int(source[i])] }
            }
        }
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
