import Foundation
import VernierCost
import VernierGraph

/// Renders `vernier predict`: the profile's table shape with predicted latency in place
/// of measured figures, per kernel its roofline time, the efficiency applied and the
/// bound; totals; notes saying whether the device profile is calibrated.
public struct PredictionReport {
    public let prediction: LatencyPrediction
    /// Where the device profile came from (a file, or "built-in").
    public let deviceOrigin: String?
    public var top: Int?
    /// Bumped only when a field is removed or renamed.
    public static let schema = "vernier.predict/1"

    public init(_ prediction: LatencyPrediction, deviceOrigin: String? = nil, top: Int? = nil) {
        self.prediction = prediction
        self.deviceOrigin = deviceOrigin
        self.top = top
    }

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .table: return text(markdown: false)
        case .md: return text(markdown: true)
        case .csv: return csv()
        case .json: return json().serialized() + "\n"
        }
    }

    private var model: Model { prediction.table.analyzed.model }

    /// Rows shown (all, or the `top` slowest), each with its running share in shown order.
    var shownRows: [(row: LatencyPrediction.Row, cumulative: Double)] {
        var rows = prediction.rows
        if let top {
            rows = Array(rows.enumerated().sorted {
                $0.element.predictedMs != $1.element.predictedMs ? $0.element.predictedMs > $1.element.predictedMs : $0.offset < $1.offset
            }.map(\.element).prefix(max(0, top)))
        }
        var running = 0.0
        return rows.map { row in
            running += row.share
            return (row, running)
        }
    }

    var deviceText: String {
        let d = prediction.device
        var text = "\(d.name): \(d.cpu), \(d.source.rawValue), \(d.isCalibrated ? "calibrated" : "uncalibrated")"
        if let roofline = d.roofline(threads: prediction.threads) {
            text += String(format: "; at %d threads %.1f GFLOP/s, %.1f GB/s", prediction.threads, roofline.peakGflops, roofline.bandwidthGBps)
        }
        return text + (deviceOrigin.map { " (\($0))" } ?? "")
    }

    var notes: [String] {
        var notes: [String] = []
        let d = prediction.device
        if !d.isCalibrated {
            notes.append("uncalibrated prediction: \(d.name)'s efficiencies are built-in priors, not fitted on measurements there; "
                + "expect errors of tens of percent. Calibrate with `vernier device --calibrate \(d.name) --from PROFILE.json...`")
        } else if let e = d.efficiency {
            notes.append("calibrated on: " + e.fittedOn.joined(separator: ", "))
        }
        if (d.roofs.last?.threads ?? 1) < prediction.threads {
            notes.append("the profile has no roof for \(prediction.threads) threads; the highest it has (\(d.roofs.last?.threads ?? 1)) is used")
        }
        let unknown = prediction.unpredicted
        if !unknown.isEmpty {
            notes.append("\(unknown.count) kernel(s) with unknown costs add nothing to the total: " + unknown.prefix(5).joined(separator: ", ")
                + (unknown.count > 5 ? ", ..." : ""))
        }
        notes.append("predicted = time at the roofline / efficiency of the op class at that size + per-kernel overhead; total adds the per-run overhead")
        return notes
    }

    static let columns = ["#", "Node", "Op", "Class", "Outputs", "MACs", "FLOPs", "Bytes", "Bound", "Ideal ms", "Eff", "Predicted ms", "%Time", "Cum%"]
    static let numeric: Set<Int> = [0, 5, 6, 7, 9, 10, 11, 12, 13]

    func cells(_ r: LatencyPrediction.Row, number: Int, cumulative: Double) -> [String] {
        let c = r.costs
        let name = c.fused.count > 1 ? "\(c.name) (+\(c.fused.count - 1))" : c.name
        let p = r.prediction
        return [String(number), name, c.fusedOpTypes.isEmpty ? c.opType : c.fusedOpTypes, c.opClass.rawValue,
                c.outputTypes.map(Format.shape).joined(separator: " "),
                c.costKnown ? (c.macs + c.intMacs == 0 ? "" : Format.count(c.macs + c.intMacs)) : "?",
                c.costKnown ? (c.flops == 0 ? "" : Format.count(c.flops)) : "?",
                c.costKnown ? Format.bytes(Int(c.bytesMoved)) : "?",
                p?.bound.rawValue ?? "", p.map { ProfileReport.ms($0.idealUs / 1e3) } ?? "",
                p.map { String(format: "%.2f", $0.efficiency) } ?? "", p.map { _ in ProfileReport.ms(r.predictedMs) } ?? "?",
                String(format: "%.1f", r.share * 100), String(format: "%.1f", cumulative * 100)]
    }

    func text(markdown: Bool) -> String {
        var out = ""
        let header: [(String, String)] = [
            ("Model", "\(model.path ?? "(memory)") (\(Format.bytes(model.fileBytes)))"),
            ("Device", deviceText),
            ("Threads", String(prediction.threads)),
        ]
        if markdown {
            out += "# Predicted latency of `\(model.path ?? "(memory)")`\n\n"
            for (k, v) in header { out += "- **\(k)**: \(v)\n" }
        } else {
            for (k, v) in header { out += k.padding(toLength: 9, withPad: " ", startingAt: 0) + v + "\n" }
        }
        out += "\n"
        if markdown { out += top.map { "## Top \($0) layers by predicted latency\n\n" } ?? "## Layers\n\n" }
        else if let top { out += "Top \(top) layers by predicted latency:\n" }
        let index = Dictionary(prediction.rows.enumerated().map { ($0.element.costs.name, $0.offset + 1) }, uniquingKeysWith: { a, _ in a })
        let body = shownRows.map { cells($0.row, number: index[$0.row.costs.name] ?? 0, cumulative: $0.cumulative) }
        out += markdown ? Format.markdownTable(Self.columns, body, rightAligned: Self.numeric)
                        : Format.columns(Self.columns, body, rightAligned: Self.numeric)
        out += "\n"
        out += Format.totalsSection([
            ("predicted latency", ProfileReport.ms(prediction.totalMs) + " ms"),
            ("kernels", "\(prediction.rows.count), summing to \(ProfileReport.ms(prediction.kernelSumMs)) ms"),
            ("per-run overhead", ProfileReport.ms(prediction.perRunMs) + " ms"),
            ("params", Format.count(prediction.table.totals.params)),
            ("MACs", Format.cost(prediction.table.totals.macs)),
        ], markdown: markdown)
        out += Format.notesSection(notes, markdown: markdown)
        return out
    }

    private func precise(_ v: Double) -> String { String(format: "%.6g", v) }

    func csv() -> String {
        var out = "name,op,fused_ops,fused,op_class,output_shapes,params,macs,int_macs,flops,bytes_read,bytes_written,bound,ideal_ms,efficiency,predicted_ms,share,cumulative_share\n"
        for item in shownRows {
            let c = item.row.costs, p = item.row.prediction
            let known: (Double) -> String = { c.costKnown ? precise($0) : "" }
            out += [c.name, c.opType, c.fusedOpTypes, c.fused.joined(separator: " "), c.opClass.rawValue,
                    c.outputTypes.map(Format.shape).joined(separator: " "), String(c.params), known(c.macs), known(c.intMacs),
                    known(c.flops), known(c.bytesRead), known(c.bytesWritten), p?.bound.rawValue ?? "",
                    p.map { precise($0.idealUs / 1e3) } ?? "", p.map { precise($0.efficiency) } ?? "",
                    p.map { _ in precise(item.row.predictedMs) } ?? "", precise(item.row.share), precise(item.cumulative)]
                .map(Format.csvField).joined(separator: ",") + "\n"
        }
        return out
    }

    public func json() -> JSON {
        let d = prediction.device
        let t = prediction.table.totals
        var totals: [(String, JSON)] = [
            ("predicted_ms", .double(prediction.totalMs)),
            ("kernel_sum_ms", .double(prediction.kernelSumMs)),
            ("per_run_overhead_ms", .double(prediction.perRunMs)),
            ("params", .int(t.params)),
        ]
        Format.appendCost("macs", t.macs, to: &totals)
        Format.appendCost("flops", t.flops, to: &totals)
        totals += [("weight_bytes", .int(t.weightBytes)), ("threads", .int(prediction.threads))]
        let roofline = d.roofline(threads: prediction.threads)
        return .object([
            ("schema", .string(Self.schema)),
            ("model", .string(model.path ?? "")),
            ("device", .object([
                ("name", .string(d.name)), ("cpu", .string(d.cpu)), ("source", .string(d.source.rawValue)),
                ("calibrated", .bool(d.isCalibrated)), ("fitted_on", .array((d.efficiency?.fittedOn ?? []).map(JSON.string))),
                ("path", deviceOrigin.map(JSON.string) ?? .null),
                ("peak_gflops", roofline.map { .double($0.peakGflops) } ?? .null),
                ("bandwidth_gbps", roofline.map { .double($0.bandwidthGBps) } ?? .null),
            ])),
            ("totals", .object(totals)),
            ("nodes", .array(shownRows.map { item in
                let c = item.row.costs, p = item.row.prediction
                func value(_ v: Double) -> JSON { c.costKnown ? .double(v) : .null }
                return .object([
                    ("name", .string(c.name)), ("op", .string(c.opType)), ("fused_ops", .string(c.fusedOpTypes)),
                    ("fused", .array(c.fused.map(JSON.string))), ("op_class", .string(c.opClass.rawValue)),
                    ("input_shapes", .array(c.inputTypes.map(Format.jsonShape))),
                    ("output_shapes", .array(c.outputTypes.map(Format.jsonShape))),
                    ("params", .int(c.params)), ("macs", value(c.macs)), ("int_macs", value(c.intMacs)), ("flops", value(c.flops)),
                    ("copies_nothing", .bool(c.copiesNothing)), ("relayout_bytes", .double(c.relayoutBytes)),
                    ("implementation", c.implementation.map(JSON.string) ?? .null), ("bytes_read", value(c.bytesRead)), ("bytes_written", value(c.bytesWritten)),
                    ("bound", p.map { .string($0.bound.rawValue) } ?? .null),
                    ("ideal_ms", p.map { .double($0.idealUs / 1e3) } ?? .null),
                    ("efficiency", p.map { .double($0.efficiency) } ?? .null),
                    ("overhead_ms", p.map { .double($0.overheadUs / 1e3) } ?? .null),
                    ("predicted_ms", p.map { _ in .double(item.row.predictedMs) } ?? .null),
                    ("share", .double(item.row.share)), ("cumulative_share", .double(item.cumulative)),
                ])
            })),
            ("not_run", .array(prediction.notRun.map(JSON.string))),
            ("notes", .array(notes.map(JSON.string))),
        ])
    }
}
