import Foundation
import Testing

/// `vernier summary` run as a subprocess: exit codes, output formats, the JSON schema,
/// hand-checked shapes and params, `--output`, bad flags and the broken models.
@Suite struct SummaryCommandTests {
    static let formats = ["table", "csv", "json", "md"]

    /// Top-level node count of each good model. Obtained once, while writing this test, with
    /// `.venv/bin/python -c "import onnx; print(len(onnx.load(P, load_external_data=False).graph.node))"`
    /// for each file, and matching the op lists in Models/README.md (e.g. cifar_cnn:
    /// 3 x (Conv, Relu, MaxPool) + Flatten + Gemm + Relu + Gemm = 13; tiny_if: ReduceSum,
    /// Greater, If = 3; ext_weights: Gemm, Relu, Gemm = 3).
    static let expectedNodeCounts: [String: Int] = [
        "Models/bert_mini.onnx": 97,
        "Models/cifar_cnn.onnx": 13,
        "Models/lstm_mini.onnx": 8,
        "Models/mobilenetv2_mini.onnx": 29,
        "Models/resnet_mini.onnx": 30,
        "Models/tiny_if.onnx": 3,
        "Models/unet_mini.onnx": 28,
        "Models/yolo_mini.onnx": 42,
        "Models/external/ext_weights.onnx": 3,
    ]

    struct Value: CustomStringConvertible {
        var name: String
        var dtype: String
        var shape: [String]
        var description: String { "\(name) \(dtype)\(shape)" }
    }

    /// Inputs and outputs as listed in Models/README.md ("Good models" table).
    static let expectedSignatures: [String: (inputs: [Value], outputs: [Value])] = [
        "Models/cifar_cnn.onnx": ([Value(name: "input", dtype: "float", shape: ["1", "3", "32", "32"])],
                                  [Value(name: "logits", dtype: "float", shape: ["1", "10"])]),
        "Models/resnet_mini.onnx": ([Value(name: "input", dtype: "float", shape: ["1", "3", "64", "64"])],
                                    [Value(name: "logits", dtype: "float", shape: ["1", "10"])]),
        "Models/mobilenetv2_mini.onnx": ([Value(name: "input", dtype: "float", shape: ["1", "3", "64", "64"])],
                                         [Value(name: "logits", dtype: "float", shape: ["1", "10"])]),
        "Models/bert_mini.onnx": ([Value(name: "input_ids", dtype: "int64", shape: ["batch", "seq"]),
                                   Value(name: "attention_mask", dtype: "int64", shape: ["batch", "seq"])],
                                  [Value(name: "last_hidden_state", dtype: "float", shape: ["batch", "seq", "64"]),
                                   Value(name: "pooler_output", dtype: "float", shape: ["batch", "64"])]),
        "Models/yolo_mini.onnx": ([Value(name: "input", dtype: "float", shape: ["1", "3", "64", "64"])],
                                  [Value(name: "detections", dtype: "float", shape: ["1", "320", "8"])]),
        "Models/unet_mini.onnx": ([Value(name: "input", dtype: "float", shape: ["1", "1", "64", "64"])],
                                  [Value(name: "mask", dtype: "float", shape: ["1", "1", "64", "64"])]),
        "Models/lstm_mini.onnx": ([Value(name: "input", dtype: "float", shape: ["10", "1", "16"])],
                                  [Value(name: "logits", dtype: "float", shape: ["1", "5"]),
                                   Value(name: "step_logits", dtype: "float", shape: ["1", "10", "5"])]),
        "Models/tiny_if.onnx": ([Value(name: "x", dtype: "float", shape: ["2", "3"])],
                                [Value(name: "y", dtype: "float", shape: ["2", "3"])]),
        "Models/external/ext_weights.onnx": ([Value(name: "input", dtype: "float", shape: ["1", "16"])],
                                             [Value(name: "output", dtype: "float", shape: ["1", "4"])]),
    ]

    // MARK: Helpers

    static func json(_ model: String, _ extra: [String] = [],
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let r = try CLI.summary(model, ["--format", "json"] + extra)
        try #require(r.exitedNormally && r.status == 0, "\(r)", sourceLocation: sourceLocation)
        return try J.parse(r.stdout, sourceLocation: sourceLocation)
    }

    static func values(_ any: Any?) -> [Value] {
        ((any as? [[String: Any]]) ?? []).map {
            Value(name: $0["name"] as? String ?? "<no name>", dtype: $0["dtype"] as? String ?? "<no dtype>",
                  shape: J.shape($0["shape"]) ?? ["<null>"])
        }
    }

    static func node(_ doc: [String: Any], _ name: String,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let nodes = (doc["nodes"] as? [[String: Any]]) ?? []
        return try #require(nodes.first { $0["name"] as? String == name }, "no node named \(name)",
                            sourceLocation: sourceLocation)
    }

    static func outputShape(_ doc: [String: Any], _ output: String) -> [String]? {
        values(doc["outputs"]).first { $0.name == output }?.shape
    }

    // MARK: Every good model, every format

    @Test("the test inputs are all there")
    func modelListsAreComplete() throws {
        _ = try CLI.requireBinary()
        #expect(Set(CLI.goodModels) == Set(Self.expectedNodeCounts.keys),
                "Models/ changed: update expectedNodeCounts and expectedSignatures")
        #expect(CLI.brokenModels.count == 11)
    }

    @Test("good model exits 0 in every format", arguments: CLI.goodModels, formats)
    func goodModelEveryFormat(model: String, format: String) throws {
        let r = try CLI.summary(model, ["--format", format])
        try #require(r.exitedNormally && r.status == 0, "\(r)")
        #expect(r.err.isEmpty, "stderr should be empty on success: \(r.err)")
        #expect(!r.stdout.isEmpty)
        #expect(r.out.hasSuffix("\n"))
        let text = r.out
        // Rows are cross-checked against the JSON of the same run, which jsonSchema checks.
        let doc = try Self.json(model)
        let rows = Self.flattenedNodes(doc)
        // One row per node, subgraph nodes included (tiny_if: 3 top-level + 1 per If branch).
        let expectedRows = (Self.expectedNodeCounts[model] ?? -1) + (model.hasSuffix("tiny_if.onnx") ? 2 : 0)
        #expect(rows.count == expectedRows)
        switch format {
        case "json":
            let printed = try J.parse(r.stdout)
            #expect(printed["model"] as? String == model)
        case "csv":
            let table = try #require(CSV.parse(text), "stdout is not well-formed CSV")
            let header = try #require(table.first)
            // The documented columns come first, in this order (columns are only ever added).
            let documented = ["graph", "name", "op", "domain", "input_shapes", "output_shapes", "params"]
            #expect(Array(header.prefix(documented.count)) == documented, "\(header)")
            let body = table.dropFirst()
            #expect(body.count == expectedRows)
            for row in body { #expect(row.count == header.count, "ragged CSV row: \(row)") }
            let nameColumn = header.firstIndex(of: "name") ?? 1
            let paramsColumn = header.firstIndex(of: "params") ?? 6
            let csvRows = body.map { ($0.indices.contains(nameColumn) ? $0[nameColumn] : "?",
                                      $0.indices.contains(paramsColumn) ? Int($0[paramsColumn]) : nil) }
            #expect(csvRows.map(\.0) == rows.map(\.name), "CSV rows are not the JSON nodes in order")
            #expect(csvRows.map(\.1) == rows.map { Optional($0.params) }, "CSV params differ from the JSON")
        case "md":
            #expect(text.hasPrefix("# Summary of `\(model)`\n"), "\(text.prefix(200))")
            #expect(text.contains("| # | Node | Op | Inputs | Outputs | Params |"))
            for row in rows { #expect(text.contains(row.name), "Markdown lacks node \(row.name)") }
        default:
            #expect(text.hasPrefix("Model      \(model) ("), "\(text.prefix(200))")
            for row in rows { #expect(text.contains(row.name), "table lacks node \(row.name)") }
        }
    }

    /// Every node of the JSON, subgraph nodes right after their owner, as the CSV lists them.
    static func flattenedNodes(_ doc: [String: Any]) -> [(name: String, params: Int)] {
        var out: [(name: String, params: Int)] = []
        func walk(_ nodes: [[String: Any]]) {
            for n in nodes {
                out.append((n["name"] as? String ?? "?", J.int(n["params"]) ?? -1))
                for sub in (n["subgraphs"] as? [[String: Any]]) ?? [] { walk((sub["nodes"] as? [[String: Any]]) ?? []) }
            }
        }
        walk((doc["nodes"] as? [[String: Any]]) ?? [])
        return out
    }

    // MARK: JSON schema

    @Test("JSON has the documented keys and node count", arguments: CLI.goodModels)
    func jsonSchema(model: String) throws {
        let doc = try Self.json(model)
        for key in ["model", "ir_version", "opsets", "inputs", "outputs", "totals", "nodes"] {
            #expect(doc[key] != nil, "missing top-level key \(key)")
        }
        #expect(doc["model"] as? String == model)
        // Models/README.md: good models use IR version 8 and default-domain opset 17.
        #expect(J.int(doc["ir_version"]) == 8)
        let opsets = try #require(doc["opsets"] as? [[String: Any]])
        #expect(opsets.contains { ($0["domain"] as? String) == "" && J.int($0["version"]) == 17 }, "\(opsets)")

        let totals = try #require(doc["totals"] as? [String: Any], "totals is not an object")
        let totalNodes = try #require(J.int(totals["nodes"]), "totals.nodes is not a number")
        let totalParams = try #require(J.int(totals["params"]), "totals.params is not a number")
        #expect(totalParams > 0)

        let nodes = try #require(doc["nodes"] as? [[String: Any]], "nodes is not an array of objects")
        #expect(totalNodes == nodes.count, "totals.nodes \(totalNodes) but \(nodes.count) entries in nodes")
        #expect(totalNodes == Self.expectedNodeCounts[model], "totals.nodes \(totalNodes)")
        for node in nodes {
            let name = node["name"] as? String ?? "?"
            for key in ["name", "op", "domain", "input_shapes", "output_shapes", "params"] {
                #expect(node[key] != nil, "node \(name) lacks \(key)")
            }
            #expect(!(node["op"] as? String ?? "").isEmpty, "node \(name) has no op")
            #expect(node["domain"] is String, "node \(name): domain is not a string")
            #expect(node["input_shapes"] is [Any], "node \(name): input_shapes is not an array")
            #expect(node["output_shapes"] is [Any], "node \(name): output_shapes is not an array")
            #expect((J.int(node["params"]) ?? -1) >= 0, "node \(name): params is not a count")
        }

        // A good model needs no fallback and raises no issue.
        #expect((doc["issues"] as? [Any])?.isEmpty == true, "issues: \(doc["issues"] ?? "missing")")
        #expect((doc["unknown_ops"] as? [Any])?.isEmpty == true, "unknown_ops: \(doc["unknown_ops"] ?? "missing")")

        let signature = try #require(Self.expectedSignatures[model])
        #expect(Self.values(doc["inputs"]).map(\.description) == signature.inputs.map(\.description))
        #expect(Self.values(doc["outputs"]).map(\.description) == signature.outputs.map(\.description))

        // Models with only static dims: every output of every node is fully known.
        if model != "Models/bert_mini.onnx" {
            #expect((doc["unbound_symbols"] as? [Any])?.isEmpty == true)
            for node in nodes {
                let shapes = (node["output_shapes"] as? [Any]) ?? []
                for s in shapes {
                    let dims = J.shape(s)
                    #expect(dims != nil && dims!.allSatisfy { Int($0) != nil },
                            "node \(node["name"] ?? "?"): output shape \(s) is not fully known")
                }
            }
        }
    }

    // MARK: Hand-checked shapes and params

    @Test("cifar_cnn: logits [1,10], Conv and Gemm params by hand")
    func cifarParams() throws {
        let doc = try Self.json("Models/cifar_cnn.onnx")
        #expect(Self.outputShape(doc, "logits") == ["1", "10"])

        // features.conv0: weight [16,3,3,3] (out, in, kH, kW) and bias [16].
        // params = 16*3*3*3 + 16 = 432 + 16 = 448
        let conv = try Self.node(doc, "features.conv0")
        #expect(conv["op"] as? String == "Conv")
        let convIn = ((conv["input_shapes"] as? [Any]) ?? []).map(J.shape)
        #expect(convIn == [J.ints([1, 3, 32, 32]), J.ints([16, 3, 3, 3]), J.ints([16])])
        // 3x3 kernel, pads 1, stride 1 keeps 32x32.
        #expect(((conv["output_shapes"] as? [Any]) ?? []).map(J.shape) == [J.ints([1, 16, 32, 32])])
        #expect(J.int(conv["params"]) == 16 * 3 * 3 * 3 + 16)
        #expect(J.int(conv["params"]) == 448)

        // classifier.fc0: Gemm(transB=1), weight [64,512], bias [64]; input is the flattened
        // [1, 32*4*4] = [1,512]. params = 64*512 + 64 = 32768 + 64 = 32832
        let gemm = try Self.node(doc, "classifier.fc0")
        #expect(gemm["op"] as? String == "Gemm")
        let gemmIn = ((gemm["input_shapes"] as? [Any]) ?? []).map(J.shape)
        #expect(gemmIn == [J.ints([1, 512]), J.ints([64, 512]), J.ints([64])])
        #expect(((gemm["output_shapes"] as? [Any]) ?? []).map(J.shape) == [J.ints([1, 64])])
        #expect(J.int(gemm["params"]) == 64 * 512 + 64)
        #expect(J.int(gemm["params"]) == 32832)

        // Whole model: conv0 448 + conv1 (32*16*3*3 + 32 = 4640) + conv2 (32*32*3*3 + 32 = 9248)
        // + fc0 32832 + fc1 (10*64 + 10 = 650) = 47818 weights, all float32 (4 bytes each).
        let totals = try #require(doc["totals"] as? [String: Any])
        #expect(J.int(totals["params"]) == 448 + 4640 + 9248 + 32832 + 650)
        #expect(J.int(totals["weight_bytes"]) == 47818 * 4)
        #expect(J.int(try Self.node(doc, "features.conv1")["params"]) == 32 * 16 * 3 * 3 + 32)
        #expect(J.int(try Self.node(doc, "classifier.fc1")["params"]) == 10 * 64 + 10)
    }

    @Test("shared weights are counted once in totals")
    func sharedWeights() throws {
        // mobilenetv2_mini: the 10 Clip nodes share two scalar float initializers (clip_min,
        // clip_max; README: "Clip(0,6) with min/max as inputs"), so each Clip row shows 2 params
        // but the totals count them once: totals = sum(rows) - 9*2.
        let mobile = try Self.json("Models/mobilenetv2_mini.onnx")
        let mobileNodes = try #require(mobile["nodes"] as? [[String: Any]])
        let clips = mobileNodes.filter { $0["op"] as? String == "Clip" }
        #expect(clips.count == 10)
        #expect(clips.allSatisfy { J.int($0["params"]) == 2 })
        let mobileSum = mobileNodes.compactMap { J.int($0["params"]) }.reduce(0, +)
        #expect(J.int((mobile["totals"] as? [String: Any])?["params"]) == mobileSum - 9 * 2)

        // cifar_cnn shares nothing: totals = sum of rows.
        let cifar = try Self.json("Models/cifar_cnn.onnx")
        let cifarSum = ((cifar["nodes"] as? [[String: Any]]) ?? []).compactMap { J.int($0["params"]) }.reduce(0, +)
        #expect(J.int((cifar["totals"] as? [String: Any])?["params"]) == cifarSum)
    }

    @Test("lstm_mini: LSTM params and outputs by hand")
    func lstmShapes() throws {
        let doc = try Self.json("Models/lstm_mini.onnx")
        let lstm = try Self.node(doc, "lstm")
        // Bidirectional (2), hidden 32, input 16: W [2, 4*32, 16], R [2, 4*32, 32], B [2, 8*32].
        #expect(J.int(lstm["params"]) == 2 * 128 * 16 + 2 * 128 * 32 + 2 * 256)
        // Y [seq, dirs, batch, hidden] = [10,2,1,32], Y_h [2,1,32]; Y_c omitted.
        let outs = ((lstm["output_shapes"] as? [Any]) ?? []).map(J.shape)
        #expect(outs.prefix(2) == [J.ints([10, 2, 1, 32]), J.ints([2, 1, 32])])
    }

    @Test("tiny_if: both If branches are listed as subgraphs")
    func tinyIf() throws {
        let doc = try Self.json("Models/tiny_if.onnx")
        let totals = try #require(doc["totals"] as? [String: Any])
        #expect(J.int(totals["nodes"]) == 3)
        #expect(J.int(totals["nodes_including_subgraphs"]) == 5)
        let branch = try Self.node(doc, "branch")
        let subs = try #require(branch["subgraphs"] as? [[String: Any]])
        #expect(Set(subs.compactMap { $0["attribute"] as? String }) == ["then_branch", "else_branch"])
        let ops = Set(subs.flatMap { ($0["nodes"] as? [[String: Any]] ?? []).compactMap { $0["op"] as? String } })
        #expect(ops == ["Relu", "Neg"])
        #expect(((branch["output_shapes"] as? [Any]) ?? []).map(J.shape) == [J.ints([2, 3])])
    }

    @Test("bert_mini with --dim batch=2 --dim seq=7")
    func bertDims() throws {
        let doc = try Self.json("Models/bert_mini.onnx", ["--dim", "batch=2", "--dim", "seq=7"])
        #expect(Self.outputShape(doc, "last_hidden_state") == J.ints([2, 7, 64]))
        #expect(Self.outputShape(doc, "pooler_output") == J.ints([2, 64]))
        #expect(Self.values(doc["inputs"]).map(\.shape) == [J.ints([2, 7]), J.ints([2, 7])])
        #expect((doc["unbound_symbols"] as? [Any])?.isEmpty == true, "\(doc["unbound_symbols"] ?? "missing")")
        #expect((doc["issues"] as? [Any])?.isEmpty == true, "\(doc["issues"] ?? "missing")")
        // Every node's outputs are now concrete; attention scores are [batch, heads, seq, seq].
        for node in (doc["nodes"] as? [[String: Any]]) ?? [] {
            for s in (node["output_shapes"] as? [Any]) ?? [] {
                let dims = J.shape(s)
                #expect(dims != nil && dims!.allSatisfy { Int($0) != nil }, "node \(node["name"] ?? "?"): \(s)")
            }
        }
        let scores = try Self.node(doc, "encoder.layer.0.attention.self.scores")
        #expect(((scores["output_shapes"] as? [Any]) ?? []).map(J.shape) == [J.ints([2, 4, 7, 7])])
    }

    @Test("bert_mini without bindings keeps batch and seq symbolic")
    func bertSymbolic() throws {
        let doc = try Self.json("Models/bert_mini.onnx")
        #expect(Self.outputShape(doc, "last_hidden_state") == ["batch", "seq", "64"])
        #expect(Self.outputShape(doc, "pooler_output") == ["batch", "64"])
        let unbound = (doc["unbound_symbols"] as? [String]) ?? []
        #expect(Set(unbound) == ["batch", "seq"], "\(unbound)")
        let last = try Self.node(doc, "encoder.layer.1.output.LayerNorm")
        #expect(((last["output_shapes"] as? [Any]) ?? []).map(J.shape) == [["batch", "seq", "64"]])

        let table = try CLI.summary("Models/bert_mini.onnx")
        #expect(table.status == 0)
        #expect(table.out.contains("unbound symbolic dims: batch, seq"), "\(table.out.suffix(300))")
    }

    @Test("bert_mini with --input input_ids=1x16 --input attention_mask=1x16")
    func bertInputs() throws {
        let doc = try Self.json("Models/bert_mini.onnx",
                                ["--input", "input_ids=1x16", "--input", "attention_mask=1x16"])
        #expect(Self.outputShape(doc, "last_hidden_state") == J.ints([1, 16, 64]))
        #expect(Self.outputShape(doc, "pooler_output") == J.ints([1, 64]))
        #expect(Self.values(doc["inputs"]).map(\.shape) == [J.ints([1, 16]), J.ints([1, 16])])
        #expect((doc["unbound_symbols"] as? [Any])?.isEmpty == true, "\(doc["unbound_symbols"] ?? "missing")")
        #expect((doc["issues"] as? [Any])?.isEmpty == true, "\(doc["issues"] ?? "missing")")
    }

    // MARK: --output

    @Test("--output writes the same bytes as stdout and leaves no temp file", arguments: formats)
    func outputFile(format: String) throws {
        let folder = try CLI.makeTempFolder("output")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = "Models/resnet_mini.onnx"
        let printed = try CLI.summary(model, ["--format", format])
        try #require(printed.status == 0, "\(printed)")

        let target = folder + "/summary.\(format)"
        let written = try CLI.summary(model, ["--format", format, "--output", target])
        try #require(written.exitedNormally && written.status == 0, "\(written)")
        #expect(written.stdout.isEmpty, "stdout should be empty with --output")
        #expect(written.err.isEmpty)
        #expect(FileManager.default.contents(atPath: target) == printed.stdout)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["summary.\(format)"])

        // Overwriting an existing file (short flag -o) replaces it whole, again without leftovers.
        try Data("old contents that are longer than nothing".utf8).write(to: URL(fileURLWithPath: target))
        let again = try CLI.summary(model, ["--format", format, "-o", target])
        #expect(again.status == 0, "\(again)")
        #expect(FileManager.default.contents(atPath: target) == printed.stdout)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["summary.\(format)"])
    }

    @Test("--output is not created when the model fails, and a bad folder is an error")
    func outputOnFailure() throws {
        let folder = try CLI.makeTempFolder("output-fail")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/summary.json"
        let failed = try CLI.summary("Models/broken/cycle.onnx", ["--format", "json", "--output", target])
        #expect(failed.exitedNormally && failed.status == 2, "\(failed)")
        #expect(failed.stderrIsOneVernierLine, "\(failed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)

        let missingFolder = try CLI.summary("Models/cifar_cnn.onnx", ["--output", folder + "/no/such/folder/out.txt"])
        #expect(missingFolder.exitedNormally && missingFolder.status == 2, "\(missingFolder)")
        #expect(missingFolder.stderrIsOneVernierLine, "\(missingFolder)")
        #expect(missingFolder.err.contains("cannot write"), "\(missingFolder)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    // MARK: Bad command lines

    struct BadCase: CustomTestStringConvertible, Sendable {
        var args: [String]
        /// Substrings the one-line message must contain (case-insensitive).
        var mentions: [String]
        var testDescription: String { args.joined(separator: " ") }
    }

    static let badCases: [BadCase] = [
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--format", "xml"], mentions: ["xml", "format"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--input", "foo"], mentions: ["foo", "input"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--input", "nosuch=1x2"], mentions: ["nosuch"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--dim", "nosuch=3"], mentions: ["nosuch"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--input", "input=1x3"], mentions: ["input", "rank"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--input", "input=1xfoox3x3"], mentions: ["1xfoox3x3"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--dim", "batch=-1"], mentions: ["batch=-1"]),
        BadCase(args: ["summary", "Models/cifar_cnn.onnx", "--bogus"], mentions: ["--bogus"]),
        BadCase(args: ["summary", "Models/no_such_model.onnx"], mentions: ["no_such_model.onnx", "no such file"]),
        BadCase(args: ["summary", "Models"], mentions: ["Models", "not a regular file"]),
        BadCase(args: ["summary"], mentions: ["model"]),
        BadCase(args: ["frobnicate"], mentions: ["frobnicate"]),
    ]

    @Test("bad command line exits 2 with one vernier: line", arguments: badCases)
    func badCommandLine(_ c: BadCase) throws {
        let r = try CLI.run(c.args)
        #expect(r.exitedNormally && r.status == 2, "\(r)")
        #expect(r.stdout.isEmpty, "nothing on stdout for an error: \(r.out)")
        let oneLine = r.stderrIsOneVernierLine
        #expect(oneLine, "want exactly one line starting with 'vernier: ', got:\n\(r.err)")
        let first = (r.errLines.first ?? "").lowercased()
        for m in c.mentions {
            #expect(first.contains(m.lowercased()), "message does not mention \(m): \(r.errLines.first ?? "")")
        }
    }

    @Test("help and version exit 0 on stdout", arguments: [["--help"], ["summary", "--help"], ["help", "summary"], ["--version"]])
    func help(_ args: [String]) throws {
        let r = try CLI.run(args)
        #expect(r.exitedNormally && r.status == 0, "\(r)")
        #expect(r.err.isEmpty, "\(r.err)")
        if args == ["--version"] {
            #expect(!r.out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        } else {
            #expect(r.out.contains("USAGE"), "\(r.out.prefix(300))")
            #expect(r.out.contains("summary"))
        }
        if args.contains("summary") {
            for flag in ["--input", "--dim", "--format", "--output"] { #expect(r.out.contains(flag), "help lacks \(flag)") }
        }
    }

    // MARK: Broken models

    /// What each broken model's message must mention (Models/README.md, "Broken models").
    static let brokenExpectations: [String: [String]] = [
        "bad_initializer_size.onnx": ["'W'", "needs 64 bytes", "10"],
        "cycle.onnx": ["cycle"],
        "duplicate_output.onnx": ["'y'", "defined more than once"],
        "empty.onnx": ["empty"],
        "external_absolute.onnx": ["/etc/passwd", "leaves the model's folder"],
        "external_escape.onnx": ["../../etc/passwd", "leaves the model's folder"],
        "garbage.onnx": ["not a valid onnx model"],
        "huge_dims.onnx": ["'y'", "limit"],
        "missing_graph_output.onnx": ["'z'", "never produced"],
        "truncated.onnx": ["not a valid onnx model", "truncated"],
        "undefined_input.onnx": ["'ghost'"],
    ]

    @Test("broken model exits 2 with a one-line message naming the problem", arguments: CLI.brokenModels)
    func brokenModel(model: String) throws {
        let file = (model as NSString).lastPathComponent
        let mentions = try #require(Self.brokenExpectations[file], "no expectation for \(model): add one")
        for format in Self.formats {
            let r = try CLI.summary(model, ["--format", format])
            #expect(r.exitedNormally && r.status == 2, "\(r)")
            #expect(r.stdout.isEmpty, "\(r.out.prefix(300))")
            let oneLine = r.stderrIsOneVernierLine
            #expect(oneLine, "want one 'vernier: ' line, got:\n\(r.err)")
            let line = (r.errLines.first ?? "").lowercased()
            for m in mentions { #expect(line.contains(m.lowercased()), "\(model): message lacks \(m): \(r.err)") }
        }
    }

    @Test("huge_dims stays an error even with the element limit at Int64.max")
    func hugeDimsOverflow() throws {
        // [2^40, 2^40] is 2^80 elements: it overflows Int64, so no --max-elements can admit it.
        let r = try CLI.summary("Models/broken/huge_dims.onnx", ["--max-elements", String(Int64.max)])
        #expect(r.exitedNormally && r.status == 2, "\(r)")
        #expect(r.stderrIsOneVernierLine, "\(r)")
    }
}
