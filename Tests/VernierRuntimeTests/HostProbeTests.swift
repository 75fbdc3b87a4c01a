import Foundation
import Testing
@testable import VernierCost
@testable import VernierRuntime

/// The host measurement: a quick real run (loose sanity ranges only: the machine may be
/// busy), the int8 GEMM it times, and the parsing of /proc/cpuinfo and sysfs caches.
@Suite(.serialized) struct HostProbeTests {
    @Test func aQuickMeasurementGivesPositiveFiniteFigures() throws {
        ThreadPool.setThreadCount(2)
        defer { ThreadPool.setThreadCount(ProcessInfo.processInfo.activeProcessorCount) }
        var lines: [String] = []
        let profile = try HostProbe.measure(threadCounts: [1], secondsPerPoint: 0.02) { lines.append($0) }
        #expect(ThreadPool.threadCount == 2, "the thread count in force before is restored")

        #expect(profile.name == "host" && profile.source == .measured && profile.schema == DeviceProfile.currentSchema)
        #expect(profile.cores == ProcessInfo.processInfo.activeProcessorCount)
        let stamp = try #require(profile.measuredAt)
        #expect(ISO8601DateFormatter().date(from: stamp) != nil && stamp.hasSuffix("Z"), "ISO 8601 in UTC: \(stamp)")
        #expect(profile.roofs.map(\.threads) == [1])
        let roof = try #require(profile.roofs.first)
        #expect(roof.fp32Gflops.isFinite && roof.fp32Gflops > 0.5 && roof.fp32Gflops < 10_000, "\(roof)")
        #expect(roof.bandwidthGBps.isFinite && roof.bandwidthGBps > 0.1 && roof.bandwidthGBps < 10_000, "\(roof)")
        if let int8 = roof.int8Gops { #expect(int8.isFinite && int8 > 0.5 && int8 < 100_000, "\(roof)") }
        #expect(lines.contains { $0.hasPrefix("fp32 GEMM") } && lines.contains { $0.hasPrefix("copy of") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("fp32 fused multiply-adds") }, "\(lines)")
        // What the probe produces must be a file the store accepts.
        #expect(try DeviceProfile.decode(profile.jsonData(), path: "probe.json") == profile)
    }

    /// The multiply-add loop computes what it claims: each accumulator converges to
    /// a / (1 - m) = 1e-4, 96 lanes in all at 8 lanes, 192 at 16.
    @Test func theMultiplyAddLoopConvergesToItsFixedPoint() {
        #expect(abs(HostProbe.multiplyAddLoop(SIMD8<Float>.self, 200, seed: 3) - 96 * 1e-4) < 1e-6)
        #expect(abs(HostProbe.multiplyAddLoop(SIMD16<Float>.self, 200, seed: 3) - 192 * 1e-4) < 2e-6)
        // A rate, not a speed test: debug builds run it at about 0.1 GFLOP/s, and under
        // the parallel test run it read 0.0097 once.
        for wide in [false, true] {
            let rate = HostProbe.fusedMultiplyAddPeak(threads: 1, seconds: 0.01, wide: wide)
            #expect(rate.isFinite && rate > 0)
        }
    }

    @Test func badArgumentsAreRefusedBeforeMeasuring() {
        #expect(throws: HostProbeError.self) { try HostProbe.measure(threadCounts: []) }
        #expect(throws: HostProbeError.self) { try HostProbe.measure(threadCounts: [0, 1]) }
        #expect(throws: HostProbeError.self) { try HostProbe.measure(threadCounts: [1], secondsPerPoint: 0) }
        #expect(throws: HostProbeError.self) { try HostProbe.measure(threadCounts: [1], secondsPerPoint: .nan) }
    }

    @Test func defaultThreadCounts() {
        #expect(HostProbe.defaultThreadCounts(cores: 1) == [1])
        #expect(HostProbe.defaultThreadCounts(cores: 2) == [1, 2])
        #expect(HostProbe.defaultThreadCounts(cores: 8) == Array(1...8))
        #expect(HostProbe.defaultThreadCounts(cores: 12) == [1, 2, 4, 8, 12])
        #expect(HostProbe.defaultThreadCounts(cores: 64) == [1, 2, 4, 8, 16, 32, 64])
    }

    @Test func copyBuffersOutgrowTheLastLevelCache() {
        let mib = 1 << 20, gib = UInt64(1 << 30)
        #expect(HostProbe.copyBytes(l3Bytes: 32 * mib, physicalMemory: 24 * gib) == 256 * mib)
        #expect(HostProbe.copyBytes(l3Bytes: 256 * mib, physicalMemory: 64 * gib) == 1024 * mib, "4 x L3")
        #expect(HostProbe.copyBytes(l3Bytes: nil, physicalMemory: 24 * gib) == 256 * mib)
        #expect(HostProbe.copyBytes(l3Bytes: 32 * mib, physicalMemory: gib) == 128 * mib, "an eighth of memory at most")
        #expect(HostProbe.copyBytes(l3Bytes: Int.max, physicalMemory: gib) == 128 * mib, "an absurd cache size does not overflow")
    }

    @Test func int8MatMulComputesTheProduct() throws {
        // Small operands: every u8 x s8 pair sum fits in int16, so the result is exact
        // on CPUs without VNNI as well.
        let (m, k, n) = (3, 5, 4)
        let a: [UInt8] = (0..<(m * k)).map { UInt8(($0 * 7) % 11) }
        let b: [Int8] = (0..<(k * n)).map { Int8(($0 * 5) % 9 - 4) }
        var c = [Int32](repeating: -1, count: m * n)
        try b.withUnsafeBytes { bBytes in
            let weights = try #require(bBytes.baseAddress)
            let plan = try Int8MatMulPlan(m: m, k: k, n: n, weights: weights)
            #expect(plan.macs == m * n * k)
            try a.withUnsafeBytes { aBytes in
                try c.withUnsafeMutableBytes { cBytes in
                    try plan.run(a: try #require(aBytes.baseAddress), c: try #require(cBytes.baseAddress))
                }
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                let expected = (0..<k).reduce(Int32(0)) { $0 + Int32(a[i * k + $1]) * Int32(b[$1 * n + j]) }
                #expect(c[i * n + j] == expected, "c[\(i), \(j)]")
            }
        }
    }

    @Test func otherProcessesShareOfTheMachineComesFromProcStat() throws {
        let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
        // user nice system idle iowait irq softirq steal: 600 busy ticks (steal included), 400 idle.
        let stat = "cpu  400 0 100 350 50 20 30 50 0 0\ncpu0 200 0 50 175 25 10 15 25 0 0\n"
        let time = try #require(HostProbe.CPUActivity.machineTime(stat: stat))
        #expect(abs(time.busy - 600 / hertz) < 1e-9 && abs(time.total - 1000 / hertz) < 1e-9)
        #expect(HostProbe.CPUActivity.machineTime(stat: "intr 1 2 3\n") == nil)

        let before = HostProbe.CPUActivity(machineBusy: 10, machineTotal: 100, ownBusy: 1)
        // 2 s of machine time passed, 1.5 s busy, 0.5 s of it ours: others took half.
        let after = HostProbe.CPUActivity(machineBusy: 11.5, machineTotal: 102, ownBusy: 1.5)
        #expect(after.othersShare(since: before) == 0.5)
        let instant = HostProbe.CPUActivity(machineBusy: 10.1, machineTotal: 100.1, ownBusy: 1)
        #expect(instant.othersShare(since: before) == nil, "too short to tell")
        #expect(HostProbe.CPUActivity.now() != nil, "readable on Linux")
    }

    // MARK: - /proc/cpuinfo

    static let x86CPUInfo = """
        processor\t: 0
        vendor_id\t: AuthenticAMD
        model name\t: AMD EPYC 7B13 64-Core Processor
        flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512bw avx512_vnni sha_ni
        bogomips\t: 4900.00

        processor\t: 1
        model name\t: Another Name Ignored
        flags\t\t: fpu amx_tile
        """

    static let armCPUInfo = """
        processor\t: 0
        BogoMIPS\t: 108.00
        Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm asimddp i8mm bf16
        CPU implementer\t: 0x41

        Model\t\t: Raspberry Pi 5 Model B Rev 1.0
        """

    @Test func cpuModelComesFromTheFirstModelNameLine() {
        #expect(HostInfo.cpuModel(cpuinfo: Self.x86CPUInfo) == "AMD EPYC 7B13 64-Core Processor")
        #expect(HostInfo.cpuModel(cpuinfo: Self.armCPUInfo) == "Raspberry Pi 5 Model B Rev 1.0")
        #expect(HostInfo.cpuModel(cpuinfo: "") == nil)
        #expect(HostInfo.cpuModel(cpuinfo: "model name\t:\n") == nil, "an empty name is no name")
    }

    @Test func isaKeepsTheRelevantFlagsInAFixedOrder() {
        #expect(HostInfo.isa(cpuinfo: Self.x86CPUInfo)
                == ["sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2", "avx512f", "avx512bw", "avx512_vnni"],
                "sha_ni, fpu and the second processor's flags are left out")
        #expect(HostInfo.isa(cpuinfo: Self.armCPUInfo) == ["asimd", "asimdhp", "asimddp", "fphp", "i8mm", "bf16"])
        #expect(HostInfo.isa(cpuinfo: "processor : 0\n").isEmpty)
    }

    @Test func thisMachineIsDescribedWithoutFailing() {
        let host = HostInfo.current()
        #expect(!host.cpu.isEmpty && host.cores >= 1)
        let nowhere = HostInfo.current(cpuinfoPath: "/nonexistent/cpuinfo", cacheFolder: "/nonexistent/cache")
        #expect(nowhere.cpu == HostInfo.unknownCPU && nowhere.isa.isEmpty && nowhere.caches == DeviceProfile.Caches())
    }

    // MARK: - sysfs caches

    @Test func cachesAreReadFromASysfsFolder() throws {
        let root = NSTemporaryDirectory() + "vernier-sysfs-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        func cache(_ index: String, _ files: [String: String]) throws {
            let folder = root + "/" + index
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (name, text) in files { try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: folder + "/" + name)) }
        }
        try cache("index0", ["level": "1", "type": "Data", "size": "48K"])
        try cache("index1", ["level": "1", "type": "Instruction", "size": "32K"])
        try cache("index2", ["level": "2", "type": "Unified", "size": "2048K"])
        try cache("index3", ["level": "3", "type": "Unified", "size": "32M"])
        try cache("index4", ["level": "4", "type": "Unified"])            // no size: skipped
        try cache("power", ["level": "1", "type": "Data", "size": "1K"])  // not an index folder
        #expect(HostInfo.caches(cacheFolder: root)
                == DeviceProfile.Caches(l1dBytes: 48 * 1024, l2Bytes: 2048 * 1024, l3Bytes: 32 * 1024 * 1024))

        try FileManager.default.removeItem(atPath: root + "/index3")
        try cache("index2", ["level": "two", "type": "Unified", "size": "2048K"])   // unreadable level
        #expect(HostInfo.caches(cacheFolder: root) == DeviceProfile.Caches(l1dBytes: 48 * 1024))
        #expect(HostInfo.caches(cacheFolder: root + "/absent") == DeviceProfile.Caches())
    }

    @Test func cacheSizesWithBinarySuffixes() {
        #expect(HostInfo.cacheBytes("32K") == 32768)
        #expect(HostInfo.cacheBytes("1M") == 1 << 20)
        #expect(HostInfo.cacheBytes("2G") == 2 << 30)
        #expect(HostInfo.cacheBytes("512") == 512)
        #expect(HostInfo.cacheBytes(" 64k ") == 65536)
        for bad in ["", "K", "-1K", "0K", "12Q", "ß", "99999999999999999999K", "9223372036854775807K"] {
            #expect(HostInfo.cacheBytes(bad) == nil, "\(bad)")
        }
    }
}
