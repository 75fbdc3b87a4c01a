import VernierCost
import VernierGraph

/// Renders `vernier summary`: the model header, one row per node, totals and notes.
public struct SummaryReport {
    public let table: CostTable
    /// Bumped only when a field is removed or renamed (which we avoid); new fields do not bump it.
    public static let schema = "vernier.summary/1"

    public init(_ table: CostTable) { self.table = table }

    public func render(_ format: OutputFormat) -> String {
        switch format {
        case .table: return text(markdown: false)
        case .md: return text(markdown: true)
        case .csv: return csv()
        case .json: return json().serialized() + "\n"
        }
    }

    // MARK: Rows, flattened with subgraph paths

    struct Row {
        var path: String
        var depth: Int
        var cost: NodeCost
    }

    var rows: [Row] {
        var out: [Row] = []
        func walk(_ nodes: [NodeCost], path: String, depth: Int) {
            for n in nodes {
                out.append(Row(path: path, depth: depth, cost: n))
                for sub in n.subgraphs { walk(sub.nodes, path: path + n.name + "/" + sub.attribute + "/", depth: depth + 1) }
            }
        }
        walk(table.nodes, path: "", depth: 0)
        return out
    }

    private var model: Model { table.analyzed.model }

    /// Shapes of the inputs that are not weights; `-` marks an omitted optional input.
    private func activationShapes(_ n: NodeCost, names: [String]) -> String {
        zip(zip(n.inputTypes, n.inputIsWeight), names).filter { !$0.0.1 }
            .map { $0.1.isEmpty ? "-" : Format.shape($0.0.0) }.joined(separator: " ")
    }

    private var opsetText: String {
        model.opsets.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", ")
    }

    private func valueLine(_ infos: [ValueInfo]) -> String {
        infos.map { info in
            let t = table.analyzed.inferred.type(of: info.name) ?? info.type?.tensorType
            return "\(info.name) \(t.map { "\($0.elementType)\($0.shape?.shapeDescription ?? "[?]")" } ?? "?")"
        }.joined(separator: ", ")
    }

    // MARK: Table and Markdown

    func text(markdown: Bool) -> String {
        var out = ""
        let path = model.path ?? "(memory)"
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        let header: [(String, String)] = [
            ("Model", "\(path) (\(Format.bytes(model.fileBytes))\(model.externalDataFiles > 0 ? " with external data" : ""))"),
            ("Producer", producer.isEmpty ? "(not given)" : producer),
            ("IR version", "\(model.irVersion)"),
            ("Opsets", opsetText),
            ("Inputs", valueLine(model.graph.runtimeInputs)),
            ("Outputs", valueLine(model.graph.outputs)),
        ]
        if markdown {
            out += "# Summary of `\(path)`\n\n"
            for (k, v) in header.dropFirst() { out += "- **\(k)**: \(v)\n" }
            out += "\n"
        } else {
            for (k, v) in header { out += k.padding(toLength: 11, withPad: " ", startingAt: 0) + v + "\n" }
            out += "\n"
        }
        let columns = ["#", "Node", "Op", "Inputs", "Outputs", "Params", "MACs", "FLOPs", "Bytes", "FLOP/B", "Act", "%FLOPs", "Cum%"]
        let shares = flopShares
        var index = 0
        let body: [[String]] = rows.map { r in
            let n = r.cost
            let number: String
            if r.depth == 0 { index += 1; number = String(index) } else { number = "" }
            let indent = markdown ? String(repeating: "↳ ", count: r.depth) : String(repeating: "  ", count: r.depth)
            let moved: Cost? = n.bytesRead.flatMap { rd in n.bytesWritten.map { rd + $0 } }
            let share = r.depth == 0 ? shares[index - 1] : nil
            return [number, indent + (r.depth > 0 ? r.path : "") + n.name, n.qualifiedOpType,
                    activationShapes(n, names: n.inputNames),
                    n.outputTypes.map(Format.shape).joined(separator: " "),
                    n.params == 0 ? "" : Format.count(n.params),
                    zeroBlank(n.macs.map { $0 + (n.intMacs ?? .zero) }), zeroBlank(n.flops), Format.bytes(moved),
                    n.intensity.map { String(format: "%.1f", $0) } ?? "",
                    Format.bytes(n.activationBytes),
                    share.map { String(format: "%.1f", $0.share * 100) } ?? "",
                    share.map { String(format: "%.1f", $0.cumulative * 100) } ?? ""]
        }
        let numeric: Set<Int> = [0, 5, 6, 7, 8, 9, 10, 11, 12]
        out += markdown ? Format.markdownTable(columns, body, rightAligned: numeric)
                        : Format.columns(columns, body, rightAligned: numeric)
        out += "\n"
        out += markdown ? "## By op type\n\n" : "By op type:\n"
        let opColumns = ["Op", "Count", "MACs", "FLOPs", "%FLOPs"]
        let totalFlops = table.totals.flops.value ?? 0
        let opRows: [[String]] = table.byOp.sorted { ($0.flops.value ?? 0) > ($1.flops.value ?? 0) }.map { o in
            [o.opType, String(o.count), zeroBlank(o.macs + o.intMacs), zeroBlank(o.flops),
             totalFlops > 0 ? o.flops.value.map { String(format: "%.1f", $0 / totalFlops * 100) } ?? "" : ""]
        }
        out += markdown ? Format.markdownTable(opColumns, opRows, rightAligned: [1, 2, 3, 4])
                        : Format.columns(opColumns, opRows, rightAligned: [1, 2, 3, 4])
        out += "\n"
        let totalLines = self.totalLines
        out += Format.totalsSection(totalLines, markdown: markdown)
        out += Format.notesSection(notes, markdown: markdown)
        return out
    }

    private func zeroBlank(_ c: Cost?) -> String {
        guard let c else { return "?" }
        return c.value == 0 ? "" : Format.cost(c)
    }

    /// Each top-level node's share of the model's FLOPs and the running total, when
    /// FLOPs are known numbers.
    var flopShares: [(share: Double, cumulative: Double)?] {
        guard let total = table.totals.flops.value, total > 0 else { return table.nodes.map { _ in nil } }
        var running = 0.0
        return table.nodes.map { n in
            guard let f = n.flops?.value else { return nil }
            running += f
            return (f / total, running / total)
        }
    }

    var totalLines: [(String, String)] {
        let t = table.totals
        var lines: [(String, String)] = [
            ("Nodes", "\(t.nodes)" + (t.nodesIncludingSubgraphs != t.nodes ? " (\(t.nodesIncludingSubgraphs) with subgraphs)" : "")),
            ("Params", Format.count(t.params)),
            ("MACs", Format.cost(t.macs)),
            ("FLOPs", Format.cost(t.flops)),
        ]
        if t.intMacs != .zero { lines.append(("Integer MACs", Format.cost(t.intMacs))) }
        lines += [
            ("Weight bytes", Format.bytes(t.weightBytes)),
            ("Activations (no reuse)", table.memory.map { Format.bytes($0.naiveBytes) } ?? Format.bytes(table.naiveActivationBytes)),
            ("Peak activations", table.memory.map { Format.bytes($0.arenaBytes) + " (planned arena)" } ?? "not planned: \(table.memoryNote ?? "")"),
        ]
        return lines
    }

    /// Unknown ops, unbound symbols and inference issues, in a form a user can act on.
    var notes: [String] {
        var notes: [String] = []
        let analyzed = table.analyzed
        let unknown = analyzed.unknownOps
        if !unknown.isEmpty {
            notes.append("ops without a shape rule (outputs unknown): \(unknown.joined(separator: ", "))")
        }
        let symbols = analyzed.inferred.unboundSymbols
        if !symbols.isEmpty {
            notes.append("unbound symbolic dims: \(symbols.joined(separator: ", ")); bind them with --dim SYMBOL=N or --input NAME=DIMS")
        }
        for issue in analyzed.allIssues where issue.kind != .unknownOp {
            notes.append(issue.description)
        }
        let uncosted = table.nodes.filter { $0.work == nil }.map(\.qualifiedOpType)
        if !uncosted.isEmpty {
            notes.append("no cost for \(uncosted.count) node(s) (no formula or unknown shapes): \(Array(Set(uncosted)).sorted().joined(separator: ", ")); totals leave them out")
        }
        if table.nodes.contains(where: { $0.opType == "If" }) {
            notes.append("If nodes count their larger branch in the totals")
        }
        if let note = analyzed.libONNXNote { notes.append("libonnx fallback unavailable: \(note)") }
        return notes
    }

    // MARK: CSV

    func csv() -> String {
        var out = "graph,name,op,domain,input_shapes,output_shapes,params,macs,int_macs,flops,bytes_read,bytes_written,activation_bytes,intensity\n"
        for r in rows {
            let n = r.cost
            let fields = [r.path, n.name, n.opType, n.domain,
                          zip(n.inputTypes, n.inputNames).map { $0.1.isEmpty ? "-" : Format.shape($0.0) }.joined(separator: " "),
                          n.outputTypes.map(Format.shape).joined(separator: " "),
                          String(n.params), csvCost(n.macs), csvCost(n.intMacs), csvCost(n.flops),
                          csvCost(n.bytesRead), csvCost(n.bytesWritten), csvCost(n.activationBytes),
                          n.intensity.map { String(format: "%.4g", $0) } ?? ""]
            out += fields.map(Format.csvField).joined(separator: ",") + "\n"
        }
        return out
    }

    private func csvCost(_ c: Cost?) -> String {
        guard let c else { return "" }
        if let v = c.value { return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
        return c.render { String(format: "%g", $0) }
    }

    // MARK: JSON

    func jsonNode(_ n: NodeCost) -> JSON {
        var fields: [(String, JSON)] = [
            ("name", .string(n.name)),
            ("op", .string(n.opType)),
            ("domain", .string(n.domain)),
            ("input_shapes", .array(n.inputTypes.map(Format.jsonShape))),
            ("input_dtypes", .array(n.inputTypes.map { $0.map { .string($0.elementType.description) } ?? .null })),
            ("output_shapes", .array(n.outputTypes.map(Format.jsonShape))),
            ("output_dtypes", .array(n.outputTypes.map { $0.map { .string($0.elementType.description) } ?? .null })),
            ("params", .int(n.params)),
        ]
        Format.appendCost("macs", n.macs, to: &fields)
        Format.appendCost("flops", n.flops, to: &fields)
        Format.appendCost("int_macs", n.intMacs, to: &fields)
        Format.appendCost("bytes_read", n.bytesRead, to: &fields)
        Format.appendCost("bytes_written", n.bytesWritten, to: &fields)
        Format.appendCost("activation_bytes", n.activationBytes, to: &fields)
        fields.append(("intensity", n.intensity.map(JSON.double) ?? .null))
        if !n.subgraphs.isEmpty {
            fields.append(("subgraphs", .array(n.subgraphs.map { sub in
                .object([("attribute", .string(sub.attribute)), ("nodes", .array(sub.nodes.map(jsonNode)))])
            })))
        }
        return .object(fields)
    }

    func jsonValues(_ infos: [ValueInfo]) -> JSON {
        .array(infos.map { info in
            let t = table.analyzed.inferred.type(of: info.name) ?? info.type?.tensorType
            return .object([("name", .string(info.name)),
                            ("dtype", t.map { .string($0.elementType.description) } ?? .null),
                            ("shape", Format.jsonShape(t))])
        })
    }

    var totalsFields: [(String, JSON)] {
        let t = table.totals
        var f: [(String, JSON)] = [
            ("nodes", .int(t.nodes)),
            ("nodes_including_subgraphs", .int(t.nodesIncludingSubgraphs)),
            ("params", .int(t.params)),
        ]
        Format.appendCost("macs", t.macs, to: &f)
        Format.appendCost("flops", t.flops, to: &f)
        Format.appendCost("int_macs", t.intMacs, to: &f)
        f.append(("weight_bytes", .int(t.weightBytes)))
        Format.appendCost("naive_activation_bytes", table.naiveActivationBytes, to: &f)
        f.append(("peak_activation_bytes", table.memory.map { .int($0.arenaBytes) } ?? .null))
        Format.appendCost("bytes_read", t.bytesRead, to: &f)
        Format.appendCost("bytes_written", t.bytesWritten, to: &f)
        f.append(("uncosted_nodes", .array(t.uncostedNodes.map(JSON.string))))
        return f
    }

    public func json() -> JSON {
        let analyzed = table.analyzed
        return .object([
            ("schema", .string(Self.schema)),
            ("model", .string(model.path ?? "")),
            ("producer", .object([("name", .string(model.producerName)), ("version", .string(model.producerVersion))])),
            ("ir_version", .int(model.irVersion)),
            ("opsets", .array(model.opsets.map { .object([("domain", .string($0.domain)), ("version", .int($0.version))]) })),
            ("file_bytes", .int(model.fileBytes)),
            ("inputs", jsonValues(model.graph.runtimeInputs)),
            ("outputs", jsonValues(model.graph.outputs)),
            ("totals", .object(totalsFields)),
            ("nodes", .array(table.nodes.map(jsonNode))),
            ("by_op", .array(table.byOp.map { o in
                var f: [(String, JSON)] = [("op", .string(o.opType)), ("count", .int(o.count))]
                Format.appendCost("macs", o.macs, to: &f)
                Format.appendCost("flops", o.flops, to: &f)
                Format.appendCost("int_macs", o.intMacs, to: &f)
                return .object(f)
            })),
            ("memory", .object([
                ("planned", .bool(table.memory != nil)),
                ("note", table.memoryNote.map(JSON.string) ?? .null),
                ("arena_bytes", table.memory.map { .int($0.arenaBytes) } ?? .null),
                ("live_bytes", table.memory.map { .array($0.liveBytes.map(JSON.int)) } ?? .null),
            ])),
            ("unknown_ops", .array(analyzed.unknownOps.map(JSON.string))),
            ("unbound_symbols", .array(analyzed.inferred.unboundSymbols.map(JSON.string))),
            ("issues", .array(analyzed.allIssues.map { i in
                .object([("node", .string(i.node)), ("op", .string(i.opType)), ("kind", .string(i.kind.rawValue)), ("message", .string(i.message))])
            })),
        ])
    }
}
