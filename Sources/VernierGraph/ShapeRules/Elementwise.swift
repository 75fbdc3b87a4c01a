import Foundation

/// Shape rules of element-wise ops: unary maps, broadcasting binary and variadic ops,
/// comparisons, Where. Integer constants flow through the arithmetic that exporters
/// use in shape chains (Add, Sub, Mul, Div, Equal, Where, ...).
enum ElementwiseRules {
    static let unaryOps = [
        "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Gelu", "Softplus", "Softsign",
        "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
        "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Elu", "Selu", "Celu", "ThresholdedRelu", "Mish", "Sign",
        "Shrink", "BitwiseNot", "Clip", "Trilu", "CumSum", "ReverseSequence",
    ]
    static let binaryArithmetic = ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]
    static let comparisons = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"]
    static let variadic = ["Max", "Min", "Sum", "Mean"]

    static var all: [String: ShapeRule] {
        var rules: [String: ShapeRule] = [:]
        for op in unaryOps { rules[op] = sameAsInput }
        rules["Neg"] = { ctx in try unaryInt(ctx) { -$0 } }
        rules["Abs"] = { ctx in try unaryInt(ctx) { $0.intValue.map { .value(abs($0)) } } }
        rules["Identity"] = { ctx in [ValueFacts(type: try ctx.type(0), constant: ctx.constant(0))] }
        rules["Not"] = { ctx in
            let c = ctx.constant(0)?.knownInts.map { ConstantValue.ints($0.map { .value($0 == 0 ? 1 : 0) }) }
            return [.tensor(.bool, try ctx.shape(0), constant: c)]
        }
        rules["IsNaN"] = { ctx in [.tensor(.bool, try ctx.shape(0))] }
        rules["IsInf"] = { ctx in [.tensor(.bool, try ctx.shape(0))] }
        rules["PRelu"] = { ctx in [.tensor(try ctx.elementType(0), try broadcast([ctx.shape(0), ctx.shape(1)]))] }
        rules["Dropout"] = { ctx in
            let shape = try ctx.shape(0)
            return [ValueFacts(type: try ctx.type(0), constant: ctx.constant(0)), .tensor(.bool, shape)]
        }
        for op in binaryArithmetic { rules[op] = { ctx in try binary(ctx, op: op) } }
        for op in comparisons { rules[op] = { ctx in try comparison(ctx, op: op) } }
        for op in variadic { rules[op] = { ctx in try variadicRule(ctx, op: op) } }
        rules["Where"] = whereRule
        return rules
    }

    static func unaryInt(_ ctx: RuleContext, _ f: (Dim) -> Dim?) throws -> [ValueFacts] {
        var constant: ConstantValue?
        if case .ints(let v)? = ctx.constant(0) {
            let mapped = v.compactMap(f)
            if mapped.count == v.count { constant = .ints(mapped) }
        }
        return [.tensor(try ctx.elementType(0), try ctx.shape(0), constant: constant)]
    }

    static func binary(_ ctx: RuleContext, op: String) throws -> [ValueFacts] {
        let a = try ctx.shape(0), b = try ctx.shape(1)
        let out = try broadcast([a, b])
        let element = try ctx.elementType(0)
        var constant: ConstantValue?
        if case .ints(let x)? = ctx.constant(0), case .ints(let y)? = ctx.constant(1), element.isInteger {
            let f: (([Dim]) -> Dim?)? = switch op {
            case "Add": { $0[0] + $0[1] }
            case "Sub": { $0[0] - $0[1] }
            case "Mul": { $0[0] * $0[1] }
            case "Div": { args in
                guard let d = args[1].intValue, d != 0 else { return nil }
                // ONNX integer Div truncates toward zero.
                if let n = args[0].intValue { return .value(n / d) }
                return args[0].floorDivided(by: args[1])
            }
            case "Mod": { args in
                guard let d = args[1].intValue, d != 0, let n = args[0].intValue else { return nil }
                let r = n % d
                return .value(r != 0 && (r < 0) != (d < 0) ? r + d : r)
            }
            default: nil
            }
            if let f, let values = broadcastConstants([x, y], shapes: [a, b], outShape: out, op: f) { constant = .ints(values) }
        } else if let x = ctx.constant(0)?.doubles, let y = ctx.constant(1)?.doubles, element.isFloatingPoint {
            let f: (([Double]) -> Double?)? = switch op {
            case "Add": { $0[0] + $0[1] }
            case "Sub": { $0[0] - $0[1] }
            case "Mul": { $0[0] * $0[1] }
            case "Div": { $0[0] / $0[1] }
            case "Pow": { Foundation.pow($0[0], $0[1]) }
            default: nil
            }
            if let f, let values = broadcastConstants([x, y], shapes: [a, b], outShape: out, op: f) { constant = .floats(values) }
        }
        return [.tensor(element, out, constant: constant)]
    }

    static func comparison(_ ctx: RuleContext, op: String) throws -> [ValueFacts] {
        let a = try ctx.shape(0), b = try ctx.shape(1)
        let out = try broadcast([a, b])
        var constant: ConstantValue?
        if case .ints(let x)? = ctx.constant(0), case .ints(let y)? = ctx.constant(1) {
            let f: ([Dim]) -> Dim? = { args in
                if op == "Equal" && args[0] == args[1] { return .value(1) }
                // A dim taken from a shape is never negative, so it differs from -1
                // (the exporters' "keep this dim" marker in Expand and Reshape chains).
                if op == "Equal", args.contains(where: { ($0.intValue ?? 0) < 0 }), args.contains(where: { !$0.isConstant }) {
                    return .value(0)
                }
                guard let p = args[0].intValue, let q = args[1].intValue else { return nil }
                let r: Bool = switch op {
                case "Equal": p == q
                case "Less": p < q
                case "Greater": p > q
                case "LessOrEqual": p <= q
                case "GreaterOrEqual": p >= q
                case "And": p != 0 && q != 0
                case "Or": p != 0 || q != 0
                default: (p != 0) != (q != 0)
                }
                return .value(r ? 1 : 0)
            }
            if let values = broadcastConstants([x, y], shapes: [a, b], outShape: out, op: f) { constant = .ints(values) }
        }
        return [.tensor(.bool, out, constant: constant)]
    }

    static func variadicRule(_ ctx: RuleContext, op: String) throws -> [ValueFacts] {
        let indices = (0..<ctx.inputCount).filter(ctx.hasInput)
        guard let first = indices.first else { throw ShapeError("needs at least one input") }
        let shapes = try indices.map(ctx.shape)
        let out = try broadcast(shapes)
        var constant: ConstantValue?
        let consts = indices.compactMap { i -> [Dim]? in
            if case .ints(let v)? = ctx.constant(i) { return v }
            return nil
        }
        if consts.count == indices.count, op == "Max" || op == "Min" {
            let f: ([Dim]) -> Dim? = { args in
                args.dropFirst().reduce(args[0]) { op == "Max" ? .maximum($0, $1) : .minimum($0, $1) }
            }
            if let values = broadcastConstants(consts, shapes: shapes, outShape: out, op: f) { constant = .ints(values) }
        }
        return [.tensor(try ctx.elementType(first), out, constant: constant)]
    }

    static func whereRule(_ ctx: RuleContext) throws -> [ValueFacts] {
        let c = try ctx.shape(0), x = try ctx.shape(1), y = try ctx.shape(2)
        let out = try broadcast([c, x, y])
        var constant: ConstantValue?
        if case .ints(let cv)? = ctx.constant(0), case .ints(let xv)? = ctx.constant(1), case .ints(let yv)? = ctx.constant(2) {
            let f: ([Dim]) -> Dim? = { args in
                guard let cond = args[0].intValue else { return nil }
                return cond != 0 ? args[1] : args[2]
            }
            if let values = broadcastConstants([cv, xv, yv], shapes: [c, x, y], outShape: out, op: f) { constant = .ints(values) }
        }
        return [.tensor(try ctx.elementType(1), out, constant: constant)]
    }
}
