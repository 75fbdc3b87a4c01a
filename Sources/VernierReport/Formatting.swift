import Foundation
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
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = line(header) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in rows { out += line(row) + "\n" }
        return out
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
