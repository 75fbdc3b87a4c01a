import CDNNL

/// The executor's thread pool: the process's OpenMP team, which oneDNN (Debian's build
/// threads with GNU OpenMP) uses too. Sharing it means one set of worker threads sized
/// once by `--threads`; our kernels and oneDNN's never run two pools on the same cores.
/// Calls must not nest: a kernel body never calls `parallelFor` again.
public enum ThreadPool {
    /// Sets the number of threads every later parallel region (ours and oneDNN's) uses.
    public static func setThreadCount(_ count: Int) {
        omp_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads a parallel region uses now.
    public static var threadCount: Int { Int(omp_get_max_threads()) }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per thread, and
    /// returns when all are done. Work under `minimumPerThread` items per thread runs
    /// on the calling thread alone (a parallel region costs a few microseconds).
    public static func parallelFor(_ count: Int, minimumPerThread: Int = 1,
                                   _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let threads = min(threadCount, max(1, count / max(1, minimumPerThread)))
        if threads <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var job = Job(count: count, body: escapable)
            withUnsafeMutablePointer(to: &job) { pointer in
                GOMP_parallel({ raw in
                    guard let raw else { return }
                    let job = raw.assumingMemoryBound(to: Job.self).pointee
                    let thread = Int(omp_get_thread_num())
                    let threads = Int(omp_get_num_threads())
                    let start = job.count * thread / threads
                    let end = job.count * (thread + 1) / threads
                    if start < end { job.body(start..<end) }
                }, pointer, UInt32(threads), 0)
            }
        }
    }

    /// Pins each thread of the team (the caller is thread 0) to its own core among
    /// those the process may use, so threads do not migrate between timed runs. Returns
    /// the core of each thread, or nil when the OS refused (containers may forbid it).
    @discardableResult
    public static func pinThreads() -> [Int]? {
        var allowed = CPUMask()
        guard allowed.withPointer({ sched_getaffinity(0, CPUMask.byteCount, $0) }) == 0 else { return nil }
        let cores = allowed.cores
        guard !cores.isEmpty else { return nil }
        let chosen = (0..<threadCount).map { cores[$0 % cores.count] }
        // One status per thread: each writes only its own slot.
        let status = UnsafeMutableBufferPointer<Int32>.allocate(capacity: chosen.count)
        status.initialize(repeating: -1)
        defer { status.deallocate() }
        parallelFor(chosen.count) { range in
            for thread in range {
                var mask = CPUMask()
                mask.insert(chosen[thread])
                status[thread] = mask.withPointer { sched_setaffinity(0, CPUMask.byteCount, $0) }
            }
        }
        return status.allSatisfy { $0 == 0 } ? chosen : nil
    }

    private struct Job {
        let count: Int
        let body: (Range<Int>) -> Void
    }
}

/// A CPU set as the kernel's affinity calls take it (glibc's `cpu_set_t`: 1,024 bits),
/// which Swift's Glibc module does not import.
struct CPUMask {
    static let byteCount = 128
    private var words = [UInt64](repeating: 0, count: byteCount / 8)

    mutating func insert(_ core: Int) {
        guard core >= 0, core < 8 * Self.byteCount else { return }
        words[core / 64] |= 1 << UInt64(core % 64)
    }

    var cores: [Int] { (0..<(8 * Self.byteCount)).filter { words[$0 / 64] & (1 << UInt64($0 % 64)) != 0 } }

    mutating func withPointer<R>(_ body: (UnsafeMutableRawPointer) -> R) -> R {
        words.withUnsafeMutableBytes { body($0.baseAddress!) }
    }
}

// glibc's affinity calls; `pid` 0 is the calling thread.
@_silgen_name("sched_getaffinity")
private func sched_getaffinity(_ pid: Int32, _ size: Int, _ mask: UnsafeMutableRawPointer) -> Int32
@_silgen_name("sched_setaffinity")
private func sched_setaffinity(_ pid: Int32, _ size: Int, _ mask: UnsafeMutableRawPointer) -> Int32
