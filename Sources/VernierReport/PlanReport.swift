import Foundation
import VernierCost
import VernierPlanner

/// Renders `vernier plan`: the verdict, the per-group plan, totals before and after,
/// predicted against measured latency, output fidelity on probe inputs, and notes.
public struct PlanReport {
    public let result: PlanResult
    /// Bumped only when a field is removed or renamed.
    public static let schema = "vernier.plan/1"

    public init(_ result: PlanResult) { self.result = result }

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .json: return json().serialized() + "\n"
        case .md: return text(markdown: true)
        case .table, .csv: return text(markdown: false)
        }
    }

    private var latencyLabel: String { result.budget.percentile == 50 ? "median" : "p\(result.budget.percentile)" }

    func text(markdown: Bool) -> String {
        let r = result
        var out = ""
        let limit = r.budget.latencyMs.map { "\(ProfileReport.ms($0)) ms" } ?? "none"
        let headline: String
        if r.success {
            headline = "PLAN FOUND: \(r.strategy) meets the budget (\(latencyLabel) latency <= \(limit))"
        } else if !r.fidelityHolds {
            headline = "NO PLAN: the variant that meets the latency loses too much fidelity (cosine \(String(format: "%.4f", r.worstCosine)) < \(r.minFidelity ?? 0)); the closest is shown"
        } else {
            headline = "NO PLAN: the search found no variant within the budget (limit \(limit)); the closest is shown"
        }
        out += markdown ? "# \(headline)\n\n" : headline + "\n\n"
        let where_ = r.predictedOnly
            ? "predicted for \(r.device) (\(r.deviceCalibrated ? "calibrated" : "uncalibrated profile")), \(r.threads) thread(s)"
            : "measured on this machine, \(r.threads) thread(s)"
        out += "Model \(r.modelPath); latency \(where_).\n\n"

        var lines: [[String]] = [
            ["original latency (\(latencyLabel))", "\(ProfileReport.ms(r.originalMs)) ms"],
            ["variant predicted", "\(ProfileReport.ms(r.variantPredictedMs)) ms"],
        ]
        if let m = r.variantMeasuredMs {
            lines.append(["variant measured (\(latencyLabel))", "\(ProfileReport.ms(m)) ms"])
        }
        if let e = r.predictionErrorPercent { lines.append(["prediction error", String(format: "%+.1f%%", e)]) }
        for c in r.checks {
            lines.append(["budget \(c.name)", String(format: "%.3f %@ <= %.3f %@: %@", c.value, c.unit, c.limit, c.unit, c.pass ? "PASS" : "FAIL")])
        }
        out += markdown ? Format.markdownTable(["Latency", "Value"], lines) : Format.columns(["Latency", "Value"], lines)
        out += "\n"

        func share(_ a: Double, _ b: Double) -> String { a > 0 ? String(format: "%.1f%%", b / a * 100) : "" }
        let totals: [[String]] = [
            ["params", Format.count(r.before.params), Format.count(r.after.params), share(Double(r.before.params), Double(r.after.params))],
            ["MACs", r.before.macs.map(Format.count) ?? "?", r.after.macs.map(Format.count) ?? "?",
             r.before.macs.flatMap { b in r.after.macs.map { share(b, $0) } } ?? ""],
            ["weight bytes", Format.bytes(r.before.weightBytes), Format.bytes(r.after.weightBytes),
             share(Double(r.before.weightBytes), Double(r.after.weightBytes))],
            ["file size", Format.bytes(r.before.fileBytes), Format.bytes(r.after.fileBytes),
             share(Double(r.before.fileBytes), Double(r.after.fileBytes))],
        ]
        out += markdown ? "\n" : ""
        out += markdown ? Format.markdownTable(["Total", "Original", "Variant", "Variant/original"], totals, rightAligned: [1, 2, 3])
                        : Format.columns(["Total", "Original", "Variant", "Variant/original"], totals, rightAligned: [1, 2, 3])
        out += "\n"

        let cut = r.groups.filter { $0.kept < $0.channels }
        out += markdown ? "## Per-group plan\n\n" : "Per-group plan (\(cut.count) of \(r.groups.count) prunable groups cut, \(r.searchSteps) search steps):\n"
        func count(_ v: Int?) -> String { v.map { Format.count($0) } ?? "" }
        func count(_ v: Double?) -> String { v.map { Format.count($0) } ?? "" }
        let rows: [[String]] = r.groups.map { g -> [String] in
            func percent(_ v: Double?) -> String { v.map { String(format: "%.1f%%", $0 * 100) } ?? "" }
            return [g.name, String(g.channels), String(g.kept), String(format: "%.1f%%", g.ratio * 100),
                    count(g.paramsBefore), count(g.paramsAfter), count(g.macsBefore), count(g.macsAfter),
                    percent(g.timeShare), percent(g.predictedShare), percent(g.measuredShare)]
        }
        let header = ["Group", "Channels", "Kept", "Removed", "Params", "Params after", "MACs", "MACs after",
                      "Time share", "Variant predicted", "Variant measured"]
        out += markdown ? Format.markdownTable(header, rows, rightAligned: Set(1...10))
                        : Format.columns(header, rows, rightAligned: Set(1...10))
        out += markdown ? "\nTime share: of the original's kernel time, in the kernels that read or write the group's channels; "
                          + "variant predicted and measured: the same share of the variant's kernel time.\n" : ""
        out += "\n"

        out += markdown ? "## Output fidelity on probe inputs (not task accuracy)\n\n" : "Output fidelity on probe inputs (not task accuracy):\n"
        let fidelity = r.fidelity.map { a in
            [a.output, String(format: "%.6f", a.cosineSimilarity), String(format: "%.4g", a.maxAbsDifference),
             a.top1Agreement.map { String(format: "%.1f%%", $0 * 100) } ?? ""]
        }
        out += markdown ? Format.markdownTable(["Output", "Cosine", "Max |diff|", "Top-1 agreement"], fidelity, rightAligned: [1, 2, 3])
                        : Format.columns(["Output", "Cosine", "Max |diff|", "Top-1 agreement"], fidelity, rightAligned: [1, 2, 3])
        var notes = r.notes
        if !r.emitted.isEmpty { notes.append("written: " + r.emitted.joined(separator: ", ")) }
        out += Format.notesSection(notes, markdown: markdown)
        return out
    }

    public func json() -> JSON {
        let r = result
        func totals(_ t: PlanResult.Totals) -> JSON {
            .object([("params", .int(t.params)), ("macs", t.macs.map(JSON.double) ?? .null),
                     ("weight_bytes", .int(t.weightBytes)), ("file_bytes", .int(t.fileBytes))])
        }
        return .object([
            ("schema", .string(Self.schema)),
            ("model", .string(r.modelPath)),
            ("strategy", .string(r.strategy)),
            ("success", .bool(r.success)),
            ("meets_budget", .bool(r.meetsBudget)),
            ("fidelity_holds", .bool(r.fidelityHolds)),
            ("device", .object([("name", .string(r.device)), ("predicted_only", .bool(r.predictedOnly)),
                                ("calibrated", .bool(r.deviceCalibrated)), ("threads", .int(r.threads))])),
            ("latency_ms", .object([
                ("percentile", .int(r.budget.percentile)), ("limit", r.budget.latencyMs.map(JSON.double) ?? .null),
                ("original", .double(r.originalMs)), ("variant_predicted", .double(r.variantPredictedMs)),
                ("variant_measured", r.variantMeasuredMs.map(JSON.double) ?? .null),
                ("prediction_error_pct", r.predictionErrorPercent.map(JSON.double) ?? .null),
            ])),
            ("checks", .array(r.checks.map { c in
                .object([("name", .string(c.name)), ("value", .double(c.value)), ("limit", .double(c.limit)),
                         ("unit", .string(c.unit)), ("pass", .bool(c.pass)), ("basis", .string(c.basis))])
            })),
            ("before", totals(r.before)),
            ("after", totals(r.after)),
            ("groups", .array(r.groups.map { g in
                .object([("name", .string(g.name)), ("channels", .int(g.channels)), ("kept", .int(g.kept)), ("ratio", .double(g.ratio)),
                         ("params_before", g.paramsBefore.map(JSON.int) ?? .null), ("params_after", g.paramsAfter.map(JSON.int) ?? .null),
                         ("macs_before", g.macsBefore.map(JSON.double) ?? .null), ("macs_after", g.macsAfter.map(JSON.double) ?? .null),
                         ("time_share", g.timeShare.map(JSON.double) ?? .null),
                         ("variant_predicted_share", g.predictedShare.map(JSON.double) ?? .null),
                         ("variant_measured_share", g.measuredShare.map(JSON.double) ?? .null)])
            })),
            ("search_steps", .int(r.searchSteps)),
            ("fidelity", .array(r.fidelity.map { a in
                .object([("output", .string(a.output)), ("cosine", .double(a.cosineSimilarity)),
                         ("max_abs_diff", .double(a.maxAbsDifference)), ("top1_agreement", a.top1Agreement.map(JSON.double) ?? .null)])
            })),
            ("min_fidelity", r.minFidelity.map(JSON.double) ?? .null),
            ("emitted", .array(r.emitted.map(JSON.string))),
            ("notes", .array(r.notes.map(JSON.string))),
        ])
    }
}
