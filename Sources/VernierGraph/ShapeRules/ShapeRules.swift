/// The registry of our shape rules, one entry per op type of the default ONNX domain.
/// Each family of ops keeps its rules in a file named after it (`Conv.swift`,
/// `Pool.swift`, ...), the same file name its cost formulas and kernels use.
public enum ShapeRules {
    static let table: [String: ShapeRule] = {
        opRegistry([
            ElementwiseRules.all, ConvRules.all, MatMulRules.all, PoolRules.all, NormalizationRules.all,
            ReduceRules.all, ShapeOpRules.all, DataMovementRules.all, RecurrentRules.all,
            QuantizationRules.all, ControlFlowRules.all,
        ], kind: "shape rule")
    }()

    /// The rule for a default-domain op.
    public static func rule(for opType: String) -> ShapeRule? { table[opType] }

    /// Rules for ops of custom domains (`com.microsoft` fusions that exporters emit).
    static func customRule(domain: String, op: String) -> ShapeRule? {
        guard domain == "com.microsoft" else { return nil }
        return CustomDomainRules.all[op]
    }

    /// Every default-domain op type with a rule, sorted.
    public static var supportedOps: [String] { table.keys.sorted() }
}

/// One table from per-family tables keyed by op type; an op in two families is a
/// programming error (each op's entry lives in one file). Used by the shape rules and
/// the cost formulas alike.
public func opRegistry<Entry>(_ families: [[String: Entry]], kind: String) -> [String: Entry] {
    var table: [String: Entry] = [:]
    for family in families {
        for (op, entry) in family {
            precondition(table[op] == nil, "two \(kind)s for \(op)")
            table[op] = entry
        }
    }
    return table
}

// MARK: - Helpers shared by the rule families

/// Output 0 has the type and shape of input 0 (and optionally its contents).
func sameAsInput(_ ctx: RuleContext) throws -> [ValueFacts] {
    [.tensor(try ctx.elementType(0), try ctx.shape(0))]
}

/// NumPy-style multidirectional broadcasting of shapes.
func broadcast(_ shapes: [[Dim]]) throws -> [Dim] {
    let rank = shapes.map(\.count).max() ?? 0
    var result: [Dim] = []
    result.reserveCapacity(rank)
    for i in 0..<rank {
        var dim = Dim.value(1)
        for s in shapes {
            let j = i - (rank - s.count)
            guard j >= 0 else { continue }
            let d = s[j]
            if d == .value(1) || d == dim { continue }
            if dim == .value(1) { dim = d; continue }
            if let a = dim.intValue, let b = d.intValue, a != b {
                throw ShapeError("shapes \(shapes.map(\.shapeDescription).joined(separator: " and ")) cannot be broadcast")
            }
            // A known size beats a symbol (the symbol must equal it at run time).
            if d.isConstant { dim = d } else if !dim.isConstant { dim = .maximum(dim, d) }
        }
        result.append(dim)
    }
    return result
}

/// Row-major strides of a known shape.
func strides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        s[i] = acc
        acc = Int.multiplying(acc, shape[i])
    }
    return s
}

/// Applies `op` element by element to broadcast constant operands, when all shapes
/// are known and small.
func broadcastConstants<T>(_ operands: [[T]], shapes: [[Dim]], outShape: [Dim], op: ([T]) -> T?) -> [T]? {
    guard let out = outShape.knownElementCount, out <= 1 << 16 else { return nil }
    let knownOut = outShape.compactMap(\.intValue)
    var known: [[Int]] = []
    for s in shapes {
        let k = s.compactMap(\.intValue)
        guard k.count == s.count else { return nil }
        known.append(k)
    }
    for (values, shape) in zip(operands, known) where values.count != (shape.reduce(1, *)) { return nil }
    var result: [T] = []
    result.reserveCapacity(out)
    let outStrides = strides(knownOut)
    for flat in 0..<out {
        var args: [T] = []
        for (values, shape) in zip(operands, known) {
            var index = 0
            var step = 1
            for axis in Swift.stride(from: shape.count - 1, through: 0, by: -1) {
                let outAxis = axis + knownOut.count - shape.count
                let coordinate = (flat / outStrides[outAxis]) % knownOut[outAxis]
                index += (shape[axis] == 1 ? 0 : coordinate) * step
                step *= shape[axis]
            }
            args.append(values[index])
        }
        guard let v = op(args) else { return nil }
        result.append(v)
    }
    return result
}

extension RuleContext {
    /// Spatial output size of a sliding window (Conv, pooling) along one axis.
    func windowOutput(input: Dim, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int,
                      autoPad: String, ceilMode: Bool) throws -> Dim {
        guard stride > 0, dilation > 0, kernel > 0 else {
            throw ShapeError("kernel \(kernel), stride \(stride) and dilation \(dilation) must be positive")
        }
        let effective = Int.adding(Int.multiplying(kernel - 1, dilation), 1)
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            return input.ceilDivided(by: .value(stride))
        case "VALID":
            return (input - .value(effective) + .value(1)).ceilDivided(by: .value(stride))
        case "NOTSET", "":
            let span = input + .value(Int.adding(padBegin, padEnd)) - .value(effective)
            if let s = span.intValue, s < 0 {
                throw ShapeError("the window (\(effective) wide with dilation) is larger than the padded input \(input)")
            }
            if ceilMode {
                var out = span.ceilDivided(by: .value(stride)) + .value(1)
                // The last window must start inside the input or its left padding.
                if let o = out.intValue, let i = input.intValue, (o - 1) * stride >= i + padBegin { out = .value(o - 1) }
                return out
            }
            return span.floorDivided(by: .value(stride)) + .value(1)
        default:
            throw ShapeError("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
    }
}
