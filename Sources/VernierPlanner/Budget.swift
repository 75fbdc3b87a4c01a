import Foundation
import Yams

/// A deployment budget: the limits a model must meet, and where to measure them.
///
/// Written as YAML or JSON (JSON is YAML), e.g.
///
///     latency:
///       ms: 15          # limit on the end-to-end latency
///       percentile: 90  # 50, 90 or 99 (default 90)
///     memory_mb: 64     # peak memory, MiB (2^20 bytes)
///     size_mb: 20       # model file plus external data, MiB
///     threads: 2
///     device: host
///
/// `latency_ms: 15` is accepted for `latency: {ms: 15}`. Unknown keys are errors, so a
/// typo never silently drops a limit.
public struct Budget: Equatable, Sendable {
    public var latencyMs: Double?
    /// Which percentile of the end-to-end latency the latency limit applies to.
    public var percentile: Int = 90
    public var memoryMiB: Double?
    public var sizeMiB: Double?
    public var threads: Int?
    /// A device name or device profile file; nil or `host` means this machine.
    public var device: String?

    public init(latencyMs: Double? = nil, percentile: Int = 90, memoryMiB: Double? = nil, sizeMiB: Double? = nil,
                threads: Int? = nil, device: String? = nil) {
        self.latencyMs = latencyMs
        self.percentile = percentile
        self.memoryMiB = memoryMiB
        self.sizeMiB = sizeMiB
        self.threads = threads
        self.device = device
    }

    public static let percentiles = [50, 90, 99]

    /// True when at least one limit is set.
    public var hasLimits: Bool { latencyMs != nil || memoryMiB != nil || sizeMiB != nil }

    /// `other`'s fields where set, this budget's elsewhere (flags over a file).
    public func overridden(by other: Budget, percentileGiven: Bool) -> Budget {
        var b = self
        if let v = other.latencyMs { b.latencyMs = v }
        if percentileGiven { b.percentile = other.percentile }
        if let v = other.memoryMiB { b.memoryMiB = v }
        if let v = other.sizeMiB { b.sizeMiB = v }
        if let v = other.threads { b.threads = v }
        if let v = other.device { b.device = v }
        return b
    }

    /// Checks the values a user gave: positive limits, a known percentile, threads >= 1.
    public func validated(source: String) throws -> Budget {
        func positive(_ v: Double?, _ name: String) throws {
            if let v, !(v > 0 && v.isFinite) { throw BudgetError.invalid(source: source, message: "\(name) must be a positive number, got \(v)") }
        }
        try positive(latencyMs, "latency ms")
        try positive(memoryMiB, "memory_mb")
        try positive(sizeMiB, "size_mb")
        guard Self.percentiles.contains(percentile) else {
            throw BudgetError.invalid(source: source, message: "percentile must be 50, 90 or 99, got \(percentile)")
        }
        if let threads, threads < 1 { throw BudgetError.invalid(source: source, message: "threads must be at least 1, got \(threads)") }
        return self
    }
}

/// Problems with a budget file or budget flags.
public enum BudgetError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(source: String, message: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read budget file \(path): \(reason)"
        case .invalid(let source, let message): return "\(source): \(message)"
        }
    }
}

extension Budget {
    /// Reads a budget file (YAML or JSON).
    public static func load(path: String) throws -> Budget {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw BudgetError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try parse(text, source: path)
    }

    /// Parses budget text; `source` names it in error messages.
    public static func parse(_ text: String, source: String) throws -> Budget {
        let document: Any?
        do { document = try Yams.load(yaml: text) } catch {
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "not YAML"
            throw BudgetError.invalid(source: source, message: "not valid YAML or JSON (\(first))")
        }
        guard let fields = document as? [String: Any] else {
            throw BudgetError.invalid(source: source, message: "expected a mapping of budget keys (latency, memory_mb, size_mb, threads, device)")
        }
        var budget = Budget()
        func number(_ value: Any, _ key: String) throws -> Double {
            if let d = value as? Double { return d }
            if let i = value as? Int { return Double(i) }
            throw BudgetError.invalid(source: source, message: "\(key) must be a number, got \(value)")
        }
        func integer(_ value: Any, _ key: String) throws -> Int {
            if let i = value as? Int { return i }
            if let d = value as? Double, d == d.rounded(), abs(d) < 1e9 { return Int(d) }
            throw BudgetError.invalid(source: source, message: "\(key) must be a whole number, got \(value)")
        }
        for (key, value) in fields {
            switch key {
            case "latency":
                if let nested = value as? [String: Any] {
                    for (k, v) in nested {
                        switch k {
                        case "ms": budget.latencyMs = try number(v, "latency.ms")
                        case "percentile": budget.percentile = try integer(v, "latency.percentile")
                        default: throw BudgetError.invalid(source: source, message: "unknown key latency.\(k) (known: ms, percentile)")
                        }
                    }
                } else {
                    budget.latencyMs = try number(value, "latency")
                }
            case "latency_ms": budget.latencyMs = try number(value, key)
            case "percentile": budget.percentile = try integer(value, key)
            case "memory_mb": budget.memoryMiB = try number(value, key)
            case "size_mb": budget.sizeMiB = try number(value, key)
            case "threads": budget.threads = try integer(value, key)
            case "device":
                guard let name = value as? String else { throw BudgetError.invalid(source: source, message: "device must be a name or a file path") }
                budget.device = name
            default:
                throw BudgetError.invalid(source: source, message: "unknown key \(key) (known: latency, latency_ms, percentile, memory_mb, size_mb, threads, device)")
            }
        }
        return try budget.validated(source: source)
    }
}
