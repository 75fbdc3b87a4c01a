import Foundation
import VernierCost
import VernierGraph

/// The output formats every table of Vernier can be written in.
public enum OutputFormat: String, CaseIterable, Sendable {
    case table, csv, json, md
}

/// Number and shape formatting shared by the renderers.
public enum Format {
    /// 1234567 -> "1.23M"; small numbers stay exact.
    public static func count(_ n: Int) -> String {
        let v = Double(n)
        switch abs(v) {
        case ..<10_000: return String(n)
        case ..<1e6: return String(format: "%.1fk", v / 1e3)
        case ..<1e9: return String(format: "%.2fM", v / 1e6)
        case ..<1e12: return String(format: "%.2fG", v / 1e9)
        default: return String(format: "%.2fT", v / 1e12)
        }
    }

    /// Bytes in binary units: "4.9 MiB".
    public static func bytes(_ n: Int) -> String {
        let v = Double(n)
        switch v {
        case ..<1024: return "\(n) B"
        case ..<(1024 * 1024): return String(format: "%.1f KiB", v / 1024)
        case ..<(1024 * 1024 * 1024): return String(format: "%.1f MiB", v / 1024 / 1024)
        default: return String(format: "%.2f GiB", v / 1024 / 1024 / 1024)
        }
    }

    /// `[1,3,224,224]`, prefixed with the element type unless it is float;
    /// `?` for an unknown type, `float[?]` for unknown rank.
    public static func shape(_ t: TensorType?) -> String {
        guard let t else { return "?" }
        let dims = t.shape.map(\.shapeDescription) ?? "[?]"
        return t.elementType == .float ? dims : "\(t.elementType)\(dims)"
    }

    /// A cost: `1.82G` when known, else its polynomial with compact coefficients
    /// (`21.70M*seq + 819.2k*seq^2`); `?` when unknown.
    public static func cost(_ c: Cost?) -> String {
        guard let c else { return "?" }
        if let v = c.value { return count(v) }
        return c.render { count($0) }
    }

    /// `count` for Double values.
    public static func count(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return count(Int(v)) }
        switch abs(v) {
        case ..<10_000: return String(format: "%.2f", v)
        default: return count(Int(v.rounded()))
        }
    }

    /// Bytes as a cost: exact sizes in binary units, symbolic ones as a polynomial.
    public static func bytes(_ c: Cost?) -> String {
        guard let c else { return "?" }
        if let v = c.value { return bytes(Int(v)) }
        return c.render { count($0) } + " B"
    }

    /// A cost as JSON: a number when known, else a string (`"2.1e+07*seq + 4096"`); see
    /// `jsonCostTerms` for the structured form.
    public static func jsonCost(_ c: Cost?) -> JSON {
        guard let c else { return .null }
        if let v = c.value { return .double(v) }
        return .string(c.render { String(format: "%g", $0) })
    }

    /// The structured form of a symbolic cost: `[{"coefficient": c, "powers": {"seq": 2}}]`.
    public static func jsonCostTerms(_ c: Cost) -> JSON {
        .array(c.sortedTerms.map { term in
            .object([("coefficient", .double(term.coefficient)),
                     ("powers", .object(term.monomial.factors.map { ($0.symbol, .int($0.power)) }))])
        })
    }

    /// Adds `name` (and `name_terms` when symbolic) to a JSON object's fields.
    public static func appendCost(_ name: String, _ c: Cost?, to fields: inout [(String, JSON)]) {
        fields.append((name, jsonCost(c)))
        if let c, c.value == nil { fields.append((name + "_terms", jsonCostTerms(c))) }
    }

    /// A dim as JSON: a number when known, else its symbolic expression.
    public static func jsonDim(_ d: Dim) -> JSON {
        if let v = d.intValue { return .int(v) }
        return .string(d.description)
    }

    public static func jsonShape(_ t: TensorType?) -> JSON {
        guard let shape = t?.shape else { return .null }
        return .array(shape.map(jsonDim))
    }

    /// A CSV field, quoted when needed.
    public static func csvField(_ s: String) -> String {
        if s.contains(",") || s.contains("\"") || s.contains("\n") {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }

    /// Left-aligned text columns, with numeric columns right-aligned.
    public static func columns(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, widths[i] - c.count))
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        var out = line(header) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in rows { out += line(row) + "\n" }
        return out
    }

    /// The "Totals" block of a report: `- **key**: value` lines in Markdown, aligned
    /// `key  value` lines on a terminal.
    public static func totalsSection(_ lines: [(String, String)], markdown: Bool) -> String {
        if markdown { return "## Totals\n\n" + lines.map { "- **\($0.0)**: \($0.1)" }.joined(separator: "\n") + "\n" }
        return "Totals:\n" + lines.map { "  " + $0.0.padding(toLength: 24, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n") + "\n"
    }

    /// The "Notes" block of a report; empty when there are none.
    public static func notesSection(_ notes: [String], markdown: Bool) -> String {
        guard !notes.isEmpty else { return "" }
        return (markdown ? "\n## Notes\n\n" : "\nNotes:\n") + notes.map { (markdown ? "- " : "  - ") + $0 + "\n" }.joined()
    }

    /// A Markdown table; pipes in cells are escaped.
    public static func markdownTable(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        var out = "| " + header.map(esc).joined(separator: " | ") + " |\n"
        out += "|" + header.indices.map { rightAligned.contains($0) ? " ---: |" : " --- |" }.joined() + "\n"
        for row in rows { out += "| " + row.map(esc).joined(separator: " | ") + " |\n" }
        return out
    }
}

extension String {
    /// The string without trailing spaces.
    func trimmingTrailingSpaces() -> String {
        var end = endIndex
        while end > startIndex, self[index(before: end)] == " " { end = index(before: end) }
        return String(self[..<end])
    }
}
