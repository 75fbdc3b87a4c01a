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
    static func run(_ args: [String], in directory: String? = nil, environment: [String: String] = [:],
                    timeout: Double = 60, whileRunning: (() -> Void)? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try requireBinary())
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment
            .merging(["VERNIER_DEVICE_DIR": deviceFolder]) { own, _ in own }
            .merging(environment) { _, new in new }
        process.currentDirectoryURL = URL(fileURLWithPath: directory ?? root)
        process.standardInput = FileHandle.nullDevice
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe

        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }

        // Drain both pipes while the child runs, so a large output cannot block it.
        let readers = DispatchGroup()
        let outData = Box(Data()), errData = Box(Data())
        let start = Date()
        try process.run()
        DispatchQueue.global().async(group: readers) { outData.value = outPipe.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: readers) { errData.value = errPipe.fileHandleForReading.readDataToEndOfFile() }
        whileRunning?()

        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
        }
        readers.wait()
        let seconds = Date().timeIntervalSince(start)
        let signaled = process.terminationReason == .uncaughtSignal
        return Result(arguments: args, status: process.terminationStatus, signaled: signaled,
                      timedOut: timedOut, stdout: outData.value, stderr: errData.value, seconds: seconds)
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
