import Foundation
import VernierCost
import VernierGraph

/// Renders `vernier compare`: one column per model with totals and deltas against the
/// baseline, output agreement, then per-layer deltas for each model.
public struct ComparisonReport {
    public let comparison: Comparison
    /// Bumped only when a field is removed or renamed.
    public static let schema = "vernier.compare/1"

    public init(_ comparison: Comparison) { self.comparison = comparison }

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .table: return text(markdown: false)
        case .md: return text(markdown: true)
        case .csv: return csv()
        case .json: return json().serialized() + "\n"
        }
    }

    /// A total of one model, as a number (for deltas) and as text.
    struct Total {
        var name: String
        var value: (Profile) -> Double?
        var format: (Double) -> String
    }

    static let totals: [Total] = [
        Total(name: "Latency median", value: { $0.endToEnd?.median }, format: { ProfileReport.ms($0) + " ms" }),
        Total(name: "Latency p90", value: { $0.endToEnd?.p90 }, format: { ProfileReport.ms($0) + " ms" }),
        Total(name: "Params", value: { Double($0.table.totals.params) }, format: { Format.count($0) }),
        Total(name: "MACs", value: { p in
            let t = p.table.totals
            return (t.macs + t.intMacs).value
        }, format: { Format.count($0) }),
        Total(name: "Weight bytes", value: { Double($0.table.totals.weightBytes) }, format: { Format.bytes(Int($0)) }),
        Total(name: "Peak memory (planned)", value: { Double($0.memory.plannedBytes) }, format: { Format.bytes(Int($0)) }),
        Total(name: "Size on disk", value: { Double($0.table.analyzed.model.fileBytes) }, format: { Format.bytes(Int($0)) }),
    ]

    /// The model's file name, or its whole path when two models share a file name.
    func label(_ i: Int) -> String {
        let paths = comparison.profiles.enumerated().map { $0.element.table.analyzed.model.path ?? "model \($0.offset + 1)" }
        let names = paths.map { ($0 as NSString).lastPathComponent }
        let name = names.filter { $0 == names[i] }.count > 1 ? paths[i] : names[i]
        return name + (i == comparison.baselineIndex ? " (baseline)" : "")
    }

    func deltaText(_ value: Double, _ base: Double, _ total: Total) -> String {
        let delta = value - base
        let sign = delta >= 0 ? "+" : "-"
        let pct = base != 0 ? String(format: " (%+.1f%%)", delta / base * 100) : ""
        return "\(sign)\(total.format(abs(delta)))\(pct)"
    }

    func agreementText(_ i: Int) -> String {
        if i == comparison.baselineIndex { return "" }
        let list = comparison.agreement[i]
        guard !list.isEmpty else { return comparison.agreementNotes[i] ?? "not compared" }
        return list.map { a in
            var s = String(format: "cos %.6f, max|diff| %.3g", a.cosineSimilarity, a.maxAbsDifference)
            if let t = a.top1Agreement { s += String(format: ", top-1 %.1f%%", t * 100) }
            return list.count > 1 ? "\(a.output): \(s)" : s
        }.joined(separator: "; ")
    }

    func text(markdown: Bool) -> String {
        let c = comparison
        let base = c.baseline
        var out = ""
        let threads = base.threads
        let how = c.predictedFor.map { "predicted for \($0.name) (\($0.isCalibrated ? "calibrated" : "uncalibrated")), not measured" }
            ?? "measured in interleaved rounds"
        let headline = "Comparison of \(c.profiles.count) models, baseline \(label(c.baselineIndex)); \(how), \(threads) thread(s)"
        out += markdown ? "# \(headline)\n\n" : headline + "\n\n"
        var header = ["Total"] + c.profiles.indices.map(label)
        var rows: [[String]] = Self.totals.map { total in
            [total.name] + c.profiles.indices.map { i in
                guard let v = total.value(c.profiles[i]) else { return "?" }
                guard i != c.baselineIndex, let b = total.value(base) else { return total.format(v) }
                return "\(total.format(v)) \(deltaText(v, b, total))"
            }
        }
        if c.predictedFor == nil {
            rows.append(["Runs"] + c.profiles.map { "\($0.endToEnd?.count ?? 0)" + ($0.interrupted ? " (partial)" : "") })
        }
        rows.append(["Output agreement"] + c.profiles.indices.map { agreementText($0) })
        if markdown { header = header.map { $0 } }
        out += markdown ? Format.markdownTable(header, rows) : Format.columns(header, rows)
        for i in c.profiles.indices where i != c.baselineIndex {
            let pairs = c.layers(of: i)
            let title = "Per layer: \(label(i)) against \(label(c.baselineIndex))"
            out += markdown ? "\n## \(title)\n\n" : "\n\(title):\n"
            let cols = ["Layer", "Match", "Op", "Base ms", "Ms", "Delta ms", "Delta %", "Base MACs", "MACs"]
            let body: [[String]] = pairs.map { p in
                let name: String
                switch (p.baseline, p.candidate) {
                case let (a?, b?): name = a.name == b.name ? a.name : "\(a.name) -> \(b.name)"
                case let (a?, nil): name = a.name
                case let (nil, b?): name = b.name
                default: name = ""
                }
                let match = p.baseline == nil ? "only here" : p.candidate == nil ? "only in base" : p.matchedByName ? "name" : "position"
                let op = (p.baseline ?? p.candidate).map { $0.fusedOpTypes.isEmpty ? $0.opType : $0.fusedOpTypes } ?? ""
                let delta = p.deltaMs
                let pct: String = {
                    guard let d = delta, let a = p.baseline, a.latency.median > 0 else { return "" }
                    return String(format: "%+.1f", d / a.latency.median * 100)
                }()
                return [name, match, op, p.baseline.map { ProfileReport.ms($0.latency.median) } ?? "",
                        p.candidate.map { ProfileReport.ms($0.latency.median) } ?? "",
                        delta.map { String(format: "%+.3f", $0) } ?? "", pct,
                        macs(p.baseline), macs(p.candidate)]
            }
            let right: Set<Int> = [3, 4, 5, 6, 7, 8]
            out += markdown ? Format.markdownTable(cols, body, rightAligned: right) : Format.columns(cols, body, rightAligned: right)
        }
        out += markdown ? "\n## Notes\n\n" : "\nNotes:\n"
        for n in notes { out += (markdown ? "- " : "  - ") + n + "\n" }
        return out
    }

    /// Why output agreement is missing for a model, and what the figures mean.
    var notes: [String] {
        let c = comparison
        return c.profiles.indices.compactMap { i -> String? in
            guard i != c.baselineIndex, c.agreement[i].isEmpty, let note = c.agreementNotes[i] else { return nil }
            return "\(label(i)): output agreement not measured: \(note)"
        } + ["peak memory is the planned arena plus weights: one process runs every model, so its resident set cannot be split between them",
             "output agreement is measured on the same random (or --input-data) inputs: fidelity on probe inputs, not task accuracy"]
    }

    private func macs(_ row: Profile.Row?) -> String {
        guard let row, row.macs + row.intMacs > 0 else { return "" }
        return Format.count(row.macs + row.intMacs)
    }

    func csv() -> String {
        var out = "model,baseline_layer,layer,match,op,baseline_ms,ms,delta_ms,baseline_macs,macs\n"
        let c = comparison
        for i in c.profiles.indices where i != c.baselineIndex {
            let model = c.profiles[i].table.analyzed.model.path ?? ""
            for p in c.layers(of: i) {
                let match = p.baseline == nil ? "only_candidate" : p.candidate == nil ? "only_baseline" : p.matchedByName ? "name" : "position"
                let fields = [model, p.baseline?.name ?? "", p.candidate?.name ?? "", match, (p.baseline ?? p.candidate)?.opType ?? "",
                              p.baseline.map { String(format: "%.6g", $0.latency.median) } ?? "",
                              p.candidate.map { String(format: "%.6g", $0.latency.median) } ?? "",
                              p.deltaMs.map { String(format: "%.6g", $0) } ?? "",
                              p.baseline.map { String(format: "%.0f", $0.macs + $0.intMacs) } ?? "",
                              p.candidate.map { String(format: "%.0f", $0.macs + $0.intMacs) } ?? ""]
                out += fields.map(Format.csvField).joined(separator: ",") + "\n"
            }
        }
        return out
    }

    public func json() -> JSON {
        let c = comparison
        let keys = ["latency_median_ms", "latency_p90_ms", "params", "macs", "weight_bytes", "planned_peak_bytes", "file_bytes"]
        func totals(_ p: Profile) -> [(String, JSON)] {
            zip(keys, Self.totals).map { key, t in (key, t.value(p).map(JSON.double) ?? .null) }
        }
        return .object([
            ("schema", .string(Self.schema)),
            ("baseline", .string(c.baseline.table.analyzed.model.path ?? "")),
            ("threads", .int(c.baseline.threads)),
            ("predicted_for", c.predictedFor.map { .object([("device", .string($0.name)), ("calibrated", .bool($0.isCalibrated))]) } ?? .null),
            ("models", .array(c.profiles.indices.map { i in
                let p = c.profiles[i]
                var deltas: [(String, JSON)] = []
                for (key, t) in zip(keys, Self.totals) {
                    guard let v = t.value(p), let b = t.value(c.baseline) else { deltas.append((key, .null)); continue }
                    deltas.append((key, .object([("abs", .double(v - b)), ("pct", b != 0 ? .double((v - b) / b * 100) : .null)])))
                }
                return .object([
                    ("model", .string(p.table.analyzed.model.path ?? "")),
                    ("baseline", .bool(i == c.baselineIndex)),
                    ("runs", .int(p.endToEnd?.count ?? 0)),
                    ("interrupted", .bool(p.interrupted)),
                    ("totals", .object(totals(p))),
                    ("deltas", .object(deltas)),
                    ("agreement", .array(c.agreement[i].map { a in
                        .object([("output", .string(a.output)), ("max_abs_diff", .double(a.maxAbsDifference)),
                                 ("cosine", .double(a.cosineSimilarity)), ("top1_agreement", a.top1Agreement.map(JSON.double) ?? .null)])
                    })),
                    ("agreement_note", c.agreementNotes[i].map(JSON.string) ?? .null),
                    ("layers", i == c.baselineIndex ? .null : .array(c.layers(of: i).map { pair in
                        .object([
                            ("baseline", pair.baseline.map { .string($0.name) } ?? .null),
                            ("candidate", pair.candidate.map { .string($0.name) } ?? .null),
                            ("op", .string((pair.baseline ?? pair.candidate)?.opType ?? "")),
                            ("matched_by", pair.baseline == nil || pair.candidate == nil ? .null : .string(pair.matchedByName ? "name" : "position")),
                            ("baseline_ms", pair.baseline.map { .double($0.latency.median) } ?? .null),
                            ("ms", pair.candidate.map { .double($0.latency.median) } ?? .null),
                            ("delta_ms", pair.deltaMs.map(JSON.double) ?? .null),
                        ])
                    })),
                ])
            })),
        ])
    }
}
