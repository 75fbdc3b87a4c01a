import Foundation
import VernierCost
import VernierGraph

/// Renders `vernier profile`: the header, one row per kernel (node or fused group) with
/// static costs and measured latency, the table by op type, totals and notes.
public struct ProfileReport {
    public let profile: Profile
    /// Show only the K rows with the largest median latency, most expensive first.
    public var top: Int?
    /// Show the table by op type in place of the per-node rows.
    public var byOpOnly: Bool
    /// Bumped only when a field is removed or renamed.
    public static let schema = "vernier.profile/1"
    /// p90 over median above this is called noisy.
    public static let noisySpread = 1.10

    public init(_ profile: Profile, top: Int? = nil, byOpOnly: Bool = false) {
        self.profile = profile
        self.top = top
        self.byOpOnly = byOpOnly
    }

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .table: return text(markdown: false)
        case .md: return text(markdown: true)
        case .csv: return byOpOnly ? byOpCSV() : csv()
        case .json: return json().serialized() + "\n"
        }
    }

    /// The rows shown, with their share and the running total in shown order.
    var shownRows: [(row: Profile.Row, cumulative: Double)] {
        var rows = profile.rows
        if let top {
            rows = Array(rows.enumerated().sorted {
                $0.element.latency.median != $1.element.latency.median
                    ? $0.element.latency.median > $1.element.latency.median : $0.offset < $1.offset
            }.map(\.element).prefix(max(0, top)))
        }
        var running = 0.0
        return rows.map { row in
            running += row.share
            return (row, running)
        }
    }

    private var model: Model { profile.table.analyzed.model }

    // MARK: Table and Markdown

    func text(markdown: Bool) -> String {
        var out = ""
        let path = model.path ?? "(memory)"
        let header = headerLines
        if markdown {
            out += "# Profile of `\(path)`\n\n"
            for (k, v) in header.dropFirst() { out += "- **\(k)**: \(v)\n" }
            out += "\n"
        } else {
            for (k, v) in header { out += k.padding(toLength: 11, withPad: " ", startingAt: 0) + v + "\n" }
            out += "\n"
        }
        if !byOpOnly {
            if markdown { out += top.map { "## Top \($0) layers by latency\n\n" } ?? "## Layers\n\n" }
            else if let top { out += "Top \(top) layers by latency:\n" }
            let index = Dictionary(profile.rows.enumerated().map { ($0.element.name, $0.offset + 1) }, uniquingKeysWith: { a, _ in a })
            let body: [[String]] = shownRows.map { item in
                layerCells(item.row, number: index[item.row.name] ?? 0, cumulative: item.cumulative).map(\.text)
            }
            let columns = Self.layerColumns, numeric = Self.numericLayerColumns
            out += markdown ? Format.markdownTable(columns, body, rightAligned: numeric)
                            : Format.columns(columns, body, rightAligned: numeric)
            out += "\n"
        }
        out += markdown ? "## By op type\n\n" : "By op type:\n"
        let opColumns = ["Op", "Count", "Median ms", "%Time", "MACs", "FLOPs", "GFLOP/s"]
        let opRows: [[String]] = profile.byOp.map { o in
            [o.opType, String(o.count), Self.ms(o.medianMs), String(format: "%.1f", o.share * 100),
             blank(o.macs + o.intMacs, known: true), blank(o.flops, known: true),
             o.medianMs > 0 && o.flops + 2 * o.intMacs > 0 ? String(format: "%.1f", (o.flops + 2 * o.intMacs) / (o.medianMs / 1e3) / 1e9) : ""]
        }
        out += markdown ? Format.markdownTable(opColumns, opRows, rightAligned: [1, 2, 3, 4, 5, 6])
                        : Format.columns(opColumns, opRows, rightAligned: [1, 2, 3, 4, 5, 6])
        out += "\n"
        out += Format.totalsSection(totalLines, markdown: markdown)
        out += Format.notesSection(notes, markdown: markdown)
        return out
    }

    /// The per-layer table's columns: the terminal, Markdown and HTML tables share them.
    static let layerColumns = ["#", "Node", "Op", "Inputs", "Outputs", "Params", "MACs", "FLOPs", "Act",
                               "Median ms", "p90 ms", "%Time", "Cum%", "GFLOP/s", "GB/s", "%Roof", "Bound"]
    /// The columns that hold numbers (right-aligned, sorted numerically).
    static let numericLayerColumns: Set<Int> = [0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]

    /// One row of the per-layer table (`number` is its place in execution order): each
    /// cell's text and, in numeric columns, the number behind it (nil when unknown).
    func layerCells(_ r: Profile.Row, number: Int, cumulative: Double) -> [(text: String, value: Double?)] {
        let name = r.fused.count > 1 ? "\(r.name) (+\(r.fused.count - 1))" : r.name
        let known: (Double) -> Double? = { r.costKnown ? $0 : nil }
        return [(String(number), Double(number)), (name, nil), (r.fusedOpTypes.isEmpty ? r.opType : r.fusedOpTypes, nil),
                (r.inputTypes.map(Format.shape).joined(separator: " "), nil),
                (r.outputTypes.map(Format.shape).joined(separator: " "), nil),
                (r.params == 0 ? "" : Format.count(r.params), Double(r.params)),
                (blank(r.macs + r.intMacs, known: r.costKnown), known(r.macs + r.intMacs)),
                (blank(r.flops, known: r.costKnown), known(r.flops)),
                (r.costKnown ? Format.bytes(Int(r.activationBytes)) : "?", known(r.activationBytes)),
                (Self.ms(r.latency.median), r.latency.median), (Self.ms(r.latency.p90), r.latency.p90),
                (String(format: "%.1f", r.share * 100), r.share * 100), (String(format: "%.1f", cumulative * 100), cumulative * 100),
                (r.placement.map { $0.achievedGflops > 0 ? String(format: "%.1f", $0.achievedGflops) : "" } ?? "", r.placement?.achievedGflops),
                (r.placement.map { String(format: "%.1f", $0.achievedGBps) } ?? "", r.placement?.achievedGBps),
                (r.placement.map { String(format: "%.0f", $0.percentOfRoof) } ?? "", r.placement?.percentOfRoof),
                (r.placement?.bound.rawValue ?? "", nil)]
    }

    var headerLines: [(String, String)] {
        let m = profile.measurements
        var lines: [(String, String)] = [
            ("Model", "\(model.path ?? "(memory)") (\(Format.bytes(model.fileBytes)))"),
            ("Inputs", model.graph.runtimeInputs.map { info in
                "\(info.name) \(Format.shape(profile.table.analyzed.inferred.type(of: info.name) ?? info.type?.tensorType))"
            }.joined(separator: ", ")),
            ("Runs", "\(profile.measuredRuns) with per-node timers and \(m.endToEndRuns.count) without, interleaved, after \(profile.warmupRuns) warm-up; \(String(format: "%.1f", profile.measuringSeconds)) s"
                + (profile.interrupted ? " (interrupted: partial)" : "")),
            ("Threads", "\(profile.threads)"),
        ]
        lines.append(("Device", deviceText))
        return lines
    }

    var deviceText: String {
        guard let device = profile.device, let roof = profile.roofline else { return "none (no roofline columns)" }
        let source = device.source == .measured ? "measured \(device.measuredAt ?? "")" : device.source.rawValue
        return "\(device.name): \(device.cpu), \(source); at \(profile.threads) threads \(String(format: "%.1f", roof.peakGflops)) GFLOP/s, "
            + "\(String(format: "%.1f", roof.bandwidthGBps)) GB/s, ridge \(String(format: "%.1f", roof.ridgeIntensity)) FLOP/B"
            + (profile.deviceSource.map { " (\($0))" } ?? "")
    }

    var totalLines: [(String, String)] {
        let t = profile.table.totals
        var lines: [(String, String)] = []
        if let e = profile.endToEnd {
            lines.append(("Latency (end to end)", "median \(Self.ms(e.median)) ms, p90 \(Self.ms(e.p90)) ms, p99 \(Self.ms(e.p99)) ms, min \(Self.ms(e.min)) ms over \(e.count) runs"))
        }
        var sum = "\(Self.ms(profile.nodeSumMs)) ms"
        if let overhead = profile.overheadPercent { sum += String(format: " (%+.1f%% against the end-to-end median)", overhead) }
        lines.append(("Sum of node medians", sum))
        if let timed = profile.timedRun, let e = profile.endToEnd, e.median > 0 {
            lines.append(("Runs with node timers", "median \(Self.ms(timed.median)) ms (\(String(format: "%+.1f%%", (timed.median - e.median) / e.median * 100)))"))
        }
        if let e = profile.endToEnd { lines.append(("Spread (p90/median)", String(format: "%.3f", e.spread))) }
        lines += [
            ("Params", Format.count(t.params)),
            ("MACs", Format.cost(t.macs + t.intMacs)),
            ("Weight bytes", Format.bytes(t.weightBytes)),
            ("Peak activations", Format.bytes(profile.memory.arenaBytes) + " (planned arena, used by the executor)"),
            ("Memory", "planned \(Format.bytes(profile.memory.plannedBytes)) (arena + weights and constants held), measured peak RSS "
                + (profile.memory.measuredPeakBytes.map { Format.bytes($0) + " above the \(Format.bytes(profile.memory.baselineResidentBytes ?? 0)) before loading" } ?? "unknown")),
            ("Threads", "\(profile.threads)"),
            ("Device profile", profile.device.map { "\($0.name)" + (profile.deviceSource.map { " (\($0))" } ?? "") } ?? "none"),
        ]
        return lines
    }

    var notes: [String] {
        var notes: [String] = []
        if profile.interrupted { notes.append("measuring was interrupted: figures cover the runs done so far") }
        if let e = profile.endToEnd, e.spread > Self.noisySpread {
            notes.append(String(format: "noisy timings: p90 is %.0f%% above the median; close other programs, use --pin, or raise --min-time", (e.spread - 1) * 100))
        }
        if !profile.notRun.isEmpty {
            let shown = profile.notRun.prefix(8).joined(separator: ", ")
            notes.append("\(profile.notRun.count) node(s) run no kernel (constants folded at plan time, Identity/Dropout removed): \(shown)\(profile.notRun.count > 8 ? ", ..." : "")")
        }
        let fused = profile.rows.filter { $0.fused.count > 1 }
        if !fused.isEmpty {
            notes.append("\(fused.count) row(s) are fused groups; `(+N)` counts the nodes fused into the named one (the JSON lists them)")
        }
        if profile.rows.contains(where: { $0.placement != nil && $0.flops + $0.intMacs == 0 }) {
            notes.append("rows without arithmetic (data movement) are placed against the bandwidth roof alone")
        }
        let uncosted = profile.rows.filter { !$0.costKnown }.map(\.opType)
        if !uncosted.isEmpty {
            notes.append("no static cost for \(uncosted.count) row(s) (\(Array(Set(uncosted)).sorted().joined(separator: ", "))): no roofline placement")
        }
        return notes
    }

    private func blank(_ v: Double, known: Bool) -> String {
        guard known else { return "?" }
        return v == 0 ? "" : Format.count(v)
    }

    /// Milliseconds with three significant decimals for small values.
    static func ms(_ v: Double) -> String {
        v >= 100 ? String(format: "%.1f", v) : v >= 10 ? String(format: "%.2f", v) : String(format: "%.3f", v)
    }

    // MARK: CSV

    func csv() -> String {
        var out = "name,op,fused_ops,fused,input_shapes,output_shapes,params,macs,int_macs,flops,bytes_read,bytes_written,intensity,"
            + "median_ms,p90_ms,min_ms,mean_ms,stdev_ms,share,cumulative_share,achieved_gflops,achieved_gbps,roofline_pct,bound\n"
        for item in shownRows {
            let r = item.row
            let fields: [String] = [
                r.name, r.opType, r.fusedOpTypes, r.fused.joined(separator: " "),
                r.inputTypes.map(Format.shape).joined(separator: " "), r.outputTypes.map(Format.shape).joined(separator: " "),
                String(r.params), number(r.macs, r.costKnown), number(r.intMacs, r.costKnown), number(r.flops, r.costKnown),
                number(r.bytesRead, r.costKnown), number(r.bytesWritten, r.costKnown),
                r.intensity.map { String(format: "%.4g", $0) } ?? "",
                precise(r.latency.median), precise(r.latency.p90), precise(r.latency.min), precise(r.latency.mean), precise(r.latency.stdev),
                precise(r.share), precise(item.cumulative),
                r.placement.map { precise($0.achievedGflops) } ?? "", r.placement.map { precise($0.achievedGBps) } ?? "",
                r.placement.map { precise($0.percentOfRoof) } ?? "", r.placement?.bound.rawValue ?? "",
            ]
            out += fields.map(Format.csvField).joined(separator: ",") + "\n"
        }
        return out
    }

    func byOpCSV() -> String {
        var out = "op,count,median_ms,share,macs,int_macs,flops,bytes_moved\n"
        for o in profile.byOp {
            out += [o.opType, String(o.count), precise(o.medianMs), precise(o.share), number(o.macs, true),
                    number(o.intMacs, true), number(o.flops, true), number(o.bytesMoved, true)].map(Format.csvField).joined(separator: ",") + "\n"
        }
        return out
    }

    private func number(_ v: Double, _ known: Bool) -> String {
        guard known else { return "" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }

    private func precise(_ v: Double) -> String { String(format: "%.6g", v) }

    // MARK: JSON

    func jsonStats(_ s: LatencyStats, e2e: Bool) -> JSON {
        var fields: [(String, JSON)] = [("median", .double(s.median)), ("p90", .double(s.p90))]
        if e2e { fields.append(("p99", .double(s.p99))) }
        fields += [("min", .double(s.min)), ("max", .double(s.max)), ("mean", .double(s.mean)), ("stdev", .double(s.stdev)), ("count", .int(s.count))]
        return .object(fields)
    }

    func jsonRow(_ r: Profile.Row, cumulative: Double) -> JSON {
        func value(_ v: Double) -> JSON { r.costKnown ? .double(v) : .null }
        return .object([
            ("name", .string(r.name)),
            ("op", .string(r.opType)),
            ("fused_ops", .string(r.fusedOpTypes)),
            ("fused", .array(r.fused.map(JSON.string))),
            ("op_class", .string(r.opClass.rawValue)),
            ("input_shapes", .array(r.inputTypes.map(Format.jsonShape))),
            ("output_shapes", .array(r.outputTypes.map(Format.jsonShape))),
            ("params", .int(r.params)),
            ("macs", value(r.macs)),
            ("int_macs", value(r.intMacs)),
            ("source_zero_point", .bool(r.sourceZeroPoint)),
            ("copies_nothing", .bool(r.copiesNothing)),
            ("relayout_bytes", .double(r.relayoutBytes)),
            ("implementation", r.implementation.map(JSON.string) ?? .null),
            ("flops", value(r.flops)),
            ("bytes_read", value(r.bytesRead)),
            ("bytes_written", value(r.bytesWritten)),
            ("activation_bytes", value(r.activationBytes)),
            ("intensity", r.costKnown ? r.intensity.map(JSON.double) ?? .null : .null),
            ("latency_ms", jsonStats(r.latency, e2e: false)),
            ("share", .double(r.share)),
            ("cumulative_share", .double(cumulative)),
            ("achieved_gflops", r.placement.map { .double($0.achievedGflops) } ?? .null),
            ("achieved_gbps", r.placement.map { .double($0.achievedGBps) } ?? .null),
            ("roofline_attainable", r.placement.map { .double($0.attainable) } ?? .null),
            ("roofline_pct", r.placement.map { .double($0.percentOfRoof) } ?? .null),
            ("bound", r.placement.map { .string($0.bound.rawValue) } ?? .null),
        ])
    }

    public func json() -> JSON {
        let p = profile
        let t = p.table.totals
        var totals: [(String, JSON)] = [
            ("latency_ms", p.endToEnd.map { jsonStats($0, e2e: true) } ?? .null),
            ("timed_runs_latency_ms", p.timedRun.map { jsonStats($0, e2e: true) } ?? .null),
            ("node_sum_ms", .double(p.nodeSumMs)),
            ("overhead_pct", p.overheadPercent.map(JSON.double) ?? .null),
            ("spread", p.endToEnd.map { .double($0.spread) } ?? .null),
            ("params", .int(t.params)),
        ]
        Format.appendCost("macs", t.macs, to: &totals)
        Format.appendCost("int_macs", t.intMacs, to: &totals)
        Format.appendCost("flops", t.flops, to: &totals)
        totals += [
            ("weight_bytes", .int(t.weightBytes)),
            ("planned_peak_activation_bytes", .int(p.memory.arenaBytes)),
            ("constant_bytes", .int(p.memory.constantBytes)),
            ("planned_bytes", .int(p.memory.plannedBytes)),
            ("peak_rss_bytes", p.memory.measuredPeakBytes.map(JSON.int) ?? .null),
            ("baseline_rss_bytes", p.memory.baselineResidentBytes.map(JSON.int) ?? .null),
            ("threads", .int(p.threads)),
            ("runs", .int(p.measuredRuns)),
            ("end_to_end_runs", .int(p.measurements.endToEndRuns.count)),
            ("warmup_runs", .int(p.warmupRuns)),
            ("measuring_seconds", .double(p.measuringSeconds)),
            ("interrupted", .bool(p.interrupted)),
        ]
        var device: JSON = .null
        if let d = p.device, let roof = p.roofline {
            device = .object([
                ("name", .string(d.name)), ("cpu", .string(d.cpu)), ("source", .string(d.source.rawValue)),
                ("measured_at", d.measuredAt.map(JSON.string) ?? .null), ("path", p.deviceSource.map(JSON.string) ?? .null),
                ("peak_gflops", .double(roof.peakGflops)), ("bandwidth_gbps", .double(roof.bandwidthGBps)),
                ("ridge_flops_per_byte", .double(roof.ridgeIntensity)),
            ])
        }
        return .object([
            ("schema", .string(Self.schema)),
            ("model", .string(model.path ?? "")),
            ("inputs", .array(model.graph.runtimeInputs.map { info in
                let type = p.table.analyzed.inferred.type(of: info.name) ?? info.type?.tensorType
                return .object([("name", .string(info.name)), ("dtype", type.map { .string($0.elementType.description) } ?? .null),
                                ("shape", Format.jsonShape(type))])
            })),
            ("device", device),
            ("totals", .object(totals)),
            ("nodes", .array(shownRows.map { jsonRow($0.row, cumulative: $0.cumulative) })),
            ("by_op", .array(p.byOp.map { o in
                .object([("op", .string(o.opType)), ("count", .int(o.count)), ("median_ms", .double(o.medianMs)),
                         ("share", .double(o.share)), ("macs", .double(o.macs)), ("int_macs", .double(o.intMacs)),
                         ("flops", .double(o.flops)), ("bytes_moved", .double(o.bytesMoved))])
            })),
            ("not_run", .array(p.notRun.map(JSON.string))),
            ("notes", .array(notes.map(JSON.string))),
        ])
    }
}
