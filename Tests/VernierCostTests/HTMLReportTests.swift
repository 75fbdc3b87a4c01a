import Foundation
import Testing
import VernierTestSupport
import VernierGraph
import VernierCost
@testable import VernierReport

/// The HTML report rendered from profiles built by hand: escaping of names taken from the
/// model, one table row per profile row, the charts present or replaced by a sentence,
/// nothing loaded from outside; and the chart helpers' ticks and scales.
struct HTMLReportTests {
    static let hostileNode = "<script>alert('x')</script>&\"q\""
    static let hostilePath = "</title><img src=x onerror=alert(1)>.onnx"

    /// x -> Conv (named by hostile text) -> Relu -> y, as if measured for three runs.
    func profile(device: DeviceProfile? = nil, path: String = hostilePath) throws -> Profile {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(4), .value(8), .value(8)])
        b.weight("w", [4, 4, 3, 3])
        b.node("Conv", ["x", "w"], [Self.hostileNode], ["pads": .ints([1, 1, 1, 1])])
        b.node("Relu", [Self.hostileNode], ["y"])
        b.output("y")
        var model = try GraphValidator.validate(b.model)
        model.path = path
        let inferred = try ShapeInference().infer(model)
        let table = CostModel.table(for: AnalyzedModel(model: model, inferred: inferred, libONNXNote: nil))
        func step(_ name: String, _ op: String, _ ms: [UInt64]) -> MeasuredRuns.Step {
            var s = MeasuredRuns.Step(name: name, opType: op, sourceNodes: [name])
            var clock: UInt64 = 1_000
            for d in ms {
                s.starts.append(clock)
                s.ends.append(clock + d * 1_000_000)
                clock += 10 * d * 1_000_000
            }
            return s
        }
        let runs = MeasuredRuns(steps: [step(Self.hostileNode, "Conv", [3, 2, 4]), step("y", "Relu", [1, 1, 1])],
                                timedRuns: [4_000_000, 3_000_000, 5_000_000], endToEndRuns: [4_000_000, 3_500_000, 5_000_000],
                                warmupRuns: 1, threads: 1)
        return Profile.build(table: table, runs: runs, memory: MeasuredMemory(arenaBytes: 2048, constantBytes: 576),
                             device: device, deviceSource: device.map { _ in "<dev>.json" })
    }

    static let device = DeviceProfile(name: "<dev>", cpu: "cpu & co", source: .specDerived, cores: 1, isa: [], caches: .init(),
                                      roofs: [.init(threads: 1, fp32Gflops: 4, bandwidthGBps: 2)])

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test func modelDerivedTextIsEscaped() throws {
        let html = HTMLReport(profiles: [try profile(device: Self.device)]).render()
        #expect(!html.contains("<script>alert"), "a node name must not become markup")
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;q&quot;"))
        #expect(!html.contains("<img"), "the model path must not become markup")
        #expect(html.contains("&lt;/title&gt;&lt;img src=x onerror=alert(1)&gt;.onnx"))
        #expect(!html.contains("<dev>") && html.contains("&lt;dev&gt;"), "device names come from a file too")
        #expect(count("<script>", in: html) == 1, "the sorting script is the only script")
        #expect(count("<title>", in: html) >= 1 && count("</title>", in: html) == count("<title>", in: html))
    }

    @Test func selfContainedWithOneTableRowPerProfileRow() throws {
        let p = try profile(device: Self.device)
        let html = HTMLReport(profiles: [p]).render()
        for outside in ["http://", "https://", "src=\"", "<link", "@import", "url("] {
            #expect(!html.contains(outside), "\(outside)")
        }
        #expect(count("<tr data-row=", in: html) == p.rows.count)
        #expect(html.contains("<table class=\"sortable layers\">"))
        // Top layers, op types, roofline and memory timeline.
        #expect(count("<svg ", in: html) == 4)
        #expect(html.contains("ridge 2.00 FLOP/B"))
        #expect(html.contains("class=\"pt compute\"") || html.contains("class=\"pt memory\""))
        #expect(html.contains("peak "))
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.hasSuffix("</html>\n"))
    }

    @Test func missingDeviceOrPlanGivesASentenceInsteadOfAChart() throws {
        let html = HTMLReport(profiles: [try profile()]).render()
        #expect(html.contains("No roofline: this profile was measured without a device profile (<code>--no-roofline</code>)"))
        #expect(count("<svg ", in: html) == 3)
        var unplanned = try profile()
        unplanned.table.memory = nil
        unplanned.table.memoryNote = "value '<v>' has symbolic size"
        let text = HTMLReport(profiles: [unplanned]).render()
        #expect(text.contains("No memory timeline: value &#39;&lt;v&gt;&#39; has symbolic size."))
        #expect(count("<svg ", in: text) == 2)
    }

    @Test func severalModelsGetAComparisonAndFoldedSections() throws {
        let a = try profile(path: "a.onnx"), b = try profile(path: "dir/b.onnx")
        let comparison = Comparison(profiles: [a, b], baselineIndex: 0, agreement: [[], []], agreementNotes: [nil, "<why>"])
        let html = HTMLReport(profiles: [a, b], comparison: comparison).render()
        #expect(html.contains("<h1>Comparison of a.onnx, b.onnx</h1>"))
        #expect(html.contains("<table class=\"totals\">"))
        #expect(count("<details id=\"model-", in: html) == 2)
        #expect(html.contains("Latency per model"))
        #expect(html.contains("&lt;why&gt;") && !html.contains("<why>"))
        #expect(count("<tr data-row=", in: html) == a.rows.count + b.rows.count)
    }

    @Test func ticksAreRoundNumbersInsideTheDomain() {
        func close(_ a: [Double], _ b: [Double]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) } }
        #expect(close(Ticks.linear(0, 1, count: 5), [0, 0.2, 0.4, 0.6, 0.8, 1]))
        #expect(close(Ticks.linear(0, 37, count: 4), [0, 10, 20, 30]))
        #expect(Ticks.roundedUp(37) == 40)
        #expect(close(Ticks.logarithmic(0.1, 1000), [0.1, 1, 10, 100, 1000]))
        #expect(close(Ticks.logarithmic(1, 100), [1, 2, 5, 10, 20, 50, 100]), "fewer than three decades: 2x and 5x too")
        let decades = Ticks.decades(0.3, 45)
        #expect(close([decades.0, decades.1], [0.1, 100]))
        let log = Scale(lower: 1, upper: 100, start: 0, end: 200, logarithmic: true)
        #expect(abs(log(10) - 100) < 1e-9)
        #expect(log(0) == 0, "non-positive values pin to the axis start")
        let linear = Scale(lower: 0, upper: 10, start: 300, end: 100)
        #expect(linear(5) == 200)
    }
}
