/// A product of symbols raised to positive powers, e.g. `batch*seq^2`. The empty
/// monomial is the constant 1.
public struct Monomial: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Symbol name and power, sorted by name, powers > 0.
    public let factors: [Factor]

    public struct Factor: Hashable, Sendable {
        public let symbol: String
        public let power: Int
    }

    public static let one = Monomial(factors: [])

    public init(symbol: String) { factors = [Factor(symbol: symbol, power: 1)] }

    init(factors: [Factor]) { self.factors = factors }

    public var degree: Int { factors.reduce(0) { $0 + $1.power } }
    public var isConstant: Bool { factors.isEmpty }

    public static func * (lhs: Monomial, rhs: Monomial) -> Monomial {
        var powers: [String: Int] = [:]
        for f in lhs.factors + rhs.factors { powers[f.symbol, default: 0] += f.power }
        return Monomial(factors: powers.sorted { $0.key < $1.key }.map { Factor(symbol: $0.key, power: $0.value) })
    }

    /// Higher degree first, then by name, so printed polynomials read `a*seq^2 + b*seq + c`.
    public static func < (lhs: Monomial, rhs: Monomial) -> Bool {
        if lhs.degree != rhs.degree { return lhs.degree > rhs.degree }
        return lhs.description < rhs.description
    }

    public var description: String {
        factors.map { $0.power == 1 ? $0.symbol : "\($0.symbol)^\($0.power)" }.joined(separator: "*")
    }
}

/// What a polynomial's coefficients must support.
public protocol PolynomialCoefficient: Hashable, Sendable {
    static var zero: Self { get }
    static var one: Self { get }
    /// Sum; integer coefficients saturate instead of trapping on overflow, so a
    /// hostile shape yields a huge dim that limits reject rather than a crash.
    static func adding(_ lhs: Self, _ rhs: Self) -> Self
    static func multiplying(_ lhs: Self, _ rhs: Self) -> Self
    static func negating(_ value: Self) -> Self
}

extension Int: PolynomialCoefficient {
    public static var one: Int { 1 }
    public static func adding(_ lhs: Int, _ rhs: Int) -> Int {
        let (r, o) = lhs.addingReportingOverflow(rhs)
        return o ? (rhs > 0 ? .max : .min) : r
    }
    public static func multiplying(_ lhs: Int, _ rhs: Int) -> Int {
        let (r, o) = lhs.multipliedReportingOverflow(by: rhs)
        return o ? ((lhs < 0) != (rhs < 0) ? .min : .max) : r
    }
    public static func negating(_ value: Int) -> Int { value == .min ? .max : -value }
}

extension Double: PolynomialCoefficient {
    public static var one: Double { 1 }
    public static func adding(_ lhs: Double, _ rhs: Double) -> Double { lhs + rhs }
    public static func multiplying(_ lhs: Double, _ rhs: Double) -> Double { lhs * rhs }
    public static func negating(_ value: Double) -> Double { -value }
}

/// A polynomial in named symbols (dynamic dims such as `batch` or `seq`).
/// Dims use integer coefficients; costs use `Double` coefficients. The constant term is
/// stored apart from the symbolic ones, so arithmetic on known numbers (the common case
/// once dims are bound) allocates nothing.
public struct Polynomial<Coefficient: PolynomialCoefficient>: Hashable, Sendable {
    /// The constant term.
    public private(set) var constant: Coefficient
    /// Non-zero terms with at least one symbol.
    public private(set) var symbolic: [Monomial: Coefficient]

    /// Every non-zero term, the constant under `Monomial.one`.
    public var terms: [Monomial: Coefficient] {
        var t = symbolic
        if constant != .zero { t[.one] = constant }
        return t
    }

    public init(terms: [Monomial: Coefficient]) {
        constant = terms[.one] ?? .zero
        symbolic = terms.filter { !$0.key.isConstant && $0.value != .zero }
    }

    public init(_ constant: Coefficient) {
        self.constant = constant
        symbolic = [:]
    }

    public init(symbol: String) {
        constant = .zero
        symbolic = [Monomial(symbol: symbol): Coefficient.one]
    }

    public static var zero: Polynomial { Polynomial(Coefficient.zero) }

    /// The value when the polynomial has no symbols.
    public var constantValue: Coefficient? { symbolic.isEmpty ? constant : nil }

    public var isConstant: Bool { symbolic.isEmpty }

    /// Every symbol that appears, sorted.
    public var symbols: [String] {
        Array(Set(symbolic.keys.flatMap { $0.factors.map(\.symbol) })).sorted()
    }

    /// Terms ordered for printing: highest degree first.
    public var sortedTerms: [(monomial: Monomial, coefficient: Coefficient)] {
        terms.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public static func + (lhs: Polynomial, rhs: Polynomial) -> Polynomial {
        var result = lhs
        result.constant = Coefficient.adding(lhs.constant, rhs.constant)
        if rhs.symbolic.isEmpty { return result }
        for (m, c) in rhs.symbolic {
            let sum = Coefficient.adding(result.symbolic[m] ?? .zero, c)
            result.symbolic[m] = sum == .zero ? nil : sum
        }
        return result
    }

    public static prefix func - (value: Polynomial) -> Polynomial {
        var result = value
        result.constant = Coefficient.negating(value.constant)
        if !value.symbolic.isEmpty { result.symbolic = value.symbolic.mapValues { Coefficient.negating($0) } }
        return result
    }

    public static func - (lhs: Polynomial, rhs: Polynomial) -> Polynomial { lhs + (-rhs) }

    public static func * (lhs: Polynomial, rhs: Polynomial) -> Polynomial {
        if lhs.symbolic.isEmpty && rhs.symbolic.isEmpty {
            return Polynomial(Coefficient.multiplying(lhs.constant, rhs.constant))
        }
        var t: [Monomial: Coefficient] = [:]
        for (m1, c1) in lhs.terms {
            for (m2, c2) in rhs.terms {
                let m = m1 * m2
                t[m] = Coefficient.adding(t[m] ?? .zero, Coefficient.multiplying(c1, c2))
            }
        }
        return Polynomial(terms: t)
    }

    /// Substitutes the bound symbols; symbols left unbound stay.
    public func substituting(_ values: [String: Coefficient]) -> Polynomial {
        if symbolic.isEmpty { return self }
        var result = Polynomial(constant)
        for (m, c) in symbolic {
            var term = Polynomial(c)
            for f in m.factors {
                if let v = values[f.symbol] {
                    for _ in 0..<f.power { term = term * Polynomial(v) }
                } else {
                    term = term * Polynomial(terms: [Monomial(factors: [f]): Coefficient.one])
                }
            }
            result = result + term
        }
        return result
    }

    /// Maps coefficients into another coefficient type (e.g. Int dims into Double costs).
    public func mapCoefficients<T: PolynomialCoefficient>(_ transform: (Coefficient) -> T) -> Polynomial<T> {
        var result = Polynomial<T>(transform(constant))
        if !symbolic.isEmpty { result.symbolic = symbolic.mapValues(transform).filter { $0.value != .zero } }
        return result
    }
}

extension Polynomial: CustomStringConvertible {
    public var description: String { render { "\($0)" } }

    /// Renders as `c1*m1 + c2*m2 + c0`, formatting each coefficient with `format`.
    public func render(_ format: (Coefficient) -> String) -> String {
        if symbolic.isEmpty { return format(constant) }
        var out = ""
        for (i, term) in sortedTerms.enumerated() {
            var coefficient = format(term.coefficient)
            var negative = false
            if coefficient.hasPrefix("-") { negative = true; coefficient.removeFirst() }
            let body: String
            if term.monomial.isConstant {
                body = coefficient
            } else if coefficient == "1" {
                body = term.monomial.description
            } else {
                body = "\(coefficient)*\(term.monomial)"
            }
            if i == 0 { out = negative ? "-" + body : body } else { out += negative ? " - " + body : " + " + body }
        }
        return out
    }
}
