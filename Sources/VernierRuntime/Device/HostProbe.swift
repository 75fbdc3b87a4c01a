import Foundation
import VernierCost

/// Measures the machine Vernier runs on for the roofline: the peak fp32 rate of fused
/// multiply-adds (or of a large oneDNN GEMM, if faster), the int8 rate of a large GEMM
/// and the memory bandwidth of a large copy, at each thread count,
/// on the same OpenMP team the executor uses. `vernier device --measure` runs it once
/// and stores the result (`DeviceProfileStore`).
public enum HostProbe {
    /// Measures this machine and returns its profile (`name` "host", `source` measured).
    ///
    /// - Parameters:
    ///   - threadCounts: the thread counts to measure; default `defaultThreadCounts(cores:)`.
    ///   - secondsPerPoint: how long each figure (fp32, int8, bandwidth) is measured at one
    ///     thread count, after its warm-up; the best of several timed batches is kept.
    ///     The default takes about 2 s in all on a 2-core machine.
    ///   - progress: called with one line per figure as it is measured.
    /// - Throws: `HostProbeError` for bad arguments, `DNNLError` when oneDNN refuses the
    ///   fp32 GEMM. An int8 GEMM that oneDNN cannot run fast leaves `int8Gops` nil.
    public static func measure(threadCounts: [Int]? = nil, secondsPerPoint: Double = 0.25,
                               progress: ((String) -> Void)? = nil) throws -> DeviceProfile {
        let host = HostInfo.current()
        let counts = Array(Set(threadCounts ?? defaultThreadCounts(cores: host.cores))).sorted()
        guard let first = counts.first, let last = counts.last, first >= 1, last <= maxThreads else {
            throw HostProbeError.badThreadCounts(threadCounts ?? [])
        }
        guard secondsPerPoint.isFinite, secondsPerPoint > 0 else { throw HostProbeError.badDuration(secondsPerPoint) }
        let measuredAt = isoTimestamp(Date())
        let activityBefore = CPUActivity.now()
        let previous = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(previous) }
        let say = { (line: String) in progress?(line) }

        var compute: [(fp32: GemmRate, int8: GemmRate?)] = []
        var fp32Operands: GemmOperands?, int8Operands: GemmOperands?
        var int8Available = true
        for threads in counts {
            ThreadPool.setThreadCount(threads)
            let gemm = try gemmPeak(integer: false, seconds: secondsPerPoint, operands: &fp32Operands)
            say("fp32 GEMM \(gemm.size)^3, \(threadsText(threads)): \(String(format: "%.1f", gemm.rate)) GFLOP/s (\(gemm.implementation))")
            let fma = fusedMultiplyAddPeak(threads: threads, seconds: secondsPerPoint, wide: host.isa.contains("avx512f"))
            say("fp32 fused multiply-adds, \(threadsText(threads)): \(String(format: "%.1f", fma)) GFLOP/s")
            // The roof is the machine's, not one kernel's: a GEMM reached 84% of the
            // multiply-add rate here, and some convolutions ran faster than that GEMM.
            var fp32 = gemm
            fp32.rate = max(gemm.rate, fma)
            var int8: GemmRate?
            if int8Available {
                do {
                    int8 = try gemmPeak(integer: true, seconds: secondsPerPoint, operands: &int8Operands)
                } catch {
                    // Not at one count, not at any: the kernel choice does not depend on threads.
                    int8Available = false
                    say("int8 GEMM: not measured (\(error))")
                }
            }
            if let int8 {
                say("int8 GEMM \(int8.size)^3, \(threadsText(threads)): \(String(format: "%.1f", int8.rate)) GOP/s (\(int8.implementation))")
            }
            compute.append((fp32, int8))
        }

        let bytes = copyBytes(l3Bytes: host.caches.l3Bytes, physicalMemory: ProcessInfo.processInfo.physicalMemory)
        let bandwidths = copyBandwidths(threadCounts: counts, bytes: bytes, seconds: secondsPerPoint) { threads, gbps in
            say("copy of \(bytes >> 20) MiB, \(threadsText(threads)): \(String(format: "%.1f", gbps)) GB/s (read + written)")
        }

        // Other processes lower every figure; say so rather than store low roofs silently.
        var loadNote = ""
        if let before = activityBefore, let after = CPUActivity.now(),
           let others = after.othersShare(since: before), others >= 0.1 {
            let percent = Int((others * 100).rounded())
            say("warning: other processes used \(percent)% of the CPU time while measuring; "
                + "the figures are low, measure again on a quiet machine")
            loadNote = " Other processes used \(percent)% of the CPU time while measuring."
        }

        var roofs: [DeviceProfile.Roof] = []
        for (i, threads) in counts.enumerated() {
            // Rounded: run-to-run noise is far above 0.1 GFLOP/s and 0.01 GB/s.
            let roof = DeviceProfile.Roof(threads: threads, fp32Gflops: rounded(compute[i].fp32.rate, 1),
                                          int8Gops: compute[i].int8.map { rounded($0.rate, 1) },
                                          bandwidthGBps: rounded(bandwidths[i], 2))
            guard roof.fp32Gflops.isFinite, roof.fp32Gflops > 0, roof.bandwidthGBps.isFinite, roof.bandwidthGBps > 0 else {
                throw HostProbeError.implausible("a figure at \(threadsText(threads)) is not a positive number: \(roof)")
            }
            roofs.append(roof)
        }
        let gemms = compute.first.map { first in
            "fp32 from a loop of independent fused multiply-adds (\(host.isa.contains("avx512f") ? 16 : 8)-lane, on every thread; oneDNN's "
                + "\(first.fp32.size)^3 GEMM, \(first.fp32.implementation), when faster)"
                + (first.int8.map { ", int8 from a \($0.size)^3 u8 x s8 -> s32 GEMM (\($0.implementation))" } ?? ", int8 not measured")
        } ?? ""
        let notes = "Measured by vernier device --measure with oneDNN \(DNNLEngine.version): \(gemms), best of timed batches "
            + "over \(secondsPerPoint) s per figure; bandwidth from a \(bytes >> 20) MiB copy, bytes read + written."
            + loadNote
        return DeviceProfile(name: DeviceProfileStore.hostName, cpu: host.cpu, source: .measured, measuredAt: measuredAt,
                             cores: host.cores, isa: host.isa, caches: host.caches, roofs: roofs, notes: notes)
    }

    /// The most threads one figure may be measured with (far beyond any CPU today).
    public static let maxThreads = 4096

    /// Every count from 1 to `cores` up to 8 cores; beyond, the powers of two below
    /// `cores` and `cores` itself (1, 2, 4, 8, 16, 24 on 24 cores).
    public static func defaultThreadCounts(cores: Int) -> [Int] {
        let cores = max(1, cores)
        if cores <= 8 { return Array(1...cores) }
        var counts: [Int] = []
        var n = 1
        while n < cores {
            counts.append(n)
            n *= 2
        }
        return counts + [cores]
    }

    /// The size of each of the two copy buffers: four times the last-level cache, at
    /// least 256 MiB (so no cache holds a meaningful part of it), at most an eighth of
    /// physical memory (both buffers together a quarter), in whole MiB.
    public static func copyBytes(l3Bytes: Int?, physicalMemory: UInt64) -> Int {
        let mib = 1 << 20
        let wanted = max(256 * mib, 4 * min(l3Bytes ?? 0, Int.max / 8))
        let cap = Int(clamping: physicalMemory / 8)
        return max(mib, min(wanted, cap) / mib * mib)
    }

    /// `2025-01-31T09:41:00Z`.
    static func isoTimestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func rounded(_ value: Double, _ decimals: Int) -> Double {
        let scale = pow(10, Double(decimals))
        return (value * scale).rounded() / scale
    }

    static func threadsText(_ n: Int) -> String { n == 1 ? "1 thread" : "\(n) threads" }

    // MARK: - Timing

    /// CPU time of the whole machine (Linux `/proc/stat`) and of this process, to tell
    /// how much of the machine other processes took during the measurement.
    struct CPUActivity {
        /// Seconds all cores spent busy (user, system, interrupts, and time a hypervisor
        /// stole) and in total, summed over the cores.
        var machineBusy: Double
        var machineTotal: Double
        /// Seconds this process ran (user + system, all threads).
        var ownBusy: Double

        static func now(statPath: String = "/proc/stat") -> CPUActivity? {
            guard let text = try? String(contentsOfFile: statPath, encoding: .utf8),
                  let (busy, total) = machineTime(stat: text) else { return nil }
            var usage = rusage()
            guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
            let own = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            return CPUActivity(machineBusy: busy, machineTotal: total, ownBusy: own)
        }

        /// Busy and total seconds from the aggregate `cpu` line of `/proc/stat`
        /// (user nice system idle iowait irq softirq steal, in clock ticks).
        static func machineTime(stat: String) -> (busy: Double, total: Double)? {
            guard let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
            let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            guard ticks.count >= 8 else { return nil }
            let idle = ticks[3] + ticks[4]
            let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
            let hertz = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
            return (busy / hertz, (busy + idle) / hertz)
        }

        /// The share of the machine's CPU time since `before` that went to other
        /// processes (0...1); nil when too little time passed to tell.
        func othersShare(since before: CPUActivity) -> Double? {
            let total = machineTotal - before.machineTotal
            guard total > 0.2 else { return nil }
            let others = (machineBusy - before.machineBusy) - (ownBusy - before.ownBusy)
            return min(1, max(0, others / total))
        }
    }

    /// Seconds `body` takes, on the monotonic clock.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The best rate (`work` units per second of one run of `body`) over timed batches:
    /// each batch runs `body` enough times to last about a fifth of `seconds` (one run
    /// takes about `runSeconds`), and batches repeat until `seconds` have passed, at
    /// least three of them. The best batch is the one least disturbed by other work on
    /// the machine, which is what a peak is.
    static func bestRate(work: Double, seconds: Double, runSeconds: Double, _ body: () throws -> Void) rethrows -> Double {
        let perBatch = max(1, Int(seconds / 5 / max(runSeconds, 1e-6)))
        var best = 0.0, elapsed = 0.0, batches = 0
        while batches < 3 || elapsed < seconds {
            let t = try Self.seconds { for _ in 0..<perBatch { try body() } }
            if t > 0 { best = max(best, work * Double(perBatch) / t) }
            elapsed += t
            batches += 1
        }
        return best
    }

    // MARK: - Multiply-add peak

    /// Peak fp32 rate (GFLOP/s) of independent fused multiply-adds on `threads`
    /// threads, 16 lanes wide when the CPU has AVX-512 (else 8): twelve accumulators
    /// per thread (more than FMA latency x FMA ports, so the ports never wait), 2 FLOPs
    /// per lane. What the cores can do, the compute roof of the roofline, as the
    /// built-in devices' roofs (cores x clock x FLOPs per cycle).
    static func fusedMultiplyAddPeak(threads: Int, seconds: Double, wide: Bool) -> Double {
        wide ? fusedMultiplyAddPeak(SIMD16<Float>.self, threads: threads, seconds: seconds)
             : fusedMultiplyAddPeak(SIMD8<Float>.self, threads: threads, seconds: seconds)
    }

    static func fusedMultiplyAddPeak<V: SIMD>(_: V.Type, threads: Int, seconds: Double) -> Double where V.Scalar == Float {
        let iterations = 50_000
        let flops = Double(threads * iterations * 12 * V.scalarCount * 2)
        var sink: Float = 0
        let body = {
            var partial = [Float](repeating: 0, count: threads)
            partial.withUnsafeMutableBufferPointer { out in
                ThreadPool.parallelFor(threads) { range in
                    for t in range { out[t] = multiplyAddLoop(V.self, iterations, seed: Float(t)) }
                }
            }
            sink += partial.reduce(0, +)
        }
        body()
        let run = Self.seconds(body)
        let rate = bestRate(work: flops, seconds: seconds, runSeconds: run, body)
        // Keeps the loops' results alive (never true: the accumulators converge to 1e-4).
        if sink.isNaN { print(sink) }
        return rate / 1e9
    }

    /// `iterations` rounds of 12 independent c = c * m + a on the lanes of `V`;
    /// converges, so no infinities or denormals slow it.
    @inline(never)
    static func multiplyAddLoop<V: SIMD>(_: V.Type, _ iterations: Int, seed: Float) -> Float where V.Scalar == Float {
        let m = V(repeating: 0.5), a = V(repeating: 5e-5)
        var c = (0..<12).map { V(repeating: seed + Float($0)) }
        var (c0, c1, c2, c3, c4, c5) = (c[0], c[1], c[2], c[3], c[4], c[5])
        var (c6, c7, c8, c9, c10, c11) = (c[6], c[7], c[8], c[9], c[10], c[11])
        for _ in 0..<iterations {
            c0 = a.addingProduct(c0, m); c1 = a.addingProduct(c1, m); c2 = a.addingProduct(c2, m)
            c3 = a.addingProduct(c3, m); c4 = a.addingProduct(c4, m); c5 = a.addingProduct(c5, m)
            c6 = a.addingProduct(c6, m); c7 = a.addingProduct(c7, m); c8 = a.addingProduct(c8, m)
            c9 = a.addingProduct(c9, m); c10 = a.addingProduct(c10, m); c11 = a.addingProduct(c11, m)
        }
        c = [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
        return c.reduce(V(repeating: 0), +).sum()
    }

    // MARK: - GEMM peaks

    /// A measured GEMM rate (G per second) and what reached it.
    struct GemmRate {
        var rate: Double
        var size: Int
        var implementation: String
    }

    /// Square GEMM sizes tried in order: the first whose run takes under a third of the
    /// measuring time is kept, so a slow machine measures a smaller (still compute-bound:
    /// N/6 FLOPs per byte of fp32 operands) product instead of running for long.
    static let gemmSizes = [1024, 512, 256]

    /// Square operands of one GEMM size, kept across thread counts (filling them is not
    /// what is measured). Small exact values: no denormals, no int32 overflow.
    struct GemmOperands {
        let size: Int
        let integer: Bool
        let a: Tensor, b: Tensor, c: Tensor

        init(size: Int, integer: Bool) {
            self.size = size
            self.integer = integer
            let shape = [size, size]
            if integer {
                a = Tensor(elementType: .uint8, shape: shape)
                b = Tensor(elementType: .int8, shape: shape)
                c = Tensor(elementType: .int32, shape: shape)
                HostProbe.fillRepeating(a, with: (0..<61).map { UInt8($0 % 16) })
                HostProbe.fillRepeating(b, with: (0..<59).map { Int8($0 % 15 - 7) })
            } else {
                a = Tensor(shape: shape)
                b = Tensor(shape: shape)
                c = Tensor(shape: shape)
                HostProbe.fillRepeating(a, with: (0..<61).map { Float($0 % 17) * 0.0625 - 0.5 })
                HostProbe.fillRepeating(b, with: (0..<59).map { Float($0 % 13) * 0.0625 - 0.375 })
            }
        }
    }

    /// Fills `tensor` with `pattern` repeated, by doubling copies (fast in debug builds too).
    static func fillRepeating<T>(_ tensor: Tensor, with pattern: [T]) {
        let total = tensor.byteCount, base = tensor.rawPointer
        var filled = pattern.withUnsafeBytes { source -> Int in
            guard let from = source.baseAddress else { return 0 }
            let n = min(total, source.count)
            base.copyMemory(from: from, byteCount: n)
            return n
        }
        guard filled > 0 else { return }
        while filled < total {
            let n = min(filled, total - filled)
            (base + filled).copyMemory(from: base, byteCount: n)
            filled += n
        }
    }

    /// Peak rate (G per second) of square GEMMs on oneDNN at the current thread count:
    /// fp32 (weights pre-packed, as the executor's MatMul runs) or u8 x s8 -> s32.
    /// `operands` carries the size chosen at an earlier thread count; it only shrinks.
    /// Throws `noFastKernel` when oneDNN has only its reference int8 matmul here, whose
    /// rate says nothing about the hardware.
    static func gemmPeak(integer: Bool, seconds: Double, operands: inout GemmOperands?) throws -> GemmRate {
        for size in gemmSizes where size <= (operands?.size ?? Int.max) {
            if operands?.size != size { operands = GemmOperands(size: size, integer: integer) }
            guard let ops = operands else { continue }
            let implementation: String, macs: Int, runOnce: () throws -> Void
            if integer {
                let plan = try Int8MatMulPlan(m: size, k: size, n: size, weights: ops.b.rawPointer)
                guard !plan.implementation.hasPrefix("ref") else {
                    throw HostProbeError.noFastKernel("oneDNN has only its reference int8 matmul (\(plan.implementation)) on this CPU")
                }
                (implementation, macs) = (plan.implementation, plan.macs)
                runOnce = { try plan.run(a: ops.a.rawPointer, c: ops.c.rawPointer) }
            } else {
                let plan = try MatMulPlan(a: [size, size], b: [size, size], constantB: ops.b)
                (implementation, macs) = (plan.implementation, plan.macs)
                runOnce = { try plan.run(a: ops.a, output: ops.c) }
            }
            try runOnce()   // warm-up: first-touch page faults, oneDNN's first-run set-up
            let run = try Self.seconds(runOnce)
            if run > seconds / 3, size != gemmSizes.last { continue }
            let rate = try bestRate(work: 2 * Double(macs), seconds: seconds, runSeconds: run, runOnce)
            return GemmRate(rate: rate / 1e9, size: size, implementation: implementation)
        }
        throw HostProbeError.implausible("no GEMM size was measured")
    }

    // MARK: - Memory bandwidth

    /// GB/s of the best copy of `bytes` at each thread count; the buffers live only
    /// for this call.
    static func copyBandwidths(threadCounts: [Int], bytes: Int, seconds: Double,
                               each: (Int, Double) -> Void) -> [Double] {
        let buffers = CopyBuffers(bytes: bytes)
        return threadCounts.map { threads in
            ThreadPool.setThreadCount(threads)
            let gbps = buffers.bestBandwidth(seconds: seconds)
            each(threads, gbps)
            return gbps
        }
    }

    /// Two page-aligned buffers for the copy, written once so every page is mapped
    /// before timing.
    final class CopyBuffers {
        let bytes: Int
        let source: UnsafeMutableRawPointer
        let destination: UnsafeMutableRawPointer
        /// The unit the threads split the copy by (each thread copies one contiguous run).
        static let block = 1 << 16

        init(bytes: Int) {
            self.bytes = max(Self.block, bytes / Self.block * Self.block)
            source = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 4096)
            destination = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 4096)
            // First touch on the threads that will copy, in the same split.
            let (source, destination) = (self.source, self.destination)
            ThreadPool.parallelFor(self.bytes / Self.block) { range in
                let offset = range.lowerBound * Self.block, length = range.count * Self.block
                memset(source + offset, 0x5A, length)
                memset(destination + offset, 0, length)
            }
        }

        /// Copies the source over the destination on the current thread team.
        func copy() {
            let (source, destination) = (self.source, self.destination)
            ThreadPool.parallelFor(bytes / Self.block) { range in
                let offset = range.lowerBound * Self.block
                memcpy(destination + offset, source + offset, range.count * Self.block)
            }
        }

        /// GB/s (1e9 bytes per second, bytes read + bytes written) of the best copy.
        func bestBandwidth(seconds: Double) -> Double {
            copy()
            let run = HostProbe.seconds { copy() }
            return HostProbe.bestRate(work: 2 * Double(bytes), seconds: seconds, runSeconds: run) { copy() } / 1e9
        }

        deinit {
            source.deallocate()
            destination.deallocate()
        }
    }
}

/// Why the host measurement could not run or gave no usable figure.
public enum HostProbeError: Error, Equatable, CustomStringConvertible {
    case badThreadCounts([Int])
    case badDuration(Double)
    case noFastKernel(String)
    case implausible(String)

    public var description: String {
        switch self {
        case .badThreadCounts(let counts):
            return "thread counts \(counts) are not usable: give one or more counts from 1 to \(HostProbe.maxThreads)"
        case .badDuration(let seconds):
            return "the time per measurement must be a positive number of seconds, got \(seconds)"
        case .noFastKernel(let message): return message
        case .implausible(let message): return "host measurement failed: \(message)"
        }
    }
}
