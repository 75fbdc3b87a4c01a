import Foundation
import Testing

/// `vernier plan` as a subprocess: a reachable budget yields a written, valid variant
/// that meets it; an unreachable one exits 1 showing the closest; errors exit 2.
@Suite struct PlanCommandTests {
    @Test func aBudgetAtSixtyPercentIsMetByABuiltAndMeasuredVariant() throws {
        let folder = try CLI.makeTempFolder("plan")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The original's median on this machine, then a budget at 60% of it.
        let original = try J.parse(try CLI.run(["profile", "Models/resnet_mini.onnx", "--threads", "1", "--runs", "20",
                                                "--min-time", "0.2", "--no-roofline", "--format", "json"]).stdout)
        let median = try #require((((original["totals"] as? [String: Any])?["latency_ms"] as? [String: Any])?["median"] as? NSNumber)?.doubleValue)
        let limit = 0.6 * median
        let plan = try CLI.run(["plan", "Models/resnet_mini.onnx", "--latency-ms", String(limit), "--percentile", "50",
                                "--threads", "1", "--verify-time", "0.3", "--emit", folder, "--format", "json"], timeout: 300)
        #expect(plan.status == 0 || plan.status == 1, "\(plan)")
        let json = try J.parse(plan.stdout)
        #expect(json["schema"] as? String == "vernier.plan/1")
        let latency = try #require(json["latency_ms"] as? [String: Any])
        let measured = try #require((latency["variant_measured"] as? NSNumber)?.doubleValue)
        let predicted = try #require((latency["variant_predicted"] as? NSNumber)?.doubleValue)
        #expect(predicted > 0 && measured > 0)
        // The verdict is the measurement's, whichever way it went.
        #expect((json["meets_budget"] as? Bool) == (measured <= limit), "\(latency)")
        #expect(plan.status == ((json["success"] as? Bool) == true ? 0 : 1))
        let planOriginal = try #require((latency["original"] as? NSNumber)?.doubleValue)
        let variant: String
        if planOriginal <= limit {
            // The machine ran faster during the plan's own measurement: nothing to cut.
            #expect(json["strategy"] as? String == "none", "\(json)")
            variant = folder + "/resnet_mini.original.onnx"
        } else {
            let groups = try #require(json["groups"] as? [[String: Any]])
            #expect(groups.contains { J.int($0["kept"]) ?? 0 < J.int($0["channels"]) ?? 0 }, "something was cut: \(groups)")
            // Every group's share of the original's, and of the variant's predicted and
            // measured, kernel time is a fraction; the groups touch most of the time.
            for key in ["time_share", "variant_predicted_share", "variant_measured_share"] {
                let shares = groups.compactMap { ($0[key] as? NSNumber)?.doubleValue }
                #expect(shares.count == groups.count && shares.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(key): \(groups)")
                #expect((shares.max() ?? 0) > 0.1, "\(key): \(shares)")
            }
            variant = folder + "/resnet_mini.pruned.onnx"
            // The verification compared it with the original three times and says so.
            let notes = (json["notes"] as? [String]) ?? []
            #expect(notes.contains { $0.contains("measured the variant 3 times beside the original") }, "\(notes)")
        }
        // The variant on disk is a valid model with the original's output shape.
        let summary = try CLI.run(["run", variant, "--threads", "1"])
        #expect(summary.status == 0 && summary.out.contains("logits"), "\(summary)")
        for file in ["plan.md", "plan.json", "compare.md"] {
            #expect(FileManager.default.fileExists(atPath: folder + "/" + file), "\(file) written")
        }
        let fidelity = try #require(json["fidelity"] as? [[String: Any]])
        #expect(fidelity.count == 1 && ((fidelity[0]["cosine"] as? NSNumber)?.doubleValue ?? 2) <= 1)
    }

    @Test func anUnreachableBudgetOrFidelityFloorExitsOne() throws {
        let tiny = try CLI.run(["plan", "Models/resnet_mini.onnx", "--latency-ms", "0.000001", "--threads", "1", "--verify-time", "0.3"],
                               timeout: 300)
        #expect(tiny.status == 1 && tiny.out.contains("NO PLAN"), "\(tiny)")
        let floor = try CLI.run(["plan", "Models/resnet_mini.onnx", "--latency-ms", "0.000001", "--threads", "1", "--verify-time", "0.3",
                                 "--min-fidelity", "0.999999", "--format", "json"], timeout: 300)
        #expect(floor.status == 1, "\(floor)")
        #expect(try J.parse(floor.stdout)["success"] as? Bool == false)
        let bad = try CLI.run(["plan", "Models/resnet_mini.onnx", "--latency-ms", "-1"])
        #expect(bad.status == 2 && bad.stderrIsOneVernierLine, "\(bad)")
        let noTime = try CLI.run(["plan", "Models/resnet_mini.onnx", "--latency-ms", "1", "--verify-time", "0"])
        #expect(noTime.status == 2 && noTime.stderrIsOneVernierLine, "\(noTime)")
        let predicted = try CLI.run(["plan", "Models/resnet_mini.onnx", "--latency-ms", "1000", "--device", "rpi4", "--format", "json"],
                                    environment: ["VERNIER_DEVICE_DIR": NSTemporaryDirectory() + "vernier-plan-none-\(getpid())"], timeout: 300)
        #expect(predicted.status == 0, "\(predicted)")
        let json = try J.parse(predicted.stdout)
        #expect((json["device"] as? [String: Any])?["predicted_only"] as? Bool == true)
    }
}
