import Foundation
import Testing

/// `vernier report` and `vernier profile --html` as subprocesses: one self-contained HTML
/// file with a chart per section, one table row per profile row, the comparison for
/// several models, and the errors.
@Suite struct ReportCommandTests {
    /// Short measurements: the tests check structure, not speed.
    static let quick = ["--runs", "3", "--min-time", "0", "--warmup", "1", "--threads", "1"]

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    /// Runs `vernier report MODELS -o FILE extra...` and returns the result and the page.
    func report(_ models: [String], _ extra: [String], in folder: String) throws -> (CLI.Result, String) {
        let file = folder + "/report.html"
        let r = try CLI.run(["report"] + models + ["-o", file] + Self.quick + extra)
        let html = FileManager.default.contents(atPath: file).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (r, html)
    }

    /// Row count of `vernier profile --format json` for a model.
    func profileRows(_ model: String) throws -> Int {
        let r = try CLI.run(["profile", model, "--format", "json", "--no-roofline"] + Self.quick)
        #expect(r.status == 0, "\(r)")
        return try #require(try J.parse(r.stdout)["nodes"] as? [[String: Any]]).count
    }

    func expectSelfContained(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(html.hasPrefix("<!DOCTYPE html>"), sourceLocation: sourceLocation)
        for outside in ["http://", "https://", "src=", "<link", "@import", "url("] {
            #expect(!html.contains(outside), "the report refers to something outside: \(outside)", sourceLocation: sourceLocation)
        }
        #expect(count("<script>", in: html) == 1, "one inline script (table sorting), nothing else", sourceLocation: sourceLocation)
        #expect(html.contains("<style>"), sourceLocation: sourceLocation)
    }

    @Test func oneModelIsOneSelfContainedPageWithAChartPerSection() throws {
        let folder = try CLI.makeTempFolder("report")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (r, html) = try report(["Models/resnet_mini.onnx"], ["--no-roofline"], in: folder)
        #expect(r.status == 0 && r.out.isEmpty, "\(r)")
        expectSelfContained(html)
        #expect(html.contains("<h1>Profile of resnet_mini.onnx</h1>"))
        // Slowest layers, op types and the memory timeline; the roofline needs a device.
        #expect(count("<svg ", in: html) == 3)
        #expect(html.contains("No roofline"))
        #expect(html.contains(">Slowest layers<") && html.contains(">Cost by op type<") && html.contains(">Memory timeline<"))
        #expect(count("<tr data-row=", in: html) == (try profileRows("Models/resnet_mini.onnx")))
        #expect(html.contains("<table class=\"sortable layers\">"))
    }

    @Test func aDeviceProfileAddsTheRooflineChart() throws {
        let folder = try CLI.makeTempFolder("report-device")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let device = folder + "/dev.json"
        try """
            {"schema": "vernier.device/1", "name": "slow", "cpu": "test", "source": "spec-derived", "cores": 1,
             "isa": [], "caches": {}, "roofs": [{"threads": 1, "fp32_gflops": 4, "bandwidth_gbps": 2}]}
            """.write(toFile: device, atomically: true, encoding: .utf8)
        let (r, html) = try report(["Models/resnet_mini.onnx"], ["--device-profile", device], in: folder)
        #expect(r.status == 0, "\(r)")
        expectSelfContained(html)
        #expect(count("<svg ", in: html) == 4)
        #expect(!html.contains("No roofline"))
        #expect(html.contains("ridge 2.00 FLOP/B") && html.contains("peak 4.0 GFLOP/s"))
        #expect(html.contains("class=\"pt compute\"") || html.contains("class=\"pt memory\""), "layers are points")
    }

    @Test func twoModelsGetTheComparisonAndEachModelsSections() throws {
        let folder = try CLI.makeTempFolder("report-compare")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let models = ["Models/resnet_mini.onnx", "Models/cifar_cnn.onnx"]
        let (r, html) = try report(models, ["--no-roofline", "--baseline", "cifar_cnn.onnx"], in: folder)
        #expect(r.status == 0, "\(r)")
        expectSelfContained(html)
        #expect(html.contains("<h1>Comparison of resnet_mini.onnx, cifar_cnn.onnx</h1>"))
        #expect(html.contains("<table class=\"totals\">") && html.contains("Output agreement") && html.contains("Latency per model"))
        #expect(html.contains("cifar_cnn.onnx (baseline)"))
        #expect(count("<details id=\"model-", in: html) == 2)
        // The comparison's latency chart, then three charts per model.
        #expect(count("<svg ", in: html) == 1 + 2 * 3)
        let rows = try models.map(profileRows).reduce(0, +)
        #expect(count("<tr data-row=", in: html) == rows)
    }

    @Test func profileWritesTheSameReportBesideItsOutput() throws {
        let folder = try CLI.makeTempFolder("profile-html")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/p.html"
        let r = try CLI.run(["profile", "Models/cifar_cnn.onnx", "--format", "json", "--no-roofline", "--html", file] + Self.quick)
        #expect(r.status == 0, "\(r)")
        let nodes = try #require(try J.parse(r.stdout)["nodes"] as? [[String: Any]])
        let html = String(decoding: try #require(FileManager.default.contents(atPath: file)), as: UTF8.self)
        expectSelfContained(html)
        #expect(count("<tr data-row=", in: html) == nodes.count)
        // Every layer of the JSON has its row in the page.
        for node in nodes {
            let name = try #require(node["name"] as? String)
            #expect(html.contains(">\(name)<") || html.contains(">\(name) (+"), "\(name) has a row")
        }
    }

    @Test func errors() throws {
        let noOutput = try CLI.run(["report", "Models/cifar_cnn.onnx"] + Self.quick)
        #expect(noOutput.status == 2 && noOutput.stderrIsOneVernierLine && noOutput.err.contains("--output"), "\(noOutput)")

        let folder = try CLI.makeTempFolder("report-errors")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (missing, html) = try report(["Models/none.onnx"], [], in: folder)
        #expect(missing.status == 2 && missing.stderrIsOneVernierLine && html.isEmpty, "\(missing)")
        let (base, _) = try report(["Models/cifar_cnn.onnx", "Models/resnet_mini.onnx"], ["--baseline", "x.onnx"], in: folder)
        #expect(base.status == 2 && base.err.contains("--baseline") && base.stderrIsOneVernierLine, "\(base)")
    }
}
