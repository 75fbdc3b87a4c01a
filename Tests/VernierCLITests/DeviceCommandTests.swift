import Foundation
import Testing

/// `vernier device` as a subprocess: measuring into a file, showing and listing stored
/// profiles, and the errors a user meets. The profile folder is always a temporary one
/// (`VERNIER_DEVICE_DIR`), never the user's.
@Suite struct DeviceCommandTests {
    @Test func measuredProfileIsSavedAndShownAsJSON() throws {
        let folder = try CLI.makeTempFolder("device")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/box.json"
        let env = ["VERNIER_DEVICE_DIR": folder + "/store"]
        let measured = try CLI.run(["device", "--measure", "--output", file, "--threads", "1", "--seconds", "0.05"],
                                   environment: env, timeout: 120)
        #expect(measured.status == 0, "\(measured)")
        #expect(measured.out.contains("fp32 GFLOP/s") && measured.out.contains(file), "\(measured)")
        #expect(measured.err.isEmpty, "no progress lines when stderr is not a terminal: \(measured)")
        #expect(FileManager.default.fileExists(atPath: file))
        #expect(!FileManager.default.fileExists(atPath: folder + "/store/host.json"), "--output replaces the host file")

        let shown = try CLI.run(["device", "--show", file, "--format", "json"], environment: env)
        #expect(shown.status == 0, "\(shown)")
        let json = try J.parse(shown.stdout)
        #expect(json["schema"] as? String == "vernier.device/1")
        #expect(json["name"] as? String == "host" && json["source"] as? String == "measured")
        #expect(json["measured_at"] is String && (J.int(json["cores"]) ?? 0) >= 1)
        let roofs = try #require(json["roofs"] as? [[String: Any]])
        #expect(roofs.count == 1 && J.int(roofs.first?["threads"]) == 1)
        let fp32 = try #require((roofs.first?["fp32_gflops"] as? NSNumber)?.doubleValue)
        let bandwidth = try #require((roofs.first?["bandwidth_gbps"] as? NSNumber)?.doubleValue)
        #expect(fp32 > 0 && bandwidth > 0)
        #expect(shown.stdout == FileManager.default.contents(atPath: file), "--format json prints the file itself")

        let table = try CLI.run(["device", "--show", file], environment: env)
        #expect(table.status == 0 && table.out.contains("ridge FLOPs/byte"), "\(table)")
    }

    @Test func aMissingProfileIsOneLineAndExitTwo() throws {
        let folder = try CLI.makeTempFolder("device-empty")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let env = ["VERNIER_DEVICE_DIR": folder]
        let path = try CLI.run(["device", "--show", "/nonexistent"], environment: env)
        #expect(path.status == 2 && path.stderrIsOneVernierLine, "\(path)")
        #expect(path.err.contains("/nonexistent"), "\(path)")
        let host = try CLI.run(["device"], environment: env)
        #expect(host.status == 2 && host.stderrIsOneVernierLine, "\(host)")
        #expect(host.err.contains("vernier device --measure"), "says how to make one: \(host)")
    }

    @Test func listShowsTheFolder() throws {
        let folder = try CLI.makeTempFolder("device-list")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let env = ["VERNIER_DEVICE_DIR": folder]
        let empty = try CLI.run(["device", "--list"], environment: env)
        #expect(empty.status == 0 && empty.out.contains("no device profiles in \(folder)"), "\(empty)")

        let profile = """
            {"schema": "vernier.device/1", "name": "rpi4", "cpu": "Cortex-A72", "source": "spec-derived",
             "cores": 4, "isa": ["asimd"], "caches": {"l1d_bytes": 32768},
             "roofs": [{"threads": 4, "fp32_gflops": 24, "bandwidth_gbps": 4}]}
            """
        try Data(profile.utf8).write(to: URL(fileURLWithPath: folder + "/rpi4.json"))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/broken.json"))
        let listed = try CLI.run(["device", "--list"], environment: env)
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.out.contains("rpi4") && listed.out.contains("Cortex-A72") && listed.out.contains("spec-derived"), "\(listed)")
        #expect(listed.out.contains("broken") && listed.out.contains("unreadable"), "\(listed)")

        let json = try J.parse(try CLI.run(["device", "--list", "--format", "json"], environment: env).stdout)
        let entries = try #require(json["profiles"] as? [[String: Any]])
        #expect(entries.map { $0["name"] as? String } == ["broken", "rpi4"])

        let byName = try CLI.run(["device", "--show", "rpi4"], environment: env)
        #expect(byName.status == 0 && byName.out.contains("L1d 32 KiB") && byName.out.contains("6.00"), "ridge 24/4: \(byName)")
    }

    @Test func conflictingFlagsAreOneLineErrors() throws {
        for args in [["device", "--measure", "--show"], ["device", "--list", "--threads", "2"],
                     ["device", "--measure", "--threads", "0"], ["device", "--measure", "--threads", "1,x"],
                     ["device", "--show", "--output", "x.json"], ["device", "--measure", "--seconds", "0"]] {
            let r = try CLI.run(args)
            #expect(r.status == 2 && r.stderrIsOneVernierLine, "\(r)")
        }
    }

    @Test func helpTeachesTheFileFormat() throws {
        let r = try CLI.run(["device", "--help"])
        #expect(r.status == 0, "\(r)")
        for word in ["VERNIER_DEVICE_DIR", "host.json", "fp32_gflops", "int8_gops", "bandwidth_gbps", "measured_at", "l3_bytes"] {
            #expect(r.out.contains(word), "--help mentions \(word)")
        }
    }
}
