import Foundation
import Testing

/// `vernier predict`, `device --calibrate / --accuracy`, and `check` / `compare` with a
/// device other than this machine, as subprocesses. Profiles live in a temporary folder
/// (`VERNIER_DEVICE_DIR`), never the user's.
@Suite struct PredictCommandTests {
    static let models = ["Models/resnet_mini.onnx", "Models/cifar_cnn.onnx", "Models/mobilenetv2_mini.onnx"]
    /// The profiler's own threshold (p90/median) above which it calls timings noisy.
    static let quietSpread = 1.10
    /// Profiles taken at most, 3 s apart, until one is quiet.
    static let attempts = 12

    @Test func calibratedOnMeasuredProfilesThePredictionTracksTheMeasurement() throws {
        let folder = try CLI.makeTempFolder("predict")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let env = ["VERNIER_DEVICE_DIR": folder + "/store"]
        let device = folder + "/box.json"
        let measured = try CLI.run(["device", "--measure", "--output", device, "--threads", "1", "--seconds", "0.05"],
                                   environment: env, timeout: 120)
        #expect(measured.status == 0, "\(measured)")
        var profiles: [String] = []
        for model in Self.models {
            let name = ((model as NSString).lastPathComponent as NSString).deletingPathExtension
            let path = "\(folder)/\(name).t1.json"
            // The first model's profile is the measurement the prediction is checked
            // against below. A profile whose own figures say the machine was busy (other
            // suites run beside this one) is retaken, as a user would after the
            // profiler's notes, a few times at most: an end-to-end spread over 1.10, or
            // kernels and end-to-end runs that disagree by more than 25% (once the kernels
            // summed to 3.0 ms and the runs took 6.4: the load changed between them).
            // The heaviest suites run beside this one for about half a minute.
            for attempt in 1...(profiles.isEmpty ? Self.attempts : 1) {
                let run = try CLI.run(["profile", model, "--threads", "1", "--runs", "20", "--min-time", "0.2", "--no-roofline",
                                       "--format", "json", "-o", path], environment: env, timeout: 120)
                #expect(run.status == 0, "\(run)")
                let totals = (try? J.parse(try #require(FileManager.default.contents(atPath: path))))?["totals"] as? [String: Any]
                let spread = (totals?["spread"] as? NSNumber)?.doubleValue ?? 1
                let outside = abs((totals?["overhead_pct"] as? NSNumber)?.doubleValue ?? 0)
                if spread <= Self.quietSpread && outside <= 25 { break }
                if attempt < Self.attempts { Thread.sleep(forTimeInterval: 3) }
            }
            profiles.append(path)
        }

        let calibrated = folder + "/calibrated.json"
        let fit = try CLI.run(["device", "--calibrate", device, "--from"] + profiles + ["--output", calibrated, "--format", "json"],
                              environment: env)
        #expect(fit.status == 0, "\(fit)")
        let fitted = try J.parse(try #require(FileManager.default.contents(atPath: calibrated)))
        let efficiency = try #require(fitted["efficiency"] as? [String: Any])
        #expect(efficiency["calibrated"] as? Bool == true)
        #expect((efficiency["fitted_on"] as? [String])?.count == 3, "\(efficiency)")

        // Calibrated on this one model's profile alone, the prediction of the same model
        // lands near what that profile measured (however loaded the machine was then).
        let own = folder + "/own.json"
        let fitOwn = try CLI.run(["device", "--calibrate", device, "--from", profiles[0], "--output", own], environment: env)
        #expect(fitOwn.status == 0, "\(fitOwn)")
        let predicted = try CLI.run(["predict", Self.models[0], "--device", own, "--threads", "1", "--format", "json"],
                                    environment: env)
        #expect(predicted.status == 0, "\(predicted)")
        let json = try J.parse(predicted.stdout)
        #expect(json["schema"] as? String == "vernier.predict/1")
        #expect((json["device"] as? [String: Any])?["calibrated"] as? Bool == true)
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        // Every kernel that moves data costs time; a view (a Reshape) costs the fixed cost
        // alone, which a fit may put at 0.
        #expect(nodes.allSatisfy { (($0["predicted_ms"] as? NSNumber)?.doubleValue ?? -1) >= 0 }, "\(nodes)")
        #expect(nodes.filter { $0["copies_nothing"] as? Bool != true }.allSatisfy { (($0["predicted_ms"] as? NSNumber)?.doubleValue ?? 0) > 0 },
                "\(nodes)")
        #expect(nodes.contains { $0["op"] as? String == "Flatten" || $0["op"] as? String == "Reshape" }
                    == nodes.contains { $0["copies_nothing"] as? Bool == true }, "\(nodes)")
        let profile = try J.parse(try #require(FileManager.default.contents(atPath: profiles[0])))
        // The same kernels as the profile measured, in the same order.
        let profiled = try #require(profile["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["name"] as? String } == profiled.map { $0["name"] as? String })
        #expect(nodes.map { $0["op_class"] as? String } == profiled.map { $0["op_class"] as? String })
        let total = try #require(((json["totals"] as? [String: Any])?["predicted_ms"] as? NSNumber)?.doubleValue)
        let e2e = try #require((((profile["totals"] as? [String: Any])?["latency_ms"] as? [String: Any])?["median"] as? NSNumber)?.doubleValue)
        #expect(abs(total - e2e) / e2e < 0.35, "predicted \(total) ms, measured \(e2e) ms")

        let accuracy = try CLI.run(["device", "--accuracy", device, "--from"] + profiles + ["--format", "json"], environment: env)
        #expect(accuracy.status == 0, "\(accuracy)")
        let report = try J.parse(accuracy.stdout)
        #expect(report["schema"] as? String == "vernier.accuracy/1")
        #expect((report["models"] as? [[String: Any]])?.count == 3)
        #expect(J.int((report["end_to_end"] as? [String: Any])?["count"]) == 3)
        // Each held-out model lists its kernels: the first model's are the profile's rows,
        // with the profile's median times and a prediction each.
        let firstModel = try #require((report["models"] as? [[String: Any]])?.first { ($0["model"] as? String) == "resnet_mini" && J.int($0["threads"]) == 1 })
        let kernels = try #require(firstModel["kernels"] as? [[String: Any]])
        #expect(kernels.map { $0["name"] as? String } == profiled.map { $0["name"] as? String })
        for (kernel, row) in zip(kernels, profiled) {
            let measured = try #require((kernel["measured_ms"] as? NSNumber)?.doubleValue)
            let median = try #require(((row["latency_ms"] as? [String: Any])?["median"] as? NSNumber)?.doubleValue)
            #expect(abs(measured - median) <= 1e-9 * median, "\(kernel) against \(row)")
            let predicted = try #require((kernel["predicted_ms"] as? NSNumber)?.doubleValue)
            #expect(row["copies_nothing"] as? Bool == true ? predicted >= 0 : predicted > 0, "\(kernel)")
        }
        let table = try CLI.run(["device", "--accuracy", device, "--from"] + profiles, environment: env)
        #expect(table.status == 0 && table.out.contains("within 10%") && table.out.contains("resnet_mini"), "\(table)")
        #expect(report["statistic"] as? String == "median")

        // With --statistic min, each model's truth is its profile's fastest run.
        let fastest = try CLI.run(["device", "--accuracy", device, "--statistic", "min", "--from"] + profiles + ["--format", "json"],
                                  environment: env)
        #expect(fastest.status == 0, "\(fastest)")
        let fastestReport = try J.parse(fastest.stdout)
        #expect(fastestReport["statistic"] as? String == "min")
        for model in try #require(fastestReport["models"] as? [[String: Any]]) {
            let name = try #require(model["model"] as? String)
            let path = try #require(profiles.first { ($0 as NSString).lastPathComponent.hasPrefix(name + ".") })
            let measured = try J.parse(try #require(FileManager.default.contents(atPath: path)))
            let min = try #require((((measured["totals"] as? [String: Any])?["latency_ms"] as? [String: Any])?["min"] as? NSNumber)?.doubleValue)
            // Equal up to the report's round trip through microseconds (1.134518 ms came
            // back as 1.1345180000000001); a median instead would be off by far more.
            let truth = try #require((model["measured_ms"] as? NSNumber)?.doubleValue)
            #expect(abs(truth - min) <= 1e-9 * min, "\(name): \(truth) against \(min)")
        }
        let misplaced = try CLI.run(["device", "--show", "--statistic", "min"], environment: env)
        #expect(misplaced.status == 2 && misplaced.err.contains("--statistic"), "\(misplaced)")
    }

    @Test func builtinDevicesPredictUncalibratedAndSaySo() throws {
        let folder = try CLI.makeTempFolder("predict-builtin")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let env = ["VERNIER_DEVICE_DIR": folder]
        let table = try CLI.run(["predict", "Models/resnet_mini.onnx", "--device", "rpi4"], environment: env)
        #expect(table.status == 0 && table.out.contains("uncalibrated") && table.out.contains("Predicted ms"), "\(table)")
        let json = try J.parse(try CLI.run(["predict", "Models/bert_mini.onnx", "--dim", "batch=1", "--dim", "seq=32",
                                            "--device", "rpi5", "--format", "json"], environment: env).stdout)
        #expect((json["device"] as? [String: Any])?["calibrated"] as? Bool == false)
        #expect(J.int((json["totals"] as? [String: Any])?["threads"]) == 4, "all of the device's cores by default")
        #expect((json["notes"] as? [String])?.contains { $0.contains("uncalibrated") } == true)
        let list = try CLI.run(["device", "--list"], environment: env)
        #expect(list.status == 0 && list.out.contains("orin-nano") && list.out.contains("laptop-x86"), "\(list)")
        let unknown = try CLI.run(["predict", "Models/resnet_mini.onnx", "--device", "no-such-board"], environment: env)
        #expect(unknown.status == 2 && unknown.stderrIsOneVernierLine && unknown.err.contains("rpi4"), "\(unknown)")
        let garbage = folder + "/garbage.json"
        try "{]".write(toFile: garbage, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["device", "--calibrate", "rpi4", "--from", garbage, "--output", folder + "/x.json"], environment: env)
        #expect(bad.status == 2 && bad.stderrIsOneVernierLine && bad.err.contains(garbage), "\(bad)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/x.json"))
    }

    @Test func checkAndCompareOnAnotherDevicePredictInsteadOfMeasuring() throws {
        let folder = try CLI.makeTempFolder("predict-check")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let env = ["VERNIER_DEVICE_DIR": folder]
        let loose = try CLI.run(["check", "Models/resnet_mini.onnx", "--latency-ms", "1000", "--memory-mb", "100", "--device", "rpi4"],
                                environment: env)
        #expect(loose.status == 0 && loose.out.contains("Predicted for device rpi4"), "\(loose)")
        let tight = try CLI.run(["check", "Models/resnet_mini.onnx", "--latency-ms", "0.0001", "--device", "rpi4", "--format", "json"],
                                environment: env)
        #expect(tight.status == 1, "\(tight)")
        let verdict = try J.parse(tight.stdout)
        let basis = try #require(verdict["measured"] as? [String: Any])
        #expect(basis["predicted"] as? Bool == true && basis["device"] as? String == "rpi4")
        #expect((verdict["offenders"] as? [Any])?.isEmpty == false)

        let compared = try CLI.run(["compare", "Models/resnet_mini.onnx", "Models/mobilenetv2_mini.onnx", "--device", "rpi5",
                                    "--format", "json"], environment: env)
        #expect(compared.status == 0, "\(compared)")
        let comparison = try J.parse(compared.stdout)
        #expect((comparison["predicted_for"] as? [String: Any])?["device"] as? String == "rpi5")
        #expect((comparison["models"] as? [[String: Any]])?.count == 2)
    }
}
