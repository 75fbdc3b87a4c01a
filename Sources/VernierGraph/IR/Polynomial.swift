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
/// Dims use integer coefficients; costs use `Double` coefficients.
public struct Polynomial<Coefficient: PolynomialCoefficient>: Hashable, Sendable {
    /// Non-zero terms.
    public private(set) var terms: [Monomial: Coefficient]

    public init(terms: [Monomial: Coefficient]) {
        self.terms = terms.filter { $0.value != .zero }
    }

    public init(_ constant: Coefficient) {
        self.init(terms: [.one: constant])
    }

    public init(symbol: String) {
        self.init(terms: [Monomial(symbol: symbol): Coefficient.one])
    }

    public static var zero: Polynomial { Polynomial(terms: [:]) }

    /// The value when the polynomial has no symbols.
    public var constantValue: Coefficient? {
        if terms.isEmpty { return .zero }
        if terms.count == 1, let c = terms[.one] { return c }
        return nil
    }

    public var isConstant: Bool { constantValue != nil }

    /// Every symbol that appears, sorted.
    public var symbols: [String] {
        Array(Set(terms.keys.flatMap { $0.factors.map(\.symbol) })).sorted()
    }

    /// Terms ordered for printing: highest degree first.
    public var sortedTerms: [(monomial: Monomial, coefficient: Coefficient)] {
        terms.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public static func + (lhs: Polynomial, rhs: Polynomial) -> Polynomial {
        var t = lhs.terms
        for (m, c) in rhs.terms { t[m] = Coefficient.adding(t[m] ?? .zero, c) }
        return Polynomial(terms: t)
    }

    public static prefix func - (value: Polynomial) -> Polynomial {
        Polynomial(terms: value.terms.mapValues { Coefficient.negating($0) })
    }

    public static func - (lhs: Polynomial, rhs: Polynomial) -> Polynomial { lhs + (-rhs) }

    public static func * (lhs: Polynomial, rhs: Polynomial) -> Polynomial {
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
        var result = Polynomial.zero
        for (m, c) in terms {
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
        Polynomial<T>(terms: terms.mapValues(transform))
    }
}

extension Polynomial: CustomStringConvertible {
    public var description: String { render { "\($0)" } }

    /// Renders as `c1*m1 + c2*m2 + c0`, formatting each coefficient with `format`.
    public func render(_ format: (Coefficient) -> String) -> String {
        if terms.isEmpty { return format(.zero) }
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
