import Foundation
import VernierCost
import VernierPlanner

/// Renders `vernier check`: a one-screen verdict (text or Markdown), its JSON, and a
/// JUnit XML report for CI systems.
public struct VerdictReport {
    public let verdict: BudgetVerdict
    /// Bumped only when a field is removed or renamed.
    public static let schema = "vernier.check/1"

    public init(_ verdict: BudgetVerdict) { self.verdict = verdict }

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .table: return text(markdown: false)
        case .md: return text(markdown: true)
        case .json: return json().serialized() + "\n"
        case .csv:
            var out = "name,value,limit,unit,headroom_pct,pass\n"
            for c in verdict.checks {
                out += [c.name, number(c.value), number(c.limit), c.unit, String(format: "%.2f", c.headroomPercent),
                        c.pass ? "true" : "false"].map(Format.csvField).joined(separator: ",") + "\n"
            }
            return out
        }
    }

    private func number(_ v: Double) -> String { String(format: "%.6g", v) }

    private func value(_ v: Double, _ unit: String) -> String {
        unit == "ms" ? "\(ProfileReport.ms(v)) ms" : String(format: "%.2f %@", v, unit)
    }

    private var label: [String: String] {
        ["latency_median": "latency median", "latency_p90": "latency p90", "latency_p99": "latency p99",
         "peak_memory": "peak memory", "model_size": "model size"]
    }

    func text(markdown: Bool) -> String {
        let b = verdict.basis
        let model = b.modelPath.isEmpty ? "(memory)" : b.modelPath
        let failed = verdict.failed.count
        let headline = verdict.pass ? "PASS: \(model) meets all \(verdict.checks.count) budget(s)"
            : "FAIL: \(model) exceeds \(failed) of \(verdict.checks.count) budget(s)"
        var out = markdown ? "# \(headline)\n\n" : headline + "\n\n"
        let columns = ["Check", b.predicted ? "Predicted" : "Measured", "Limit", "Headroom", "Result"]
        let rows = verdict.checks.map { c in
            [label[c.name] ?? c.name, value(c.value, c.unit), value(c.limit, c.unit),
             String(format: "%+.1f%%", c.headroomPercent), c.pass ? "PASS" : "FAIL"]
        }
        out += markdown ? Format.markdownTable(columns, rows, rightAligned: [1, 2, 3])
                        : Format.columns(columns, rows, rightAligned: [1, 2, 3])
        out += "\n"
        if b.predicted {
            out += "Predicted for device \(b.device) at \(b.threads) thread(s), not measured"
                + (b.calibrated ? " (calibrated profile)" : " (uncalibrated: spec-derived roofs and prior efficiencies; expect errors of tens of percent)")
                + "; planned memory \(Format.bytes(b.plannedBytes)) (arena + weights).\n"
        } else {
            out += "Measured on this machine: \(b.threads) thread(s), \(b.runs) end-to-end runs after \(b.warmupRuns) warm-up"
                + (b.interrupted ? " (interrupted: partial)" : "") + "; planned memory \(Format.bytes(b.plannedBytes)) (arena + weights).\n"
        }
        for c in verdict.checks { out += (markdown ? "- " : "  ") + "\(label[c.name] ?? c.name): \(c.basis)\n" }
        if !verdict.offenders.isEmpty {
            let latencyFail = verdict.failed.first { $0.unit == "ms" }
            out += "\n"
            if let over = latencyFail {
                out += "Latency is \(ProfileReport.ms(over.value - over.limit)) ms over budget. Top layers by \(b.predicted ? "predicted" : "median") latency:\n"
            } else {
                out += "Top layers by \(b.predicted ? "predicted" : "median") latency:\n"
            }
            if markdown { out += "\n" }
            var cols = ["Layer", "Op", b.predicted ? "Predicted ms" : "Median ms", "%Time"]
            if latencyFail != nil { cols.append("%Overshoot") }
            let body = verdict.offenders.map { o -> [String] in
                var r = [o.name, o.opType, ProfileReport.ms(o.medianMs), String(format: "%.1f", o.share * 100)]
                if latencyFail != nil { r.append(o.overshootPercent.map { String(format: "%.0f", $0) } ?? "") }
                return r
            }
            out += markdown ? Format.markdownTable(cols, body, rightAligned: [2, 3, 4]) : Format.columns(cols, body, rightAligned: [2, 3, 4])
        }
        return out
    }

    public func json() -> JSON {
        let b = verdict.basis
        return .object([
            ("schema", .string(Self.schema)),
            ("model", .string(b.modelPath)),
            ("pass", .bool(verdict.pass)),
            ("checks", .array(verdict.checks.map { c in
                .object([("name", .string(c.name)), ("value", .double(c.value)), ("limit", .double(c.limit)),
                         ("unit", .string(c.unit)), ("headroom_pct", .double(c.headroomPercent)), ("pass", .bool(c.pass)),
                         ("basis", .string(c.basis))])
            })),
            ("offenders", .array(verdict.offenders.map { o in
                .object([("name", .string(o.name)), ("op", .string(o.opType)), ("median_ms", .double(o.medianMs)),
                         ("share", .double(o.share)), ("overshoot_pct", o.overshootPercent.map(JSON.double) ?? .null)])
            })),
            ("measured", .object([
                ("device", .string(b.device)), ("predicted", .bool(b.predicted)), ("calibrated", .bool(b.calibrated)),
                ("threads", .int(b.threads)), ("runs", .int(b.runs)),
                ("interrupted", .bool(b.interrupted)), ("planned_bytes", .int(b.plannedBytes)),
            ])),
        ])
    }

    /// A JUnit XML report: one test case per budget line, a failure element for each
    /// line that fails.
    public func junit() -> String {
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let model = verdict.basis.modelPath.isEmpty ? "model" : verdict.basis.modelPath
        let time = String(format: "%.3f", verdict.basis.seconds)
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"vernier check\" tests=\"\(verdict.checks.count)\" failures=\"\(verdict.failed.count)\" time=\"\(time)\">\n"
        out += "  <testsuite name=\"\(escape(model))\" tests=\"\(verdict.checks.count)\" failures=\"\(verdict.failed.count)\" errors=\"0\" time=\"\(time)\">\n"
        for c in verdict.checks {
            out += "    <testcase classname=\"vernier.budget\" name=\"\(escape(c.name))\">"
            if c.pass {
                out += "</testcase>\n"
            } else {
                let message = "\(label[c.name] ?? c.name) \(value(c.value, c.unit)) exceeds the limit \(value(c.limit, c.unit))"
                out += "\n      <failure message=\"\(escape(message))\" type=\"budget\">\(escape(message + "; " + c.basis))</failure>\n    </testcase>\n"
            }
        }
        out += "  </testsuite>\n</testsuites>\n"
        return out
    }
}
