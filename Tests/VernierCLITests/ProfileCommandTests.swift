import Foundation
import Testing

/// `vernier profile` as a subprocess: the JSON fields users script against, the Chrome
/// trace, every output format, --top and --by-op, roofline columns from a device file,
/// Ctrl-C, and the errors.
@Suite struct ProfileCommandTests {
    /// Short measurements: the tests check structure and consistency, not speed.
    static let quick = ["--runs", "3", "--warmup", "1", "--min-time", "0", "--threads", "1"]

    func profileJSON(_ model: String, _ extra: [String] = []) throws -> [String: Any] {
        let r = try CLI.run(["profile", model, "--format", "json", "--no-roofline"] + Self.quick + extra)
        #expect(r.status == 0, "\(r)")
        return try J.parse(r.stdout)
    }

    @Test func jsonHasPerNodeStatisticsAndTotals() throws {
        let json = try profileJSON("Models/resnet_mini.onnx")
        #expect(json["schema"] as? String == "vernier.profile/1")
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        #expect(!nodes.isEmpty)
        var shares = 0.0
        for node in nodes {
            let latency = try #require(node["latency_ms"] as? [String: Double], "\(node)")
            for key in ["median", "p90", "min", "mean", "stdev"] { #expect(latency[key] != nil, "latency_ms.\(key)") }
            let median = try #require(latency["median"]), p90 = try #require(latency["p90"]), min = try #require(latency["min"])
            #expect(min > 0 && min <= median && median <= p90)
            #expect(J.int(latency["count"]) == 3)
            shares += node["share"] as? Double ?? 0
            #expect(!((node["fused"] as? [String]) ?? []).isEmpty)
            #expect(node.keys.contains("achieved_gflops") && node.keys.contains("roofline_pct") && node.keys.contains("bound"))
        }
        #expect(abs(shares - 1) < 1e-9, "shares of the node sum add up to 1")
        let totals = try #require(json["totals"] as? [String: Any])
        let e2e = try #require(totals["latency_ms"] as? [String: Double])
        for key in ["median", "p90", "p99", "min"] { #expect(e2e[key] != nil, "totals.latency_ms.\(key)") }
        let nodeSum = try #require(totals["node_sum_ms"] as? Double)
        let medians = nodes.compactMap { ($0["latency_ms"] as? [String: Double])?["median"] }.reduce(0, +)
        #expect(abs(nodeSum - medians) < 1e-9 * max(1, nodeSum))
        #expect(totals["overhead_pct"] is Double)
        #expect(J.int(totals["threads"]) == 1)
        #expect(J.int(totals["peak_rss_bytes"]).map { $0 > 0 } == true)
        #expect(J.int(totals["planned_peak_activation_bytes"]).map { $0 > 0 } == true)
        #expect(J.int(totals["runs"]) == 3)
    }

    @Test func everyOriginalNodeIsARowMemberOrListedAsNotRun() throws {
        let summary = try CLI.summary("Models/mobilenetv2_mini.onnx", ["--format", "json"])
        #expect(summary.status == 0, "\(summary)")
        let original = try #require(try J.parse(summary.stdout)["nodes"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        let json = try profileJSON("Models/mobilenetv2_mini.onnx")
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        let named = nodes.flatMap { ($0["fused"] as? [String]) ?? [] } + ((json["not_run"] as? [String]) ?? [])
        #expect(named.sorted() == original.sorted())
        #expect(nodes.contains { (($0["fused"] as? [String]) ?? []).count > 1 }, "the mobilenet has fused Conv groups")
    }

    @Test func traceHasOneEventPerNodePerRunWithoutOverlap() throws {
        let folder = try CLI.makeTempFolder("trace")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trace = folder + "/trace.json"
        let r = try CLI.run(["profile", "Models/yolo_mini.onnx", "--format", "json", "--no-roofline", "--trace", trace] + Self.quick)
        #expect(r.status == 0, "\(r)")
        let profile = try J.parse(r.stdout)
        let nodeNames = try #require(profile["nodes"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        let data = try #require(FileManager.default.contents(atPath: trace))
        let events = try #require(try J.parse(data)["traceEvents"] as? [[String: Any]])
        let kernels = events.filter { $0["cat"] as? String == "Node" }
        #expect(kernels.count == nodeNames.count * 3, "one event per node per measured run")
        for name in nodeNames {
            #expect(kernels.filter { $0["name"] as? String == name }.count == 3, "\(name)")
        }
        for event in kernels {
            #expect(event["ph"] as? String == "X")
            let args = try #require(event["args"] as? [String: Any])
            #expect(args["op_name"] is String && args["input_shapes"] != nil && args["flops"] != nil)
        }
        // Complete events on one thread must not overlap.
        let byThread = Dictionary(grouping: events.filter { $0["ph"] as? String == "X" }) { J.int($0["tid"]) ?? -1 }
        for (_, list) in byThread {
            let spans = list.compactMap { e -> (Double, Double)? in
                guard let ts = e["ts"] as? Double ?? (e["ts"] as? NSNumber)?.doubleValue,
                      let dur = e["dur"] as? Double ?? (e["dur"] as? NSNumber)?.doubleValue else { return nil }
                return (ts, dur)
            }.sorted { $0.0 < $1.0 }
            #expect(spans.count == list.count)
            for (a, b) in zip(spans, spans.dropFirst()) {
                #expect(a.1 >= 0)
                #expect(a.0 + a.1 <= b.0 + 1e-3, "events overlap: \(a) then \(b)")
            }
        }
    }

    @Test func topAndByOpAndEveryFormat() throws {
        let json = try profileJSON("Models/resnet_mini.onnx", ["--top", "3"])
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        #expect(nodes.count == 3)
        let medians = nodes.compactMap { ($0["latency_ms"] as? [String: Double])?["median"] }
        #expect(medians == medians.sorted(by: >), "--top sorts by median latency, largest first")

        let table = try CLI.run(["profile", "Models/resnet_mini.onnx", "--no-roofline"] + Self.quick)
        #expect(table.status == 0 && table.out.contains("Median ms") && table.out.contains("Sum of node medians"), "\(table)")
        let md = try CLI.run(["profile", "Models/resnet_mini.onnx", "--no-roofline", "--format", "md"] + Self.quick)
        #expect(md.status == 0 && md.out.hasPrefix("# Profile of `Models/resnet_mini.onnx`"), "\(md)")
        let csv = try CLI.run(["profile", "Models/resnet_mini.onnx", "--no-roofline", "--format", "csv"] + Self.quick)
        let records = try #require(CSV.parse(csv.out))
        #expect(records.first?.contains("median_ms") == true && records.first?.contains("roofline_pct") == true)
        #expect(Set(records.map(\.count)).count == 1, "every CSV record has the header's field count")
        let byOp = try CLI.run(["profile", "Models/resnet_mini.onnx", "--no-roofline", "--format", "csv", "--by-op"] + Self.quick)
        #expect(byOp.out.hasPrefix("op,count,median_ms,share"), "\(byOp)")
        #expect(byOp.out.contains("\nConv,"), "\(byOp)")
    }

    @Test func severalOutputsWriteOneMeasurementInEachFormat() throws {
        let folder = try CLI.makeTempFolder("outputs")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let md = folder + "/p.md", json = folder + "/p.json"
        let r = try CLI.run(["profile", "Models/cifar_cnn.onnx", "--no-roofline", "-o", md, "-o", json] + Self.quick)
        #expect(r.status == 0 && r.out.isEmpty, "\(r)")
        let text = try String(contentsOfFile: md, encoding: .utf8)
        #expect(text.hasPrefix("# Profile of"))
        let data = try #require(FileManager.default.contents(atPath: json))
        let totals = try #require(try J.parse(data)["totals"] as? [String: Any])
        let nodeSum = try #require(totals["node_sum_ms"] as? Double)
        // The Markdown shows the same sum (3 decimals under 10 ms): both come from one measurement.
        let shown = nodeSum >= 10 ? String(format: "%.2f", nodeSum) : String(format: "%.3f", nodeSum)
        #expect(text.contains("**Sum of node medians**: \(shown) ms"), "\(shown) not in the Markdown")
    }

    @Test func rooflineColumnsComeFromTheDeviceProfile() throws {
        let folder = try CLI.makeTempFolder("device")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let device = folder + "/dev.json"
        let text = """
            {"schema": "vernier.device/1", "name": "slow", "cpu": "test", "source": "spec-derived", "cores": 1,
             "isa": [], "caches": {}, "roofs": [{"threads": 1, "fp32_gflops": 4, "bandwidth_gbps": 2}]}
            """
        try text.write(toFile: device, atomically: true, encoding: .utf8)
        let r = try CLI.run(["profile", "Models/cifar_cnn.onnx", "--format", "json", "--device-profile", device] + Self.quick)
        #expect(r.status == 0, "\(r)")
        let json = try J.parse(r.stdout)
        let dev = try #require(json["device"] as? [String: Any])
        #expect(dev["name"] as? String == "slow" && dev["ridge_flops_per_byte"] as? Double == 2)
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        let placed = nodes.filter { $0["roofline_pct"] is Double }
        #expect(!placed.isEmpty)
        for node in placed {
            let bound = try #require(node["bound"] as? String)
            let intensity = node["intensity"] as? Double ?? 0
            #expect(bound == (intensity < 2 ? "memory" : "compute"), "\(node)")
        }

        try "{\"schema\": \"other/1\"}".write(toFile: device, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["profile", "Models/cifar_cnn.onnx", "--device-profile", device] + Self.quick)
        #expect(bad.status == 2 && bad.stderrIsOneVernierLine, "\(bad)")
    }

    @Test func ctrlCPrintsThePartialProfileAndExits130() throws {
        let child = try CLI.Child(binary: try CLI.requireBinary(),
                                  arguments: ["profile", "Models/resnet_mini.onnx", "--min-time", "60", "--max-runs", "100000000",
                                              "--threads", "1", "--no-roofline", "--format", "json"],
                                  environment: ProcessInfo.processInfo.environment, directory: CLI.root)
        let outData = Box(Data())
        let reader = DispatchGroup()
        DispatchQueue.global().async(group: reader) { outData.value = CLI.Child.readToEnd(child.stdout) }
        DispatchQueue.global().async(group: reader) { _ = CLI.Child.readToEnd(child.stderr) }
        // Long enough to be measuring even on a loaded machine (a debug build loads in well under 1 s).
        Thread.sleep(forTimeInterval: 6)
        kill(child.pid, SIGINT)
        let deadline = Date().addingTimeInterval(30)
        var status = child.poll()
        while status == nil && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            status = child.poll()
        }
        if status == nil {
            kill(child.pid, SIGKILL)
            status = child.wait()
        }
        reader.wait()
        let ended = CLI.Child.decode(status ?? 0)
        #expect(!ended.signaled && ended.status == 130)
        let json = try J.parse(outData.value)
        let totals = try #require(json["totals"] as? [String: Any])
        #expect(totals["interrupted"] as? Bool == true)
        #expect((J.int(totals["runs"]) ?? 0) >= 1, "the runs measured before Ctrl-C are reported")
    }

    @Test func errorsAreOneLineWithExitTwo() throws {
        let model = CLI.root + "/Tests/Data/node/test_nonmaxsuppression_center_point_box_format/model.onnx"
        try #require(FileManager.default.fileExists(atPath: model), "node tests missing: run Scripts/fetch_node_tests.sh")
        let missing = try CLI.run(["profile", model, "--no-roofline"] + Self.quick)
        #expect(missing.status == 2 && missing.err.contains("no kernel for op NonMaxSuppression") && missing.stderrIsOneVernierLine, "\(missing)")
        let unbound = try CLI.run(["profile", "Models/bert_mini.onnx", "--no-roofline"] + Self.quick)
        #expect(unbound.status == 2 && unbound.err.contains("--dim") && unbound.stderrIsOneVernierLine, "\(unbound)")
        let flag = try CLI.run(["profile", "Models/resnet_mini.onnx", "--runs", "0"])
        #expect(flag.status == 2 && flag.stderrIsOneVernierLine, "\(flag)")
        let garbage = try CLI.run(["profile", "Models/README.md", "--no-roofline"])
        #expect(garbage.status == 2 && garbage.stderrIsOneVernierLine, "\(garbage)")
    }
}
