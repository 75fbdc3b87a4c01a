import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// `vernier check` as CI pipelines use it: the three exit codes, the JSON verdict, the
/// JUnit report, and budget files with flags over them.
@Suite struct CheckCommandTests {
    static let quick = ["--runs", "3", "--warmup", "1", "--min-time", "0", "--threads", "1"]

    @Test func exitZeroWhenEveryBudgetHolds() throws {
        let r = try CLI.run(["check", "Models/cifar_cnn.onnx", "--latency-ms", "100000", "--memory-mb", "100000", "--size-mb", "100"] + Self.quick)
        #expect(r.status == 0, "\(r)")
        #expect(r.out.hasPrefix("PASS: Models/cifar_cnn.onnx meets all 3 budget(s)"), "\(r)")
        #expect(r.out.components(separatedBy: "PASS").count - 1 == 4, "the headline and three PASS lines")
    }

    @Test func exitOneWhenABudgetFailsWithTheSlowestLayers() throws {
        let r = try CLI.run(["check", "Models/cifar_cnn.onnx", "--latency-ms", "0.000001", "--size-mb", "100"] + Self.quick)
        #expect(r.status == 1, "\(r)")
        #expect(r.out.hasPrefix("FAIL: Models/cifar_cnn.onnx exceeds 1 of 2 budget(s)"), "\(r)")
        #expect(r.out.contains("over budget. Top layers by median latency"), "\(r)")
        #expect(r.err.isEmpty, "a failed budget is a verdict, not an error: \(r)")

        let json = try J.parse(try CLI.run(["check", "Models/cifar_cnn.onnx", "--size-mb", "0.001", "--format", "json"] + Self.quick).stdout)
        #expect(json["pass"] as? Bool == false)
        let checks = try #require(json["checks"] as? [[String: Any]])
        #expect(checks.count == 1)
        let size = try #require(checks.first)
        #expect(size["name"] as? String == "model_size" && size["unit"] as? String == "MiB" && size["pass"] as? Bool == false)
        let bytes = try #require(try FileManager.default.attributesOfItem(atPath: CLI.root + "/Models/cifar_cnn.onnx")[.size] as? Int)
        #expect(abs((size["value"] as? Double ?? 0) - Double(bytes) / 1_048_576) < 1e-9, "size is the file's bytes in MiB")
        #expect(size["limit"] as? Double == 0.001)
    }

    @Test func exitTwoOnErrors() throws {
        let none = try CLI.run(["check", "Models/cifar_cnn.onnx"] + Self.quick)
        #expect(none.status == 2 && none.err.contains("no budget given") && none.stderrIsOneVernierLine, "\(none)")
        let missing = try CLI.run(["check", "Models/nope.onnx", "--latency-ms", "5"])
        #expect(missing.status == 2 && missing.stderrIsOneVernierLine, "\(missing)")
        let percentile = try CLI.run(["check", "Models/cifar_cnn.onnx", "--latency-ms", "5", "--percentile", "75"])
        #expect(percentile.status == 2 && percentile.err.contains("50, 90 or 99"), "\(percentile)")
        let device = try CLI.run(["check", "Models/cifar_cnn.onnx", "--latency-ms", "5", "--device", "no-such-board"])
        #expect(device.status == 2 && device.stderrIsOneVernierLine && device.err.contains("no-such-board"), "\(device)")
        let folder = try CLI.makeTempFolder("budget-bad")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "latency_msec: 5\n".write(toFile: folder + "/b.yaml", atomically: true, encoding: .utf8)
        let typo = try CLI.run(["check", "Models/cifar_cnn.onnx", "--budget", folder + "/b.yaml"])
        #expect(typo.status == 2 && typo.err.contains("unknown key latency_msec") && typo.stderrIsOneVernierLine, "\(typo)")
    }

    @Test func budgetFileWithFlagsOverIt() throws {
        let folder = try CLI.makeTempFolder("budget")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/budget.yaml"
        try "latency:\n  ms: 0.000001\n  percentile: 99\nsize_mb: 100\nthreads: 1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let strict = try CLI.run(["check", "Models/cifar_cnn.onnx", "--budget", file, "--format", "json", "--runs", "3", "--min-time", "0"])
        #expect(strict.status == 1, "\(strict)")
        let checks = try #require(try J.parse(strict.stdout)["checks"] as? [[String: Any]])
        #expect(checks.map { $0["name"] as? String } == ["latency_p99", "model_size"])
        let relaxed = try CLI.run(["check", "Models/cifar_cnn.onnx", "--budget", file, "--latency-ms", "100000", "--percentile", "50",
                                   "--format", "json", "--runs", "3", "--min-time", "0"])
        #expect(relaxed.status == 0, "\(relaxed)")
        let relaxedChecks = try #require(try J.parse(relaxed.stdout)["checks"] as? [[String: Any]])
        #expect(relaxedChecks.first?["name"] as? String == "latency_median" && relaxedChecks.first?["limit"] as? Double == 100000)
    }

    @Test func junitReportHasOneCasePerBudgetAndFailuresForTheFailedOnes() throws {
        let folder = try CLI.makeTempFolder("junit")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/check.xml"
        let r = try CLI.run(["check", "Models/cifar_cnn.onnx", "--latency-ms", "100000", "--size-mb", "0.001", "--junit", path] + Self.quick)
        #expect(r.status == 1, "\(r)")
        let data = try #require(FileManager.default.contents(atPath: path))
        final class Collector: NSObject, XMLParserDelegate {
            var cases: [String] = []
            var failures = 0
            var suitesFailures: String?
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if name == "testcase" { cases.append(attributes["name"] ?? "") }
                if name == "failure" { failures += 1 }
                if name == "testsuites" { suitesFailures = attributes["failures"] }
            }
        }
        let collector = Collector()
        let parser = XMLParser(data: data)
        parser.delegate = collector
        #expect(parser.parse(), "well-formed XML")
        #expect(collector.cases == ["latency_p90", "model_size"])
        #expect(collector.failures == 1 && collector.suitesFailures == "1")
    }
}
