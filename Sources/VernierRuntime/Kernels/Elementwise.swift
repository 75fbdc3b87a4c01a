import Foundation
import VernierGraph

/// Kernels of the Elementwise family (same file name as the shape rules and cost
/// formulas): unary math and activations, broadcasting binary, comparison and variadic
/// ops, Where, Identity, Dropout (inference), Trilu, CumSum, ReverseSequence; Cast and
/// CastLike from `CastKernels` too.
///
/// fp32 runs vectorized (SIMD8, parallel over the elements); the transcendental
/// activations use `VectorMath`. Other element types run one element at a time in
/// Double, Int64 or UInt64 (`ScalarUnary`, `ScalarBinary`).
enum ElementwiseKernels {
    static let all: [String: KernelFactory] = unaryMath
        .merging(activations) { first, _ in first }
        .merging(binary) { first, _ in first }
        .merging(others) { first, _ in first }
        .merging(CastKernels.all) { first, _ in first }

    typealias V = SIMD8<Float>

    // MARK: unary math

    static let unaryMath: [String: KernelFactory] = [
        "Abs": { _ in unary("Abs", AbsOp(), ScalarUnary(
            real: { Swift.abs($0) }, signed: { $0 < 0 ? 0 &- $0 : $0 }, unsigned: { $0 })) },
        "Neg": { _ in unary("Neg", NegOp(), ScalarUnary(real: { -$0 }, signed: { 0 &- $0 })) },
        "Exp": { _ in unary("Exp", ExpOp(), ScalarUnary(real: Foundation.exp)) },
        "Log": { _ in unary("Log", LogOp(), ScalarUnary(real: Foundation.log)) },
        "Sqrt": { _ in unary("Sqrt", SqrtOp(), ScalarUnary(real: { $0.squareRoot() })) },
        "Reciprocal": { _ in unary("Reciprocal", ReciprocalOp(), ScalarUnary(real: { 1 / $0 })) },
        "Floor": { _ in unary("Floor", RoundOp(rule: .down), ScalarUnary(real: { $0.rounded(.down) })) },
        "Ceil": { _ in unary("Ceil", RoundOp(rule: .up), ScalarUnary(real: { $0.rounded(.up) })) },
        "Round": { _ in unary("Round", RoundOp(rule: .toNearestOrEven), ScalarUnary(real: { $0.rounded(.toNearestOrEven) })) },
        "Sign": { _ in unary("Sign", ScalarUnary(
            real: { $0 > 0 ? 1 : ($0 < 0 ? -1 : $0) }, signed: { $0.signum() }, unsigned: { $0 > 0 ? 1 : 0 })) },
        "Sin": { _ in unary("Sin", ScalarUnary(real: Foundation.sin)) },
        "Cos": { _ in unary("Cos", ScalarUnary(real: Foundation.cos)) },
        "Tan": { _ in unary("Tan", ScalarUnary(real: Foundation.tan)) },
        "Asin": { _ in unary("Asin", ScalarUnary(real: Foundation.asin)) },
        "Acos": { _ in unary("Acos", ScalarUnary(real: Foundation.acos)) },
        "Atan": { _ in unary("Atan", ScalarUnary(real: Foundation.atan)) },
        "Sinh": { _ in unary("Sinh", ScalarUnary(real: Foundation.sinh)) },
        "Cosh": { _ in unary("Cosh", ScalarUnary(real: Foundation.cosh)) },
        "Asinh": { _ in unary("Asinh", ScalarUnary(real: Foundation.asinh)) },
        "Acosh": { _ in unary("Acosh", ScalarUnary(real: Foundation.acosh)) },
        "Atanh": { _ in unary("Atanh", ScalarUnary(real: Foundation.atanh)) },
        "Erf": { _ in unary("Erf", ErfOp(), ScalarUnary(real: Foundation.erf)) },
        "Not": { _ in unary("Not", ScalarUnary(bool: { !$0 })) },
        "BitwiseNot": { _ in unary("BitwiseNot", ScalarUnary(signed: { ~$0 }, unsigned: { ~$0 })) },
        "IsNaN": { _ in
            FunctionKernel { inputs, outputs in
                let x = try requiredInput(inputs, 0)
                let out = try outputs.allocate(0, .bool, x.shape)
                try classify(x, into: out, op: "IsNaN") { $0.isNaN }
            }
        },
        "IsInf": { ctx in
            let negative = try ctx.node.int("detect_negative", default: 1) != 0
            let positive = try ctx.node.int("detect_positive", default: 1) != 0
            return FunctionKernel { inputs, outputs in
                let x = try requiredInput(inputs, 0)
                let out = try outputs.allocate(0, .bool, x.shape)
                try classify(x, into: out, op: "IsInf") { $0.isInfinite && ($0 > 0 ? positive : negative) }
            }
        },
    ]

    // MARK: activations

    static let activations: [String: KernelFactory] = [
        "Relu": { _ in unary("Relu", ReluOp(), ScalarUnary(real: { $0 < 0 ? 0 : $0 }, signed: { Swift.max($0, 0) })) },
        "LeakyRelu": { ctx in
            let alpha = try ctx.node.float("alpha", default: 0.01)
            return unary("LeakyRelu", LeakyReluOp(alpha: alpha), ScalarUnary(real: { $0 < 0 ? $0 * Double(alpha) : $0 }))
        },
        "Elu": { ctx in
            let alpha = try ctx.node.float("alpha", default: 1)
            return unary("Elu", EluOp(alpha: alpha), ScalarUnary(real: { $0 < 0 ? Double(alpha) * Foundation.expm1($0) : $0 }))
        },
        "Selu": { ctx in
            let alpha = try ctx.node.float("alpha", default: 1.673_263_192_176_818_847_656_25)
            let gamma = try ctx.node.float("gamma", default: 1.050_701_022_148_132_324_218_75)
            return unary("Selu", SeluOp(alpha: alpha, gamma: gamma), ScalarUnary(real: {
                Double(gamma) * ($0 > 0 ? $0 : Double(alpha) * Foundation.expm1($0))
            }))
        },
        "Celu": { ctx in
            let alpha = try ctx.node.float("alpha", default: 1)
            guard alpha != 0 else { throw KernelError.invalid("Celu alpha must not be 0") }
            return unary("Celu", CeluOp(alpha: alpha), ScalarUnary(real: {
                Swift.max(0, $0) + Swift.min(0, Double(alpha) * Foundation.expm1($0 / Double(alpha)))
            }))
        },
        "Sigmoid": { _ in unary("Sigmoid", SigmoidOp(), ScalarUnary(real: { 1 / (1 + Foundation.exp(-$0)) })) },
        "HardSigmoid": { ctx in
            let alpha = try ctx.node.float("alpha", default: 0.2), beta = try ctx.node.float("beta", default: 0.5)
            if try ctx.node.int(FusedAttributes.qlinear, default: 0) != 0 {
                return QLinearLookupKernel(ctx, op: "HardSigmoid (quantized)", HardSigmoidOp(alpha: alpha, beta: beta))
            }
            return unary("HardSigmoid", HardSigmoidOp(alpha: alpha, beta: beta), ScalarUnary(real: {
                Swift.min(1, Swift.max(0, Double(alpha) * $0 + Double(beta)))
            }))
        },
        "HardSwish": { _ in unary("HardSwish", HardSwishOp(), ScalarUnary(real: { $0 * Swift.min(1, Swift.max(0, $0 / 6 + 0.5)) })) },
        "Softplus": { _ in unary("Softplus", ScalarUnary(real: ReferenceKernels.softplus)) },
        "Softsign": { _ in unary("Softsign", SoftsignOp(), ScalarUnary(real: { $0 / (1 + Swift.abs($0)) })) },
        "Tanh": { _ in unary("Tanh", TanhOp(), ScalarUnary(real: Foundation.tanh)) },
        "Gelu": { ctx in
            let approximate = try ctx.node.string("approximate", default: "none")
            switch approximate {
            case "none": return unary("Gelu", GeluOp(), ScalarUnary(real: ReferenceKernels.gelu))
            case "tanh": return unary("Gelu", GeluTanhOp(), ScalarUnary(real: ReferenceKernels.geluTanh))
            default: throw KernelError.invalid("Gelu approximate must be \"none\" or \"tanh\", not \"\(approximate)\"")
            }
        },
        "Mish": { _ in unary("Mish", MishOp(), ScalarUnary(real: { $0 * Foundation.tanh(ReferenceKernels.softplus($0)) })) },
        "ThresholdedRelu": { ctx in
            let alpha = try ctx.node.float("alpha", default: 1)
            return unary("ThresholdedRelu", ThresholdedReluOp(alpha: alpha), ScalarUnary(real: { $0 > Double(alpha) ? $0 : 0 }))
        },
        "Shrink": { ctx in
            let lambd = Double(try ctx.node.float("lambd", default: 0.5)), bias = Double(try ctx.node.float("bias", default: 0))
            let f: (Double) -> Double = { $0 < -lambd ? $0 + bias : ($0 > lambd ? $0 - bias : 0) }
            return unary("Shrink", ShrinkOp(lambd: Float(lambd), bias: Float(bias)), ScalarUnary(
                real: f, signed: { Int64(bitPattern: ElementConversion.integerBits(f(Double($0)))) },
                unsigned: { ElementConversion.integerBits(Swift.max(0, f(Double($0)))) }))
        },
        "Clip": makeClip,
    ]

    // MARK: binary, comparison, variadic

    static let binary: [String: KernelFactory] = [
        "Add": { _ in binaryKernel("Add", AddOp(), ScalarBinary(real: +, signed: { $0 &+ $1 }, unsigned: { $0 &+ $1 })) },
        "Sub": { _ in binaryKernel("Sub", SubOp(), ScalarBinary(real: -, signed: { $0 &- $1 }, unsigned: { $0 &- $1 })) },
        "Mul": { _ in binaryKernel("Mul", MulOp(), ScalarBinary(real: *, signed: { $0 &* $1 }, unsigned: { $0 &* $1 })) },
        // Integer division truncates; by zero it gives 0 rather than trapping.
        "Div": { _ in binaryKernel("Div", DivOp(), ScalarBinary(
            real: /, signed: { $1 == 0 ? 0 : $0.dividedReportingOverflow(by: $1).partialValue },
            unsigned: { $1 == 0 ? 0 : $0 / $1 })) },
        "Mod": { ctx in
            let fmod = try ctx.node.int("fmod", default: 0) != 0
            let signed: (Int64, Int64) -> Int64 = fmod
                ? { $1 == 0 ? 0 : $0.remainderReportingOverflow(dividingBy: $1).partialValue }
                : { a, b in
                    guard b != 0 else { return 0 }
                    let r = a.remainderReportingOverflow(dividingBy: b).partialValue
                    return r != 0 && (r < 0) != (b < 0) ? r + b : r
                }
            // Floating-point Mod requires fmod = 1 (the C remainder, sign of the dividend).
            return binaryKernel("Mod", LaneZip(Foundation.fmodf), ScalarBinary(
                real: fmod ? Foundation.fmod : nil, signed: signed, unsigned: { $1 == 0 ? 0 : $0 % $1 }))
        },
        "Pow": { _ in PowKernel() },
        "PRelu": { _ in binaryKernel("PRelu", PReluOp(), ScalarBinary(
            real: { $0 < 0 ? $0 * $1 : $0 }, signed: { $0 < 0 ? $0 &* $1 : $0 }, unsigned: { a, _ in a })) },
        "BitShift": { ctx in
            let direction = try ctx.node.string("direction")
            guard direction == "LEFT" || direction == "RIGHT" else {
                throw KernelError.invalid("BitShift direction must be \"LEFT\" or \"RIGHT\", not \"\(direction)\"")
            }
            let left = direction == "LEFT"
            return binaryKernel("BitShift", LaneZip { a, _ in a }, ScalarBinary(unsigned: { left ? $0 << $1 : $0 >> $1 }))
        },
        "BitwiseAnd": { _ in binaryKernel("BitwiseAnd", LaneZip { a, _ in a }, ScalarBinary(signed: &, unsigned: &)) },
        "BitwiseOr": { _ in binaryKernel("BitwiseOr", LaneZip { a, _ in a }, ScalarBinary(signed: |, unsigned: |)) },
        "BitwiseXor": { _ in binaryKernel("BitwiseXor", LaneZip { a, _ in a }, ScalarBinary(signed: ^, unsigned: ^)) },
        "And": { _ in binaryKernel("And", LaneZip { a, _ in a }, ScalarBinary(bool: { $0 && $1 })) },
        "Or": { _ in binaryKernel("Or", LaneZip { a, _ in a }, ScalarBinary(bool: { $0 || $1 })) },
        "Xor": { _ in binaryKernel("Xor", LaneZip { a, _ in a }, ScalarBinary(bool: { $0 != $1 })) },
        "Equal": { _ in compareKernel("Equal", ScalarCompare(real: ==, signed: ==, unsigned: ==)) },
        "Less": { _ in compareKernel("Less", ScalarCompare(real: <, signed: <, unsigned: <)) },
        "Greater": { _ in compareKernel("Greater", ScalarCompare(real: >, signed: >, unsigned: >)) },
        "LessOrEqual": { _ in compareKernel("LessOrEqual", ScalarCompare(real: <=, signed: <=, unsigned: <=)) },
        "GreaterOrEqual": { _ in compareKernel("GreaterOrEqual", ScalarCompare(real: >=, signed: >=, unsigned: >=)) },
        "Max": { _ in variadicKernel("Max", MaxOp(), ScalarBinary(
            real: { $0.isNaN || $0 > $1 ? $0 : $1 }, signed: Swift.max, unsigned: Swift.max), mean: false) },
        "Min": { _ in variadicKernel("Min", MinOp(), ScalarBinary(
            real: { $0.isNaN || $0 < $1 ? $0 : $1 }, signed: Swift.min, unsigned: Swift.min), mean: false) },
        "Sum": { _ in variadicKernel("Sum", AddOp(), ScalarBinary(real: +, signed: { $0 &+ $1 }, unsigned: { $0 &+ $1 }), mean: false) },
        "Mean": { _ in variadicKernel("Mean", AddOp(), ScalarBinary(real: +), mean: true) },
    ]

    static let others: [String: KernelFactory] = [
        "Where": { _ in WhereKernel() },
        "Identity": { _ in
            FunctionKernel { inputs, outputs in outputs.set(0, try requiredInput(inputs, 0)) }
        },
        "Dropout": makeDropout,
        "Trilu": { ctx in TriluKernel(upper: try ctx.node.int("upper", default: 1) != 0) },
        "CumSum": { ctx in
            CumSumKernel(exclusive: try ctx.node.int("exclusive", default: 0) != 0,
                         reverse: try ctx.node.int("reverse", default: 0) != 0)
        },
        "ReverseSequence": { ctx in
            let batchAxis = try ctx.node.int("batch_axis", default: 1), timeAxis = try ctx.node.int("time_axis", default: 0)
            guard Set([batchAxis, timeAxis]) == [0, 1] else {
                throw KernelError.invalid("ReverseSequence needs batch_axis and time_axis to be 0 and 1 (got \(batchAxis), \(timeAxis))")
            }
            return ReverseSequenceKernel(timeAxis: timeAxis)
        },
    ]

    // MARK: kernel builders

    /// A unary op: `fast` for fp32, `scalar` for the other element types.
    static func unary<Op: FloatMap>(_ name: String, _ fast: Op, _ scalar: ScalarUnary) -> Kernel {
        FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let out = try outputs.allocate(0, x.elementType, x.shape)
            if x.elementType == .float {
                ElementLoops.map(x, into: out, fast)
            } else {
                try scalar.apply(x, into: out, op: name)
            }
        }
    }

    /// A unary op without a vector form: fp32 goes through `scalar.real` (in Double).
    static func unary(_ name: String, _ scalar: ScalarUnary) -> Kernel {
        FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let out = try outputs.allocate(0, x.elementType, x.shape)
            try scalar.apply(x, into: out, op: name)
        }
    }

    /// A float predicate (IsNaN, IsInf) into a bool tensor.
    static func classify(_ x: Tensor, into out: Tensor, op: String, _ f: @escaping (Double) -> Bool) throws {
        switch x.elementType {
        case .float: ElementLoops.mapElements(x, into: out) { (v: Float) -> UInt8 in f(Double(v)) ? 1 : 0 }
        case .double: ElementLoops.mapElements(x, into: out) { (v: Double) -> UInt8 in f(v) ? 1 : 0 }
        case .float16: ElementLoops.mapElements(x, into: out) { (v: Float16) -> UInt8 in f(Double(v)) ? 1 : 0 }
        default: throw KernelError.unsupported("\(op) of \(x.elementType) tensors")
        }
    }

    /// Two inputs of one element type, broadcast; the output has their type.
    static func binaryKernel<Op: FloatZip>(_ name: String, _ fast: Op, _ scalar: ScalarBinary) -> Kernel {
        let plans = BroadcastPlanCache()
        return FunctionKernel { inputs, outputs in
            let left = try requiredInput(inputs, 0), right = try requiredInput(inputs, 1)
            guard left.elementType == right.elementType else {
                throw KernelError.invalid("\(name) inputs are \(left.elementType) and \(right.elementType); they must be one type")
            }
            let plan = try plans.plan([left.shape, right.shape])
            let out = try outputs.allocate(0, left.elementType, plan.outputShape)
            let a = ElementLoops.readable(left, writing: out), b = ElementLoops.readable(right, writing: out)
            if a.elementType == .float && !(fast is LaneZip) {
                ElementLoops.zip(a, b, into: out, plan, fast)
            } else {
                try scalar.apply(a, b, into: out, plan, op: name)
            }
        }
    }

    /// Two inputs of one element type, broadcast; a bool output.
    static func compareKernel(_ name: String, _ compare: ScalarCompare) -> Kernel {
        let plans = BroadcastPlanCache()
        return FunctionKernel { inputs, outputs in
            let a = try requiredInput(inputs, 0), b = try requiredInput(inputs, 1)
            guard a.elementType == b.elementType else {
                throw KernelError.invalid("\(name) inputs are \(a.elementType) and \(b.elementType); they must be one type")
            }
            let plan = try plans.plan([a.shape, b.shape])
            let out = try outputs.allocate(0, .bool, plan.outputShape)
            try compare.apply(a, b, into: out, plan, op: name)
        }
    }

    /// Max, Min, Sum, Mean: folds the inputs pairwise into the output (each step
    /// broadcast to the final shape), Mean divides at the end.
    static func variadicKernel<Op: FloatZip>(_ name: String, _ fast: Op, _ scalar: ScalarBinary, mean: Bool) -> Kernel {
        FunctionKernel { inputs, outputs in
            var present = inputs.compactMap { $0 }
            guard let first = present.first else { throw KernelError.invalid("\(name) needs at least one input") }
            for t in present where t.elementType != first.elementType {
                throw KernelError.invalid("\(name) inputs are \(first.elementType) and \(t.elementType); they must be one type")
            }
            let shape = try BroadcastPlan.broadcastShape(present.map(\.shape))
            let out = try outputs.allocate(0, first.elementType, shape)
            // The ops are commutative: an input that is the output's memory goes first,
            // so the fold reads it before writing over it; broadcast ones are copied.
            if let j = present.indices.first(where: { ElementLoops.overlaps(present[$0], out) }), j > 1 {
                present.swapAt(0, j)
            }
            // Inputs 2... are read after the output has been written once.
            present = present.enumerated().map { k, t in
                k >= 2 && ElementLoops.overlaps(t, out) ? t.copy() : ElementLoops.readable(t, writing: out)
            }
            if present.count == 1 {
                if out.byteCount > 0 { memmove(out.rawPointer, present[0].rawPointer, present[0].byteCount) }
            } else {
                for k in 1..<present.count {
                    let a = k == 1 ? present[0] : out
                    let plan = try BroadcastPlan([a.shape, present[k].shape], output: shape)
                    if first.elementType == .float {
                        ElementLoops.zip(a, present[k], into: out, plan, fast)
                    } else {
                        try scalar.apply(a, present[k], into: out, plan, op: name)
                    }
                }
            }
            if mean {
                let n = Double(present.count)
                if first.elementType == .float {
                    ElementLoops.map(out, into: out, ScaleOp(scale: Float(1 / n)))
                } else {
                    try ScalarUnary(real: { $0 / n }).apply(out, into: out, op: name)
                }
            }
        }
    }

    static func makeClip(_ ctx: KernelContext) throws -> Kernel {
        // Before opset 11 the bounds are attributes; from 11 optional scalar inputs.
        let attributeBounds = ctx.opset < 11
        let attributeMin = try ctx.node.float("min", default: -.infinity)
        let attributeMax = try ctx.node.float("max", default: .infinity)
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            func bound(_ index: Int) throws -> Tensor? {
                guard !attributeBounds, index < inputs.count, let t = inputs[index] else { return nil }
                guard t.elementCount == 1 else { throw KernelError.invalid("Clip bound (input \(index)) must be a scalar, got shape \(t.shape)") }
                guard t.elementType == x.elementType else {
                    throw KernelError.invalid("Clip bound (input \(index)) is \(t.elementType), the input \(x.elementType)")
                }
                return t
            }
            let lo = try bound(1), hi = try bound(2)
            let out = try outputs.allocate(0, x.elementType, x.shape)
            let loReal = lo?.doubles()?.first ?? Double(attributeMin)
            let hiReal = hi?.doubles()?.first ?? Double(attributeMax)
            if x.elementType == .float {
                ElementLoops.map(x, into: out, ClipOp(lo: Float(loReal), hi: Float(hiReal)))
                return
            }
            func clip<T: Comparable>(_ v: T, _ l: T, _ h: T) -> T {
                let t = v < l ? l : v
                return t > h ? h : t
            }
            let loSigned = lo.flatMap { $0.integers()?.first }.map(Int64.init) ?? Int64.min
            let hiSigned = hi.flatMap { $0.integers()?.first }.map(Int64.init) ?? Int64.max
            let loUnsigned = lo.flatMap { $0.integers()?.first }.map { UInt64(truncatingIfNeeded: $0) } ?? 0
            let hiUnsigned = hi.flatMap { $0.integers()?.first }.map { UInt64(truncatingIfNeeded: $0) } ?? UInt64.max
            try ScalarUnary(real: { clip($0, loReal, hiReal) }, signed: { clip($0, loSigned, hiSigned) },
                            unsigned: { clip($0, loUnsigned, hiUnsigned) }).apply(x, into: out, op: "Clip")
        }
    }

    static func makeDropout(_ ctx: KernelContext) throws -> Kernel {
        // Inference only: the output is the input, the mask all true. Training mode
        // (input 2 true, opset >= 12) with a non-zero ratio would need random numbers.
        FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            if inputs.count > 2, let training = inputs[2], training.integers()?.first ?? 0 != 0 {
                let ratio = inputs.count > 1 ? (inputs[1]?.doubles()?.first ?? 0.5) : 0.5
                if ratio != 0 { throw KernelError.unsupported("Dropout in training mode (training_mode = true)") }
            }
            outputs.set(0, x)
            if outputs.count > 1 && outputs.isRequested(1) {
                let mask = try outputs.allocate(1, .bool, x.shape)
                if mask.byteCount > 0 { mask.rawPointer.initializeMemory(as: UInt8.self, repeating: 1, count: mask.byteCount) }
            }
        }
    }
}

/// The broadcast plan of the last run, reused while the input shapes stay the same.
final class BroadcastPlanCache {
    private var shapes: [[Int]] = []
    private var cached: BroadcastPlan?

    func plan(_ inputShapes: [[Int]]) throws -> BroadcastPlan {
        if let cached, inputShapes == shapes { return cached }
        let plan = try BroadcastPlan(inputShapes)
        shapes = inputShapes
        cached = plan
        return plan
    }
}

// MARK: - fp32 vector ops

// The ops below are always inlined into the loops specialized for them: a specialization
// that only calls its op is identical, but for the callee, to every other op's, and LLVM
// merges such functions into one that calls the op through a pointer per 8 lanes.

struct LaneMap: FloatMap {
    let f: (Float) -> Float
    func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var r = x
        for i in 0..<8 { r[i] = f(x[i]) }
        return r
    }
}

/// A per-lane scalar function; binary kernels built with one skip the vector path.
struct LaneZip: FloatZip {
    let f: (Float, Float) -> Float
    init(_ f: @escaping (Float, Float) -> Float) { self.f = f }
    func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        var r = a
        for i in 0..<8 { r[i] = f(a[i], b[i]) }
        return r
    }
}

struct AbsOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.abs(x) } }
struct NegOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { -x } }
struct ExpOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.exp(x) } }
struct LogOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.log(x) } }
struct SqrtOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x.squareRoot() } }
struct ReciprocalOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / x } }
struct RoundOp: FloatMap {
    let rule: FloatingPointRoundingRule
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x.rounded(rule) }
}
struct ErfOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.erf(x) } }
struct ReluOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x.replacing(with: 0, where: x .< 0) } }
struct LeakyReluOp: FloatMap {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x.replacing(with: x * alpha, where: x .< 0) }
}
struct EluOp: FloatMap {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x.replacing(with: alpha * (VectorMath.exp(x) - 1), where: x .< 0)
    }
}
struct SeluOp: FloatMap {
    let alpha: Float, gamma: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        gamma * x.replacing(with: alpha * (VectorMath.exp(x) - 1), where: x .<= 0)
    }
}
struct CeluOp: FloatMap {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        x.replacing(with: alpha * (VectorMath.exp(x / alpha) - 1), where: x .< 0)
    }
}
struct SigmoidOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.sigmoid(x) } }
struct TanhOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.tanh(x) } }
struct GeluOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.gelu(x) } }
struct GeluTanhOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.geluTanh(x) } }
struct MishOp: FloatMap { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { VectorMath.mish(x) } }
struct HardSigmoidOp: FloatMap {
    let alpha: Float, beta: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var y = alpha * x + beta
        y.replace(with: 0, where: y .< 0)
        y.replace(with: 1, where: y .> 1)
        return y
    }
}
struct HardSwishOp: FloatMap {
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var y = x * (1.0 / 6) + 0.5
        y.replace(with: 0, where: y .< 0)
        y.replace(with: 1, where: y .> 1)
        return x * y
    }
}
struct SoftsignOp: FloatMap {
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x / (1 + VectorMath.abs(x)) }
}
struct ThresholdedReluOp: FloatMap {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x.replacing(with: 0, where: .!(x .> alpha)) }
}
struct ShrinkOp: FloatMap {
    let lambd: Float, bias: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var y = SIMD8<Float>(repeating: 0)
        y.replace(with: x + bias, where: x .< -lambd)
        y.replace(with: x - bias, where: x .> lambd)
        return y
    }
}
struct ClipOp: FloatMap {
    let lo: Float, hi: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let y = x.replacing(with: lo, where: x .< lo)
        return y.replacing(with: hi, where: y .> hi)
    }
}
struct ScaleOp: FloatMap {
    let scale: Float
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x * scale }
}

struct AddOp: FloatZip { @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b } }
struct SubOp: FloatZip { @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a - b } }
struct MulOp: FloatZip { @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a * b } }
struct DivOp: FloatZip { @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a / b } }
/// NaN-propagating, like NumPy's maximum / minimum.
struct MaxOp: FloatZip {
    @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: (a .< b) .| (b .!= b)) }
}
struct MinOp: FloatZip {
    @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: (a .> b) .| (b .!= b)) }
}
struct PReluOp: FloatZip {
    @inline(__always) func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: a * b, where: a .< 0) }
}

// MARK: - Pow, Where, Trilu, CumSum, ReverseSequence

/// Pow: the exponent may have another element type than the base (the output has the
/// base's). fp32 with a scalar exponent of 2, 3, 0.5 or 1 avoids `powf`; other element
/// types compute in Double and convert back (integers truncate).
final class PowKernel: Kernel {
    private let plans = BroadcastPlanCache()

    struct Square: FloatMap { func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x * x } }
    struct Cube: FloatMap { func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x * x * x } }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let base = try requiredInput(inputs, 0), exponent = try requiredInput(inputs, 1)
        for t in [base, exponent] where !(t.elementType.isFloatingPoint || t.elementType.isInteger) || !ElementConversion.supports(t.elementType) {
            throw KernelError.unsupported("Pow of \(t.elementType) tensors")
        }
        let plan = try plans.plan([base.shape, exponent.shape])
        let out = try outputs.allocate(0, base.elementType, plan.outputShape)
        let a = ElementLoops.readable(base, writing: out), b = ElementLoops.readable(exponent, writing: out)
        if a.elementType == .float && b.elementType == .float {
            if b.elementCount == 1 && a.elementCount == out.elementCount {
                let e = b.scalars(as: Float.self)[0]
                switch e {
                case 1: ElementLoops.map(a, into: out, ScaleOp(scale: 1)); return
                case 2: ElementLoops.map(a, into: out, Square()); return
                case 3: ElementLoops.map(a, into: out, Cube()); return
                case 0.5: ElementLoops.map(a, into: out, SqrtOp()); return
                default: break
                }
            }
            ElementLoops.zipElements(a, b, into: out, plan) { (x: Float, y: Float) in Foundation.powf(x, y) }
            return
        }
        let x = Tensor(elementType: .double, shape: a.shape), y = Tensor(elementType: .double, shape: b.shape)
        ElementConversion.convert(a, into: x)
        ElementConversion.convert(b, into: y)
        let result = Tensor(elementType: .double, shape: out.shape)
        ElementLoops.zipElements(x, y, into: result, plan) { (p: Double, q: Double) in Foundation.pow(p, q) }
        ElementConversion.convert(result, into: out)
    }
}

/// Where(condition, x, y), all three broadcast; copies elements by their byte width.
final class WhereKernel: Kernel {
    private let plans = BroadcastPlanCache()

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let condition = try requiredInput(inputs, 0), first = try requiredInput(inputs, 1), second = try requiredInput(inputs, 2)
        guard condition.elementType == .bool else { throw KernelError.invalid("Where condition is \(condition.elementType), must be bool") }
        guard first.elementType == second.elementType else {
            throw KernelError.invalid("Where inputs are \(first.elementType) and \(second.elementType); they must be one type")
        }
        let plan = try plans.plan([condition.shape, first.shape, second.shape])
        let out = try outputs.allocate(0, first.elementType, plan.outputShape)
        let c = ElementLoops.readable(condition, writing: out), x = ElementLoops.readable(first, writing: out)
        let y = ElementLoops.readable(second, writing: out)
        switch x.elementType.bitWidth {
        case 8: select(UInt8.self, c, x, y, out, plan)
        case 16: select(UInt16.self, c, x, y, out, plan)
        case 32: select(UInt32.self, c, x, y, out, plan)
        case 64: select(UInt64.self, c, x, y, out, plan)
        default: throw KernelError.unsupported("Where of \(x.elementType) tensors")
        }
    }

    private func select<T>(_: T.Type, _ c: Tensor, _ x: Tensor, _ y: Tensor, _ out: Tensor, _ plan: BroadcastPlan) {
        let pc = ElementLoops.pointer(c, UInt8.self), px = ElementLoops.pointer(x, T.self)
        let py = ElementLoops.pointer(y, T.self), po = ElementLoops.pointer(out, T.self)
        let s = plan.innerStrides
        let (sc, sx, sy) = (s[0], s[1], s[2])
        ThreadPool.parallelFor(plan.elementCount, minimumPerThread: ElementLoops.grain) { range in
            plan.forEachRow(in: range) { o, offsets, count in
                let cc = pc + offsets[0], xx = px + offsets[1], yy = py + offsets[2], z = po + o
                for i in 0..<count { z[i] = cc[i * sc] != 0 ? xx[i * sx] : yy[i * sy] }
            }
        }
    }
}

/// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two
/// dims, zeros elsewhere; row by row with memmove / memset.
final class TriluKernel: Kernel {
    let upper: Bool
    init(upper: Bool) { self.upper = upper }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.rank >= 2 else { throw KernelError.invalid("Trilu input must have rank >= 2, got shape \(x.shape)") }
        guard let width = x.elementType.bitWidth, width % 8 == 0 else { throw KernelError.unsupported("Trilu of \(x.elementType) tensors") }
        var k = 0
        if inputs.count > 1, let kt = inputs[1] {
            guard kt.elementCount == 1, let v = kt.integers()?.first else {
                throw KernelError.invalid("Trilu k must be one integer, got a \(kt.elementType) tensor of shape \(kt.shape)")
            }
            k = v
        }
        let out = try outputs.allocate(0, x.elementType, x.shape)
        let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
        guard rows > 0, cols > 0 else { return }
        k = Swift.max(-(rows + cols), Swift.min(rows + cols, k))
        let size = width / 8, matrices = x.elementCount / (rows * cols)
        let src = x.rawPointer, dst = out.rawPointer
        for m in 0..<matrices {
            for i in 0..<rows {
                let row = (m * rows + i) * cols * size
                // Columns [keepStart, keepEnd) are kept.
                let keepStart = upper ? Swift.max(0, Swift.min(cols, i + k)) : 0
                let keepEnd = upper ? cols : Swift.max(0, Swift.min(cols, i + k + 1))
                if keepEnd > keepStart {
                    memmove(dst + row + keepStart * size, src + row + keepStart * size, (keepEnd - keepStart) * size)
                }
                if keepStart > 0 { memset(dst + row, 0, keepStart * size) }
                if keepEnd < cols { memset(dst + row + keepEnd * size, 0, (cols - keepEnd) * size) }
            }
        }
    }
}

/// CumSum along the axis given as input 1; `exclusive` shifts by one, `reverse` sums
/// from the end. Accumulates in the element type (like NumPy; integers wrap).
final class CumSumKernel: Kernel {
    let exclusive: Bool, reverse: Bool
    init(exclusive: Bool, reverse: Bool) {
        self.exclusive = exclusive
        self.reverse = reverse
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0), axisTensor = try requiredInput(inputs, 1)
        guard axisTensor.elementCount == 1, axisTensor.elementType == .int32 || axisTensor.elementType == .int64,
              let requested = axisTensor.integers()?.first else {
            throw KernelError.invalid("CumSum axis must be one int32 or int64 value, got \(axisTensor.elementType) of shape \(axisTensor.shape)")
        }
        let rank = Swift.max(x.rank, 1)
        guard requested >= -rank && requested < rank else {
            throw KernelError.invalid("CumSum axis \(requested) is out of range for rank \(x.rank)")
        }
        let axis = requested < 0 ? requested + rank : requested
        let shape = x.rank == 0 ? [1] : x.shape
        let outer = shape[..<axis].reduce(1, *), length = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        let out = try outputs.allocate(0, x.elementType, x.shape)
        let geometry = (outer, length, inner)
        switch x.elementType {
        case .float: sum(Float.self, x, out, geometry, +)
        case .double: sum(Double.self, x, out, geometry, +)
        case .float16: sum(Float16.self, x, out, geometry, +)
        case .int8: sum(Int8.self, x, out, geometry, &+)
        case .int16: sum(Int16.self, x, out, geometry, &+)
        case .int32: sum(Int32.self, x, out, geometry, &+)
        case .int64: sum(Int64.self, x, out, geometry, &+)
        case .uint8: sum(UInt8.self, x, out, geometry, &+)
        case .uint16: sum(UInt16.self, x, out, geometry, &+)
        case .uint32: sum(UInt32.self, x, out, geometry, &+)
        case .uint64: sum(UInt64.self, x, out, geometry, &+)
        default: throw KernelError.unsupported("CumSum of \(x.elementType) tensors")
        }
    }

    private func sum<T: AdditiveArithmetic>(_: T.Type, _ x: Tensor, _ out: Tensor, _ geometry: (Int, Int, Int),
                                           _ add: (T, T) -> T) {
        let (outer, length, inner) = geometry
        guard length > 0, inner > 0 else { return }
        let px = ElementLoops.pointer(x, T.self), po = ElementLoops.pointer(out, T.self)
        let step = reverse ? -1 : 1
        let first = reverse ? length - 1 : 0
        for o in 0..<outer {
            let base = o * length * inner
            // Inclusive sums; row j reads x's row j before writing it (safe in place).
            for i in 0..<inner { po[base + first * inner + i] = px[base + first * inner + i] }
            for n in 1..<Swift.max(length, 1) {
                let j = first + n * step, previous = j - step
                let row = base + j * inner, prior = base + previous * inner
                for i in 0..<inner { po[row + i] = add(po[prior + i], px[row + i]) }
            }
            guard exclusive else { continue }
            // Shift by one row away from the start, walking from the far end.
            for n in stride(from: length - 1, through: 1, by: -1) {
                let j = first + n * step, previous = j - step
                let row = base + j * inner, prior = base + previous * inner
                for i in 0..<inner { po[row + i] = po[prior + i] }
            }
            for i in 0..<inner { po[base + first * inner + i] = .zero }
        }
    }
}

/// ReverseSequence: reverses the first `sequence_lens[b]` steps along the time axis of
/// each batch entry (axes 0 and 1), copying the rest.
final class ReverseSequenceKernel: Kernel {
    let timeAxis: Int
    init(timeAxis: Int) { self.timeAxis = timeAxis }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0), lensTensor = try requiredInput(inputs, 1)
        guard x.rank >= 2 else { throw KernelError.invalid("ReverseSequence input must have rank >= 2, got shape \(x.shape)") }
        guard let width = x.elementType.bitWidth, width % 8 == 0 else {
            throw KernelError.unsupported("ReverseSequence of \(x.elementType) tensors")
        }
        let batchAxis = 1 - timeAxis
        let steps = x.shape[timeAxis], batch = x.shape[batchAxis]
        guard lensTensor.elementType == .int64 || lensTensor.elementType == .int32, let lens = lensTensor.integers(),
              lens.count == batch else {
            throw KernelError.invalid("ReverseSequence sequence_lens must hold \(batch) integers (one per batch entry)")
        }
        for l in lens where l < 0 || l > steps {
            throw KernelError.invalid("ReverseSequence sequence length \(l) is outside 0...\(steps)")
        }
        let out = try outputs.allocate(0, x.elementType, x.shape)
        let rowBytes = x.shape[2...].reduce(1, *) * width / 8
        if out.rawPointer != x.rawPointer && x.byteCount > 0 { memmove(out.rawPointer, x.rawPointer, x.byteCount) }
        guard rowBytes > 0 else { return }
        let base = out.rawPointer
        func row(_ t: Int, _ b: Int) -> UnsafeMutableRawPointer {
            base + (timeAxis == 0 ? t * batch + b : b * steps + t) * rowBytes
        }
        withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 16) { scratch in
            guard let temp = scratch.baseAddress else { return }
            for b in 0..<batch {
                for t in 0..<(lens[b] / 2) {
                    let p = row(t, b), q = row(lens[b] - 1 - t, b)
                    temp.copyMemory(from: p, byteCount: rowBytes)
                    p.copyMemory(from: q, byteCount: rowBytes)
                    q.copyMemory(from: temp, byteCount: rowBytes)
                }
            }
        }
    }
}
