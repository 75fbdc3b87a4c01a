import Foundation
import Testing

/// Runs the built `vernier` binary as a subprocess. The test target does not depend on the
/// executable, so the binary comes from `swift build --build-tests` (which builds it too).
enum CLI {
    /// The repository root: three levels above this file (Tests/VernierCLITests/CLIHarness.swift).
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `<root>/.build/debug/vernier`, or $VERNIER_CLI_BINARY when set (e.g. to test a release build).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["VERNIER_CLI_BINARY"], !path.isEmpty { return path }
        return root + "/.build/debug/vernier"
    }

    /// The path of the binary, or a recorded failure that says how to build it.
    /// Tests call this first and stop when it throws: a missing binary is a failure, not a skip.
    static func requireBinary(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let path = binary
        let ok = FileManager.default.isExecutableFile(atPath: path)
        try #require(ok, """
            the vernier binary is missing at \(path); build it first with \
            `swift build --build-tests` (Scripts/test does this) and run `swift test --skip-build`
            """, sourceLocation: sourceLocation)
        return path
    }

    /// Where the binary stores this machine's measured profile during a test run, unless
    /// the caller's environment names a folder: a folder per test process, so tests never
    /// write the user's profile (a roofline measured while tests load the machine would
    /// be wrong for every later `vernier profile`), and measure at most once per run.
    static let deviceFolder: String = {
        let folder = NSTemporaryDirectory() + "vernier-test-devices-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()

    struct Result: CustomStringConvertible {
        var arguments: [String]
        /// Exit status, or the signal number when `signaled`.
        var status: Int32
        var signaled: Bool
        var timedOut: Bool
        var stdout: Data
        var stderr: Data
        var seconds: Double

        var out: String { String(decoding: stdout, as: UTF8.self) }
        var err: String { String(decoding: stderr, as: UTF8.self) }
        var exitedNormally: Bool { !signaled && !timedOut }

        /// The non-empty lines of stderr.
        var errLines: [String] { err.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }

        /// True when stderr is exactly one line `vernier: ...\n` (one trailing newline, no other).
        var stderrIsOneVernierLine: Bool {
            let e = err
            guard e.hasPrefix("vernier: "), e.hasSuffix("\n") else { return false }
            let body = e.dropLast()
            return !body.contains("\n") && !body.contains("\r") && body.count > "vernier: ".count
        }

        var description: String {
            let how = timedOut ? "timed out" : signaled ? "killed by signal \(status)" : "exit \(status)"
            let clip = { (s: String) in s.count > 1500 ? String(s.prefix(1500)) + "…" : s }
            return "vernier \(arguments.joined(separator: " ")) -> \(how)\n  stderr: \(clip(err))\n  stdout: \(clip(out))"
        }
    }

    /// Runs `vernier args...` in `directory` (default: the repository root), killing it after
    /// `timeout` seconds, with `environment` added to this process's environment. Never throws
    /// for the child's own failure; throws only if it cannot start.
    ///
    /// Spawned with `posix_spawn`, not Foundation's `Process`: on Linux, Swift 6.3's
    /// `Process.run()` lists /proc/self/fd copying each entry's whole 256-byte name, past
    /// the end of glibc's buffer, and crashed the test process about one suite run in six
    /// (swift-corelibs-foundation PR 5472).
    static func run(_ args: [String], in directory: String? = nil, environment: [String: String] = [:],
                    timeout: Double = 60, whileRunning: (() -> Void)? = nil) throws -> Result {
        let binary = try requireBinary()
        let variables = ProcessInfo.processInfo.environment
            .merging(["VERNIER_DEVICE_DIR": deviceFolder]) { own, _ in own }
            .merging(environment) { _, new in new }
        let start = Date()
        let child = try Child(binary: binary, arguments: args, environment: variables, directory: directory ?? root)

        // Drain both pipes while the child runs, so a large output cannot block it.
        let readers = DispatchGroup()
        let outData = Box(Data()), errData = Box(Data())
        DispatchQueue.global().async(group: readers) { outData.value = Child.readToEnd(child.stdout) }
        DispatchQueue.global().async(group: readers) { errData.value = Child.readToEnd(child.stderr) }
        whileRunning?()

        var timedOut = false
        var status = child.poll()
        while status == nil {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                kill(child.pid, SIGKILL)
                status = child.wait()
                break
            }
            usleep(2_000)
            status = child.poll()
        }
        readers.wait()
        let ended = Child.decode(status ?? 0)
        return Result(arguments: args, status: ended.status, signaled: ended.signaled,
                      timedOut: timedOut, stdout: outData.value, stderr: errData.value,
                      seconds: Date().timeIntervalSince(start))
    }

    /// A spawned child with its output and error pipes (read ends, closed on reading to
    /// the end) and no input.
    struct Child {
        let pid: pid_t
        let stdout: Int32
        let stderr: Int32

        init(binary: String, arguments: [String], environment: [String: String], directory: String) throws {
            var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
            guard pipe(&out) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
            guard pipe(&err) == 0 else {
                close(out[0]); close(out[1])
                throw POSIXError(.init(rawValue: errno) ?? .EIO)
            }
            // Close-on-exec, so other tests' children do not hold these open; dup2 onto 1
            // and 2 clears the flag for this child's copies.
            for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_adddup2(&actions, err[1], 2)

            func cStrings(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] { strings.map { strdup($0) } + [nil] }
            // `env -C` changes into the directory and execs the binary (glibc's
            // posix_spawn_file_actions_addchdir_np is not visible to Swift).
            let launcher = "/usr/bin/env"
            let argv = cStrings([launcher, "-C", directory, binary] + arguments)
            let envp = cStrings(environment.map { "\($0.key)=\($0.value)" })
            defer { for p in argv + envp { free(p) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, launcher, &actions, nil, argv, envp)
            close(out[1]); close(err[1])
            guard spawned == 0 else {
                close(out[0]); close(err[0])
                throw POSIXError(.init(rawValue: spawned) ?? .EIO)
            }
            (self.pid, stdout, stderr) = (pid, out[0], err[0])
        }

        /// The wait status once the child has ended, nil while it runs.
        func poll() -> Int32? {
            var status: Int32 = 0
            while true {
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid { return status }
                if r == 0 || errno != EINTR { return r == 0 ? nil : 0 }
            }
        }

        /// Waits for the child to end; its wait status.
        func wait() -> Int32 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            return status
        }

        /// A wait status as the exit status, or the signal number when a signal ended
        /// the child (Linux: the signal in the low 7 bits, else the exit code above them).
        static func decode(_ raw: Int32) -> (status: Int32, signaled: Bool) {
            let signal = raw & 0x7f
            return signal == 0 ? ((raw >> 8) & 0xff, false) : (signal, true)
        }

        /// Everything written to `fd` until its last writer closes it; closes `fd`.
        static func readToEnd(_ fd: Int32) -> Data {
            defer { close(fd) }
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 { data.append(contentsOf: buffer[0..<n]) } else if n == 0 || errno != EINTR { return data }
            }
        }
    }

    /// `vernier summary MODEL extra...`, with MODEL relative to the repository root.
    static func summary(_ model: String, _ extra: [String] = [], timeout: Double = 60) throws -> Result {
        try run(["summary", model] + extra, timeout: timeout)
    }

    // MARK: Models

    /// The good models (paths relative to the root): Models/*.onnx plus the external-data one.
    static var goodModels: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Models")) ?? []
        return names.filter { $0.hasSuffix(".onnx") }.sorted().map { "Models/" + $0 }
            + ["Models/external/ext_weights.onnx"]
    }

    /// Models/broken/*.onnx, relative to the root.
    static var brokenModels: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Models/broken")) ?? []
        return names.filter { $0.hasSuffix(".onnx") }.sorted().map { "Models/broken/" + $0 }
    }

    /// A fresh empty folder under the system temporary folder; the caller removes it.
    static func makeTempFolder(_ tag: String) throws -> String {
        let path = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("vernier-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// A value shared between threads; each use is guarded by a lock.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); defer { lock.unlock() }; stored = newValue }
    }
    func mutate<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&stored) }
}

/// JSON helpers for `JSONSerialization` output.
enum J {
    static func parse(_ data: Data, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return try #require(any as? [String: Any], "top-level JSON value is not an object", sourceLocation: sourceLocation)
    }

    /// A shape as written by vernier: array of Int (known) or String (symbolic); nil for JSON null.
    static func shape(_ any: Any?) -> [String]? {
        guard let array = any as? [Any] else { return nil }
        return array.map { item in
            if let s = item as? String { return s }
            if let n = item as? NSNumber { return n.stringValue }
            return "<\(item)>"
        }
    }

    static func ints(_ values: [Int]) -> [String] { values.map(String.init) }

    static func int(_ any: Any?) -> Int? { (any as? NSNumber)?.intValue }
}

/// RFC 4180 CSV: fields separated by commas, quoted with `"` when needed, `""` inside quotes.
enum CSV {
    /// The records of `text` (which must end in a newline), or nil when a quote is unbalanced.
    static func parse(_ text: String) -> [[String]]? {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars.removeFirst() } else { quoted = false }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                record.append(field); field = ""
            } else if c == "\n" {
                record.append(field); field = ""
                records.append(record); record = []
            } else {
                field.append(c)
            }
        }
        guard !quoted, field.isEmpty, record.isEmpty else { return nil }
        return records
    }
}
