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

    private func activationShapes(_ types: [TensorType?], weights: [Bool]) -> String {
        zip(types, weights).filter { !$0.1 }.map { Format.shape($0.0) }.joined(separator: " ")
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
            ("Model", "\(path) (\(Format.bytes(model.fileBytes)))"),
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
        let columns = ["#", "Node", "Op", "Inputs", "Outputs", "Params"]
        var index = 0
        let body: [[String]] = rows.map { r in
            let n = r.cost
            let number: String
            if r.depth == 0 { index += 1; number = String(index) } else { number = "" }
            let indent = markdown ? String(repeating: "↳ ", count: r.depth) : String(repeating: "  ", count: r.depth)
            let op = n.domain.isEmpty || n.domain == "ai.onnx" ? n.opType : "\(n.domain).\(n.opType)"
            return [number, indent + (r.depth > 0 ? r.path : "") + n.name, op,
                    activationShapes(n.inputTypes, weights: n.inputIsWeight),
                    n.outputTypes.map(Format.shape).joined(separator: " "),
                    n.params == 0 ? "" : Format.count(n.params)]
        }
        out += markdown ? Format.markdownTable(columns, body, rightAligned: [0, 5])
                        : Format.columns(columns, body, rightAligned: [0, 5])
        let t = table.totals
        out += "\n"
        let totals = "Totals: \(t.nodes) nodes\(t.nodesIncludingSubgraphs != t.nodes ? " (\(t.nodesIncludingSubgraphs) with subgraphs)" : ""), "
            + "\(Format.count(t.params)) params, \(Format.bytes(t.weightBytes)) of weights"
        out += (markdown ? "**\(totals)**" : totals) + "\n"
        let notes = self.notes
        if !notes.isEmpty {
            out += markdown ? "\n## Notes\n\n" : "\nNotes:\n"
            for n in notes { out += (markdown ? "- " : "  - ") + n + "\n" }
        }
        return out
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
        if let note = analyzed.libONNXNote { notes.append("libonnx fallback unavailable: \(note)") }
        return notes
    }

    // MARK: CSV

    func csv() -> String {
        var out = "graph,name,op,domain,input_shapes,output_shapes,params\n"
        for r in rows {
            let n = r.cost
            let fields = [r.path, n.name, n.opType, n.domain,
                          n.inputTypes.map(Format.shape).joined(separator: " "),
                          n.outputTypes.map(Format.shape).joined(separator: " "),
                          String(n.params)]
            out += fields.map(Format.csvField).joined(separator: ",") + "\n"
        }
        return out
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

    public func json() -> JSON {
        let analyzed = table.analyzed
        let t = table.totals
        return .object([
            ("schema", .string(Self.schema)),
            ("model", .string(model.path ?? "")),
            ("producer", .object([("name", .string(model.producerName)), ("version", .string(model.producerVersion))])),
            ("ir_version", .int(model.irVersion)),
            ("opsets", .array(model.opsets.map { .object([("domain", .string($0.domain)), ("version", .int($0.version))]) })),
            ("file_bytes", .int(model.fileBytes)),
            ("inputs", jsonValues(model.graph.runtimeInputs)),
            ("outputs", jsonValues(model.graph.outputs)),
            ("totals", .object([
                ("nodes", .int(t.nodes)),
                ("nodes_including_subgraphs", .int(t.nodesIncludingSubgraphs)),
                ("params", .int(t.params)),
                ("weight_bytes", .int(t.weightBytes)),
            ])),
            ("nodes", .array(table.nodes.map(jsonNode))),
            ("unknown_ops", .array(analyzed.unknownOps.map(JSON.string))),
            ("unbound_symbols", .array(analyzed.inferred.unboundSymbols.map(JSON.string))),
            ("issues", .array(analyzed.allIssues.map { i in
                .object([("node", .string(i.node)), ("op", .string(i.opType)), ("kind", .string(i.kind.rawValue)), ("message", .string(i.message))])
            })),
        ])
    }
}
