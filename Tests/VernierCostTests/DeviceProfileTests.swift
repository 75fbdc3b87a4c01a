import Foundation
import Testing
@testable import VernierCost

/// Device profiles (the vernier.device/1 file), the roofline arithmetic, and the folder
/// profiles are stored in.
struct DeviceProfileTests {
    static func sample(cpu: String = "Test CPU 9000", cores: Int = 4, source: DeviceProfile.Source = .measured) -> DeviceProfile {
        DeviceProfile(name: "host", cpu: cpu, source: source, measuredAt: "2025-01-31T09:41:00Z", cores: cores,
                      isa: ["avx2", "fma"], caches: DeviceProfile.Caches(l1dBytes: 32768, l2Bytes: 524288, l3Bytes: nil),
                      roofs: [DeviceProfile.Roof(threads: 4, fp32Gflops: 300, int8Gops: 600, bandwidthGBps: 40),
                              DeviceProfile.Roof(threads: 1, fp32Gflops: 80, bandwidthGBps: 20),
                              DeviceProfile.Roof(threads: 2, fp32Gflops: 160, int8Gops: 320, bandwidthGBps: 32)],
                      notes: "made by a test")
    }

    /// A fresh empty folder; the caller removes it.
    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "vernier-device-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The description of the error `body` throws, or nil when it throws none.
    static func errorText(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The JSON of `profile` as a dictionary, edited by `edit`, as bytes.
    static func editedJSON(_ profile: DeviceProfile, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        var object = try #require(try JSONSerialization.jsonObject(with: profile.jsonData()) as? [String: Any])
        edit(&object)
        return try JSONSerialization.data(withJSONObject: object)
    }

    // MARK: - The file

    @Test func jsonUsesSnakeCaseKeysAndRoundTrips() throws {
        let profile = Self.sample()
        let data = try profile.jsonData()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["schema", "name", "cpu", "source", "measured_at", "cores", "isa", "caches", "roofs", "notes"])
        #expect(object["schema"] as? String == "vernier.device/1")
        #expect(object["source"] as? String == "measured")
        let caches = try #require(object["caches"] as? [String: Any])
        #expect(caches["l1d_bytes"] as? Int == 32768 && caches["l2_bytes"] as? Int == 524288)
        let roofs = try #require(object["roofs"] as? [[String: Any]])
        #expect(roofs.map { $0["threads"] as? Int } == [1, 2, 4], "roofs are sorted by thread count")
        #expect(Set(roofs[1].keys) == ["threads", "fp32_gflops", "int8_gops", "bandwidth_gbps"])
        #expect(roofs[1]["fp32_gflops"] as? Double == 160 && roofs[1]["bandwidth_gbps"] as? Double == 32)
        #expect(String(decoding: data, as: UTF8.self).contains("\"vernier.device/1\""), "slashes are not escaped")
        #expect(try DeviceProfile.decode(data, path: "x.json") == profile)
    }

    @Test func specDerivedSourceIsSpelledWithAHyphen() throws {
        let data = try Self.sample(source: .specDerived).jsonData()
        #expect(String(decoding: data, as: UTF8.self).contains("\"spec-derived\""))
        #expect(try DeviceProfile.decode(data, path: "x.json").source == .specDerived)
    }

    @Test func loadRejectsBadFilesNamingTheProblem() throws {
        let profile = Self.sample()
        let cases: [(String, Data)] = [
            ("schema \"other/1\"", try Self.editedJSON(profile) { $0["schema"] = "other/1" }),
            ("no roofs", try Self.editedJSON(profile) { $0["roofs"] = [] }),
            ("non-positive", try Self.editedJSON(profile) {
                $0["roofs"] = [["threads": 1, "fp32_gflops": 0, "bandwidth_gbps": 10]] }),
            ("non-positive", try Self.editedJSON(profile) {
                $0["roofs"] = [["threads": 1, "fp32_gflops": 50, "bandwidth_gbps": -3]] }),
            ("non-positive", try Self.editedJSON(profile) {
                $0["roofs"] = [["threads": 1, "fp32_gflops": 50, "int8_gops": 0, "bandwidth_gbps": 10]] }),
            ("non-positive", try Self.editedJSON(profile) {
                $0["roofs"] = [["threads": 0, "fp32_gflops": 50, "bandwidth_gbps": 10]] }),
            ("'cpu'", try Self.editedJSON(profile) { $0.removeValue(forKey: "cpu") }),
            ("JSON", Data("{ not json".utf8)),
        ]
        for (reason, data) in cases {
            let text = try #require(Self.errorText { _ = try DeviceProfile.decode(data, path: "/some/dev.json") },
                                    "accepted a file with \(reason)")
            #expect(text.contains("/some/dev.json is not a valid device profile") && text.contains(reason), "\(text)")
            #expect(text.contains("vernier device --measure") && !text.contains("\n"), "\(text)")
        }
    }

    @Test func roofPicksTheExactThenTheNearestLowerThenTheSmallestCount() throws {
        let profile = Self.sample()   // roofs at 1, 2 and 4 threads
        #expect(profile.roof(threads: 2)?.fp32Gflops == 160)
        #expect(profile.roof(threads: 3)?.fp32Gflops == 160, "3 threads: the 2-thread roof, no gain assumed")
        #expect(profile.roof(threads: 64)?.fp32Gflops == 300)
        var fromTwo = profile
        fromTwo.roofs.removeFirst()
        #expect(fromTwo.roof(threads: 1)?.threads == 2, "below every measured count: the smallest")
        var none = profile
        none.roofs = []
        #expect(none.roof(threads: 1) == nil && none.roofline(threads: 1) == nil)
    }

    @Test func rooflineUsesTheInt8PeakForIntegerWorkWhenMeasured() throws {
        let profile = Self.sample()
        #expect(profile.roofline(threads: 2, integer: true) == Roofline(peakGflops: 320, bandwidthGBps: 32))
        #expect(profile.roofline(threads: 2) == Roofline(peakGflops: 160, bandwidthGBps: 32))
        #expect(profile.roofline(threads: 1, integer: true) == Roofline(peakGflops: 80, bandwidthGBps: 20),
                "no int8 figure at 1 thread: the fp32 peak")
    }

    // MARK: - Roofline arithmetic (peak 100 GFLOP/s, 20 GB/s: ridge at 5 FLOPs/byte)

    let roofline = Roofline(peakGflops: 100, bandwidthGBps: 20)

    @Test func ridgeAndAttainableRate() {
        #expect(roofline.ridgeIntensity == 5)
        #expect(roofline.attainableGflops(intensity: 2) == 40, "below the ridge: 2 FLOPs/byte x 20 GB/s")
        #expect(roofline.attainableGflops(intensity: 5) == 100)
        #expect(roofline.attainableGflops(intensity: 50) == 100, "above the ridge: the peak")
        #expect(roofline.bound(intensity: 4.9) == .memory)
        #expect(roofline.bound(intensity: 5) == .compute)
    }

    @Test func placesAComputeBoundLayer() throws {
        // 1 GFLOP over 100 MB (10 FLOPs/byte) in 20 ms: 50 GFLOP/s, 5 GB/s, half the 100 GFLOP/s roof.
        let p = try #require(roofline.place(flops: 1e9, bytes: 1e8, seconds: 0.02))
        #expect(p.bound == .compute)
        #expect(abs(p.achievedGflops - 50) < 1e-9 && abs(p.achievedGBps - 5) < 1e-9)
        #expect(p.attainable == 100)
        #expect(abs(p.percentOfRoof - 50) < 1e-9)
    }

    @Test func placesAMemoryBoundLayer() throws {
        // 100 MFLOP over 100 MB (1 FLOP/byte) in 10 ms: 10 GFLOP/s of an attainable 20.
        let p = try #require(roofline.place(flops: 1e8, bytes: 1e8, seconds: 0.01))
        #expect(p.bound == .memory)
        #expect(abs(p.achievedGflops - 10) < 1e-9 && abs(p.achievedGBps - 10) < 1e-9)
        #expect(abs(p.attainable - 20) < 1e-9)
        #expect(abs(p.percentOfRoof - 50) < 1e-9)
    }

    @Test func placesADataMovementLayerAgainstTheBandwidthRoof() throws {
        // A transpose: no FLOPs, 1 GB moved in 100 ms = 10 GB/s of 20.
        let p = try #require(roofline.place(flops: 0, bytes: 1e9, seconds: 0.1))
        #expect(p.bound == .memory)
        #expect(p.achievedGflops == 0 && abs(p.achievedGBps - 10) < 1e-9)
        #expect(p.attainable == 20)
        #expect(abs(p.percentOfRoof - 50) < 1e-9)
        #expect(roofline.place(flops: 0, bytes: 0, seconds: 0.1) == nil, "nothing done")
        #expect(roofline.place(flops: 1e6, bytes: 1e6, seconds: 0) == nil, "no time measured")
    }

    // MARK: - The store

    @Test func defaultDirectoryFollowsTheEnvironment() {
        #expect(DeviceProfileStore.defaultDirectory(environment: ["VERNIER_DEVICE_DIR": "/d", "XDG_CONFIG_HOME": "/x", "HOME": "/h"]) == "/d")
        #expect(DeviceProfileStore.defaultDirectory(environment: ["XDG_CONFIG_HOME": "/x", "HOME": "/h"]) == "/x/vernier/devices")
        #expect(DeviceProfileStore.defaultDirectory(environment: ["XDG_CONFIG_HOME": "relative", "HOME": "/h"]) == "/h/.config/vernier/devices",
                "a relative XDG_CONFIG_HOME is ignored, as the XDG spec says")
        #expect(DeviceProfileStore.defaultDirectory(environment: ["VERNIER_DEVICE_DIR": "", "HOME": "/h"]) == "/h/.config/vernier/devices")
    }

    @Test func namesResolveInTheFolderAndPathsAsGiven() {
        let store = DeviceProfileStore(directory: "/profiles")
        #expect(store.hostProfilePath == "/profiles/host.json")
        #expect(store.resolve("rpi4") == "/profiles/rpi4.json")
        #expect(store.resolve("rpi4.json") == "rpi4.json", "ends in .json: a path relative to the working folder")
        #expect(store.resolve("boxes/rpi4") == "boxes/rpi4")
    }

    @Test func saveThenLoadByNameAndByPathLeavesNoTemporaryFile() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = DeviceProfileStore(directory: folder + "/nested/devices")   // created by save
        let profile = Self.sample()
        try store.save(profile, to: store.hostProfilePath)
        #expect(try store.load(nameOrPath: "host") == profile)
        #expect(try store.load(nameOrPath: store.hostProfilePath) == profile)
        var changed = profile
        changed.roofs[0].fp32Gflops = 81
        try store.save(changed, to: store.hostProfilePath)   // replaces the file
        #expect(try store.load(nameOrPath: "host") == changed)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory) == ["host.json"],
                "the temporary file was renamed into place, nothing else is left")
    }

    @Test func saveRefusesAProfileThatCouldNotBeReadBack() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = DeviceProfileStore(directory: folder)
        var bad = Self.sample()
        bad.roofs[0].bandwidthGBps = 0
        #expect(throws: DeviceProfileError.self) { try store.save(bad, to: store.hostProfilePath) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    @Test func aMissingProfileSaysWhatToDo() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = DeviceProfileStore(directory: folder)
        #expect(Self.errorText { _ = try store.load(nameOrPath: "host") }?.contains("vernier device --measure") == true)
        // A name neither stored nor built in; the message lists the built-ins.
        let unknown = Self.errorText { _ = try store.load(nameOrPath: "edgebox") }
        #expect(unknown?.contains("no device profile named edgebox") == true && unknown?.contains("rpi4") == true)
        #expect(Self.errorText { _ = try store.load(nameOrPath: folder + "/missing.json") }?
            .contains("cannot read device profile \(folder)/missing.json") == true)
    }

    @Test func listShowsEveryProfileAndTheOnesThatDoNotLoad() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = DeviceProfileStore(directory: folder)
        #expect(DeviceProfileStore(directory: folder + "/absent").list().isEmpty)
        try store.save(Self.sample(), to: store.hostProfilePath)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/broken.json"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        let entries = store.list()
        #expect(entries.map(\.name) == ["broken", "host"])
        #expect(entries[0].profile == nil && entries[0].problem != nil)
        #expect(entries[1].profile?.cpu == "Test CPU 9000")
    }

    @Test func aHostProfileFromAnotherMachineIsNotUsable() {
        let profile = Self.sample(cpu: "Test CPU 9000", cores: 4)
        #expect(DeviceProfileStore.isUsable(profile, forHostCPU: "Test CPU 9000", cores: 4))
        #expect(!DeviceProfileStore.isUsable(profile, forHostCPU: "Other CPU", cores: 4))
        #expect(!DeviceProfileStore.isUsable(profile, forHostCPU: "Test CPU 9000", cores: 8))
        #expect(!DeviceProfileStore.isUsable(Self.sample(source: .specDerived), forHostCPU: "Test CPU 9000", cores: 4),
                "a spec sheet is not a measurement of this machine")
    }

    @Test func hostProfileMeasuresOnlyWhenTheStoredOneDoesNotFit() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = DeviceProfileStore(directory: folder)
        let here = HostInfo(cpu: "Test CPU 9000", cores: 4, isa: [], caches: .init())
        var measurements = 0
        let measure = { () -> DeviceProfile in
            measurements += 1
            return Self.sample()
        }

        let first = try store.hostProfile(for: here, measure: measure)
        #expect(first.measuredNow && first.path == store.hostProfilePath && measurements == 1)
        #expect(try store.load(nameOrPath: "host") == Self.sample(), "saved")

        let second = try store.hostProfile(for: here, measure: measure)
        #expect(!second.measuredNow && second.path == store.hostProfilePath && measurements == 1, "stored one reused")

        let elsewhere = HostInfo(cpu: "Other CPU", cores: 4, isa: [], caches: .init())
        let third = try store.hostProfile(for: elsewhere, measure: measure)
        #expect(third.measuredNow && measurements == 2, "a profile of another CPU is measured again")

        try Data("{ corrupt".utf8).write(to: URL(fileURLWithPath: store.hostProfilePath))
        let fourth = try store.hostProfile(for: here, measure: measure)
        #expect(fourth.measuredNow && measurements == 3, "a corrupt file is measured again and replaced")
        #expect(try store.load(nameOrPath: "host") == Self.sample())
    }

    @Test func hostProfileStaysInMemoryWhenTheFolderIsNotWritable() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A folder under a regular file cannot be created, even by root.
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/file"))
        let store = DeviceProfileStore(directory: folder + "/file/devices")
        let here = HostInfo(cpu: "Test CPU 9000", cores: 4, isa: [], caches: .init())
        let result = try store.hostProfile(for: here) { Self.sample() }
        #expect(result.measuredNow && result.path == nil && result.profile == Self.sample())
        #expect(throws: DeviceStoreError.self) { try store.save(Self.sample(), to: store.hostProfilePath) }
    }

    @Test func measurementErrorsReachTheCaller() throws {
        struct Failed: Error {}
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = DeviceProfileStore(directory: folder)
        let here = HostInfo(cpu: "Test CPU 9000", cores: 4, isa: [], caches: .init())
        #expect(throws: Failed.self) { try store.hostProfile(for: here) { throw Failed() } }
    }
}
