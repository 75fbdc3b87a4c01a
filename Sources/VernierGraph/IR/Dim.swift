/// One dimension of a tensor shape: a known size, or a polynomial in named symbols
/// (`batch`, `seq`, `2*seq`). Non-polynomial results (floor division of a symbol,
/// min/max) become an opaque symbol whose name spells the expression.
public typealias Dim = Polynomial<Int>

extension Polynomial where Coefficient == Int {
    /// A dimension of known size.
    public static func value(_ n: Int) -> Dim { Dim(n) }

    /// A named symbolic dimension (`dim_param` in ONNX).
    public static func symbol(_ name: String) -> Dim { Dim(symbol: name) }

    /// The size, when known.
    public var intValue: Int? { constantValue }

    /// `self / divisor` rounded down; exact polynomial division when every coefficient
    /// divides, else an opaque symbol.
    public func floorDivided(by divisor: Dim) -> Dim {
        if let d = divisor.intValue, d != 0 {
            if let v = intValue { return .value(Self.dividing(v, by: d, roundingUp: false)) }
            if terms.values.allSatisfy({ $0 % d == 0 }) {
                return Dim(terms: terms.mapValues { $0 / d })
            }
        }
        if divisor == .value(1) { return self }
        return .symbol("floor((\(self))/(\(divisor)))")
    }

    /// `self / divisor` rounded up.
    public func ceilDivided(by divisor: Dim) -> Dim {
        if let d = divisor.intValue, d != 0 {
            if let v = intValue { return .value(Self.dividing(v, by: d, roundingUp: true)) }
            if terms.values.allSatisfy({ $0 % d == 0 }) {
                return Dim(terms: terms.mapValues { $0 / d })
            }
        }
        if divisor == .value(1) { return self }
        return .symbol("ceil((\(self))/(\(divisor)))")
    }

    /// The smaller of two dims; opaque when it cannot be decided.
    public static func minimum(_ a: Dim, _ b: Dim) -> Dim {
        if a == b { return a }
        if let x = a.intValue, let y = b.intValue { return .value(Swift.min(x, y)) }
        return .symbol("min(\(a), \(b))")
    }

    /// The larger of two dims; opaque when it cannot be decided.
    public static func maximum(_ a: Dim, _ b: Dim) -> Dim {
        if a == b { return a }
        if let x = a.intValue, let y = b.intValue { return .value(Swift.max(x, y)) }
        return .symbol("max(\(a), \(b))")
    }

    /// `a mod b` for known values; opaque otherwise.
    public static func modulo(_ a: Dim, _ b: Dim) -> Dim {
        if let x = a.intValue, let y = b.intValue, y != 0 { return .value(x % y) }
        return .symbol("(\(a)) mod (\(b))")
    }
}

extension Array where Element == Dim {
    /// Product of the dims; a polynomial when some are symbolic.
    public var product: Dim { reduce(Dim.value(1), *) }

    /// Product when every dim is known, nil on a symbol or Int64 overflow.
    public var knownElementCount: Int? {
        var total = 1
        for d in self {
            guard let v = d.intValue, v >= 0 else { return nil }
            let (p, o) = total.multipliedReportingOverflow(by: v)
            if o { return nil }
            total = p
        }
        return total
    }

    /// `1x3x224x224`, symbols spelled out.
    public var shapeDescription: String {
        "[" + map { $0.isConstant ? $0.description : $0.description.contains(" ") ? "(\($0))" : $0.description }.joined(separator: ",") + "]"
    }
}

extension Polynomial where Coefficient == Int {
    /// `self / divisor` when it divides exactly as polynomials: a constant divisor
    /// dividing every coefficient, or a one-term divisor whose monomial divides every term.
    public func exactlyDivided(by divisor: Dim) -> Dim? {
        if let d = divisor.intValue {
            guard d != 0, terms.values.allSatisfy({ $0 % d == 0 }) else { return nil }
            return Dim(terms: terms.mapValues { $0 / d })
        }
        guard divisor.terms.count == 1, let (dm, dc) = divisor.terms.first.map({ ($0.key, $0.value) }), dc != 0 else { return nil }
        var result: [Monomial: Int] = [:]
        for (m, c) in terms {
            guard c % dc == 0 else { return nil }
            var powers: [String: Int] = [:]
            for f in m.factors { powers[f.symbol] = f.power }
            for f in dm.factors {
                guard let p = powers[f.symbol], p >= f.power else { return nil }
                powers[f.symbol] = p - f.power == 0 ? nil : p - f.power
            }
            let quotient = Monomial(factors: powers.sorted { $0.key < $1.key }.map { Monomial.Factor(symbol: $0.key, power: $0.value) })
            result[quotient] = c / dc
        }
        return Dim(terms: result)
    }
}

extension Polynomial where Coefficient == Int {
    /// `v / d` rounded down or up, in integers (through Double, sizes near Int.max
    /// trapped on the way back); Int.min / -1 saturates like the polynomial arithmetic.
    static func dividing(_ v: Int, by d: Int, roundingUp: Bool) -> Int {
        let (q, overflow) = v.dividedReportingOverflow(by: d)
        guard !overflow else { return Int.max }
        let r = v - q * d
        guard r != 0 else { return q }
        let positive = (r > 0) == (d > 0)  // the true quotient is above q
        return roundingUp ? (positive ? q + 1 : q) : (positive ? q : q - 1)
    }
}

extension Int {
    /// `value` truncated toward zero when it is finite and well inside Int64's range,
    /// else nil: sizes computed in floating point (Resize scales, Range counts) come
    /// from the model and may be NaN, infinite or huge, and `Int(_:)` traps on those.
    public init?(ifRepresentable value: Double) {
        guard value.isFinite, value.magnitude < 0x1p62 else { return nil }
        self = Int(value)
    }
}
