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

    private struct Job {
        let count: Int
        let body: (Range<Int>) -> Void
    }
}
