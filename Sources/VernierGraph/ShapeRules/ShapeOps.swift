/// Shape rules of ops that make or describe tensors: Shape, Size, Cast, CastLike,
/// Constant, ConstantOfShape, Range, EyeLike, OneHot, NonZero and the random generators.
/// Their outputs' contents are propagated when known, for shape chains.
enum ShapeOpRules {
    static var all: [String: ShapeRule] {
        [
            "Shape": shape,
            "Size": { ctx in
                let n = try ctx.shape(0).product
                return [.tensor(.int64, [], constant: .ints([n]))]
            },
            "Cast": { ctx in
                guard let to = ElementType(rawValue: try ctx.node.int("to")) else {
                    throw ShapeError("attribute 'to' is not a known element type")
                }
                return [.tensor(to, try ctx.shape(0), constant: cast(ctx.constant(0), to: to))]
            },
            "CastLike": { ctx in
                let to = try ctx.elementType(1)
                return [.tensor(to, try ctx.shape(0), constant: cast(ctx.constant(0), to: to))]
            },
            "Constant": constant,
            "ConstantOfShape": constantOfShape,
            "Range": range,
            "EyeLike": { ctx in
                let dtype = try ctx.node.int("dtype", default: -1)
                let element = dtype >= 0 ? (ElementType(rawValue: dtype) ?? .float) : try ctx.elementType(0)
                return [.tensor(element, try ctx.shape(0))]
            },
            "OneHot": { ctx in
                let indices = try ctx.shape(0)
                let depth = try ctx.requireDims(1)
                guard depth.count == 1 else { throw ShapeError("depth must hold one value") }
                let axis = try ctx.axis(try ctx.node.int("axis", default: -1), rank: indices.count + 1)
                var out = indices
                out.insert(depth[0], at: axis)
                return [.tensor(try ctx.elementType(2), out)]
            },
            "NonZero": { ctx in
                let x = try ctx.shape(0)
                return [.tensor(.int64, [.value(x.count), .symbol("nonzero(\(ctx.node.displayName))")])]
            },
            "RandomNormalLike": randomLike,
            "RandomUniformLike": randomLike,
            "Bernoulli": randomLike,
            "RandomNormal": random,
            "RandomUniform": random,
        ]
    }

    static func shape(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let r = x.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let start = clamp(try ctx.node.int("start", default: 0))
        let end = clamp(try ctx.node.int("end", default: r))
        let dims = start < end ? Array(x[start..<end]) : []
        return [.tensor(.int64, [.value(dims.count)], constant: .ints(dims))]
    }

    static func cast(_ value: ConstantValue?, to: ElementType) -> ConstantValue? {
        guard let value else { return nil }
        if to.isInteger || to == .bool {
            switch value {
            case .ints(let v): return .ints(to == .bool ? v.map { $0 == .value(0) ? .value(0) : ($0.isConstant ? .value(1) : $0) } : v)
            case .floats(let v): return .ints(v.map { to == .bool ? .value($0 != 0 ? 1 : 0) : .value(Int(exactly: $0.rounded(.towardZero)) ?? 0) })
            }
        }
        if to.isFloatingPoint { return value.doubles.map(ConstantValue.floats) }
        return nil
    }

    static func constant(_ ctx: RuleContext) throws -> [ValueFacts] {
        let node = ctx.node
        if let t = try node.tensor("value") {
            var constant: ConstantValue?
            if t.elementCount <= 1 << 16 {
                if t.elementType.isInteger || t.elementType == .bool {
                    constant = t.integerValues().map { .ints($0.map(Dim.value)) }
                } else if t.elementType.isFloatingPoint {
                    constant = t.doubleValues().map(ConstantValue.floats)
                }
            }
            return [ValueFacts(type: t.type, constant: constant)]
        }
        if node.hasAttribute("value_float") { return [.tensor(.float, [], constant: .floats([Double(try node.float("value_float"))]))] }
        if let v = try node.floats("value_floats") { return [.tensor(.float, [.value(v.count)], constant: .floats(v.map(Double.init)))] }
        if node.hasAttribute("value_int") { return [.tensor(.int64, [], constant: .ints([.value(try node.int("value_int"))]))] }
        if let v = try node.ints("value_ints") { return [.tensor(.int64, [.value(v.count)], constant: .ints(v.map(Dim.value)))] }
        if node.hasAttribute("value_string") { return [.tensor(.string, [])] }
        if let v = try node.strings("value_strings") { return [.tensor(.string, [.value(v.count)])] }
        if case .sparseTensor(let t)? = node.attribute("sparse_value") { return [ValueFacts(type: t)] }
        throw ShapeError("Constant has none of value, value_float(s), value_int(s), value_string(s), sparse_value")
    }

    static func constantOfShape(_ ctx: RuleContext) throws -> [ValueFacts] {
        let dims = try ctx.requireDims(0)
        if let bad = dims.first(where: { ($0.intValue ?? 0) < 0 }) { throw ShapeError("shape has a negative dim \(bad)") }
        var element = ElementType.float
        var fill: ConstantValue = .floats([0])
        if let t = try ctx.node.tensor("value") {
            element = t.elementType
            if element.isInteger || element == .bool, let v = t.integerValues()?.first { fill = .ints([.value(v)]) }
            else if let v = t.doubleValues()?.first { fill = .floats([v]) }
        }
        var constant: ConstantValue?
        if let n = dims.knownElementCount, n <= 1 << 16 {
            switch fill {
            case .ints(let v): constant = .ints(Array(repeating: v[0], count: n))
            case .floats(let v): constant = .floats(Array(repeating: v[0], count: n))
            }
        }
        return [.tensor(element, dims, constant: constant)]
    }

    static func range(_ ctx: RuleContext) throws -> [ValueFacts] {
        let element = try ctx.elementType(0)
        if element.isInteger, let s = ctx.constant(0)?.dims.first, let l = ctx.constant(1)?.dims.first,
           let d = ctx.constant(2)?.knownInts?.first, d != 0 {
            // max(ceil((limit - start) / delta), 0)
            let span = l - s
            let count: Dim
            if let v = span.intValue {
                guard let n = Int(ifRepresentable: (Double(v) / Double(d)).rounded(.up)) else {
                    throw ShapeError("Range from \(s) to \(l) by \(d) has too many elements")
                }
                count = .value(max(0, n))
            } else {
                count = d > 0 ? span.ceilDivided(by: .value(d)) : (s - l).ceilDivided(by: .value(-d))
            }
            var constant: ConstantValue?
            if let n = count.intValue, n <= 1 << 16, !(n - 1).multipliedReportingOverflow(by: d).overflow {
                constant = .ints((0..<n).map { s + .value($0 * d) })
            }
            return [.tensor(element, [count], constant: constant)]
        }
        if let s = ctx.constant(0)?.doubles?.first, let l = ctx.constant(1)?.doubles?.first,
           let d = ctx.constant(2)?.doubles?.first, d != 0 {
            guard let count = Int(ifRepresentable: ((l - s) / d).rounded(.up)) else {
                throw ShapeError("Range from \(s) to \(l) by \(d) has no finite element count")
            }
            let n = max(0, count)
            return [.tensor(element, [.value(n)], constant: n <= 1 << 16 ? .floats((0..<n).map { s + Double($0) * d }) : nil)]
        }
        return [.tensor(element, [.symbol("range(\(ctx.node.displayName))")])]
    }

    static func randomLike(_ ctx: RuleContext) throws -> [ValueFacts] {
        let dtype = try ctx.node.int("dtype", default: -1)
        let element = dtype >= 0 ? (ElementType(rawValue: dtype) ?? .float) : try ctx.elementType(0)
        return [.tensor(element, try ctx.shape(0))]
    }

    static func random(_ ctx: RuleContext) throws -> [ValueFacts] {
        let element = ElementType(rawValue: try ctx.node.int("dtype", default: 1)) ?? .float
        guard let shape = try ctx.node.ints("shape") else { throw ShapeError("attribute 'shape' is required") }
        return [.tensor(element, shape.map(Dim.value))]
    }
}
