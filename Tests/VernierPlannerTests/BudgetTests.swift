import Testing
import VernierGraph
import VernierTestSupport
@testable import VernierCost
@testable import VernierPlanner

/// Budget files and the verdict drawn from a profile, against hand-made numbers.
struct BudgetTests {
    @Test func yamlAndJSONBudgetsReadTheSame() throws {
        let yaml = try Budget.parse("""
            # CI budget
            latency:
              ms: 15
              percentile: 99
            memory_mb: 64
            size_mb: 20.5
            threads: 2
            device: host
            """, source: "budget.yaml")
        let json = try Budget.parse(#"{"latency_ms": 15, "percentile": 99, "memory_mb": 64, "size_mb": 20.5, "threads": 2, "device": "host"}"#,
                                    source: "budget.json")
        #expect(yaml == json)
        #expect(yaml == Budget(latencyMs: 15, percentile: 99, memoryMiB: 64, sizeMiB: 20.5, threads: 2, device: "host"))
        #expect(try Budget.parse("latency: 8", source: "b").latencyMs == 8)
        #expect(try Budget.parse("latency_ms: 8", source: "b").percentile == 90, "p90 by default")
    }

    @Test func badBudgetsNameTheProblem() {
        func message(_ text: String) -> String {
            do { _ = try Budget.parse(text, source: "b.yaml"); return "" } catch { return "\(error)" }
        }
        #expect(message("latency_msec: 3").contains("unknown key latency_msec"))
        #expect(message("latency: {ms: 3, pct: 90}").contains("unknown key latency.pct"))
        #expect(message("latency_ms: -1").contains("positive"))
        #expect(message("latency_ms: fast").contains("must be a number"))
        #expect(message("percentile: 75").contains("50, 90 or 99"))
        #expect(message("threads: 0").contains("at least 1"))
        #expect(message("- 1\n- 2").contains("mapping"))
        #expect(message("latency: [").contains("not valid YAML"))
    }

    @Test func flagsOverrideTheFile() {
        let file = Budget(latencyMs: 10, percentile: 99, memoryMiB: 64, threads: 2)
        let flags = Budget(latencyMs: 5, percentile: 50)
        let merged = file.overridden(by: flags, percentileGiven: true)
        #expect(merged == Budget(latencyMs: 5, percentile: 50, memoryMiB: 64, threads: 2))
        #expect(file.overridden(by: flags, percentileGiven: false).percentile == 99)
    }

    func profile(endToEndMs: [Double], layers: [(String, Double)], peakBytes: Int) throws -> Profile {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(8)])
        var previous = "x"
        for (name, _) in layers {
            b.node("Relu", [previous], [name])
            previous = name
        }
        b.output(previous)
        let model = try GraphValidator.validate(b.model)
        let table = CostModel.table(for: AnalyzedModel(model: model, inferred: try ShapeInference().infer(model), libONNXNote: nil))
        let steps = layers.map { name, ms in
            MeasuredRuns.Step(name: name, opType: "Relu", sourceNodes: [name], starts: [0], ends: [UInt64(ms * 1e6)])
        }
        let runs = MeasuredRuns(steps: steps, timedRuns: [1], endToEndRuns: endToEndMs.map { UInt64($0 * 1e6) }, threads: 1)
        return Profile.build(table: table, runs: runs,
                             memory: MeasuredMemory(arenaBytes: 1024, constantBytes: 0, baselineResidentBytes: 1 << 20, peakResidentBytes: (1 << 20) + peakBytes),
                             device: nil, deviceSource: nil)
    }

    @Test func verdictComparesEachLineAndBlamesTheSlowestLayers() throws {
        // End to end: 1..10 ms, so median 5.5, p90 9.1.
        let p = try profile(endToEndMs: (1...10).map(Double.init), layers: [("a", 1), ("b", 3), ("c", 2)], peakBytes: 3 << 20)
        let pass = BudgetVerdict.evaluate(p, against: Budget(latencyMs: 10, memoryMiB: 4))
        #expect(pass.pass && pass.offenders.isEmpty)
        #expect(pass.checks.map(\.name) == ["latency_p90", "peak_memory"])
        #expect(abs(pass.checks[0].value - 9.1) < 1e-9)
        #expect(abs(pass.checks[0].headroomPercent - 9) < 1e-9)   // (10 - 9.1) / 10
        #expect(pass.checks[1].value == 3)

        let fail = BudgetVerdict.evaluate(p, against: Budget(latencyMs: 5, percentile: 50, memoryMiB: 4))
        #expect(!fail.pass)
        #expect(fail.failed.map(\.name) == ["latency_median"])
        #expect(abs(fail.checks[0].headroomPercent - -10) < 1e-9)   // 5.5 against 5
        #expect(fail.offenders.map(\.name) == ["b", "c", "a"])
        // Over by 0.5 ms: the 3 ms layer is 600% of the overshoot.
        #expect(abs((fail.offenders[0].overshootPercent ?? 0) - 600) < 1e-6)

        let memory = BudgetVerdict.evaluate(p, against: Budget(memoryMiB: 2))
        #expect(memory.failed.map(\.name) == ["peak_memory"])
        #expect(memory.offenders.first?.overshootPercent == nil, "no latency overshoot to share")
    }
}
