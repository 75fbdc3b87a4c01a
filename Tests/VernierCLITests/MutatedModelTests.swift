import Foundation
import Testing
import VernierTestSupport

extension SplitMix64 {
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }
}

/// Feeds corrupted copies of the good models to `vernier summary`: it must answer each with
/// exit 0 or exit 2 and one `vernier: ` line, never crash, hang or use another exit code.
/// Every mutant `summary` accepts is then executed, by `vernier run` or (every other one)
/// `vernier profile`, under the same rules.
@Suite struct MutatedModelTests {
    enum Kind: String, CaseIterable {
        case truncate, flip, insert, delete, overwrite, duplicate
    }

    struct Mutant {
        var model: String        // relative path of the original, e.g. Models/cifar_cnn.onnx
        var index: Int
        var kind: Kind
        var detail: String
        var mutatesWeightsFile: Bool  // ext_weights: the .bin is the mutated file
        var bytes: Data
        var format: String
    }

    /// The base seed; each mutant's generator is derived from it, the model name and the index,
    /// so a single mutant can be regenerated on its own.
    static let seed: UInt64 = 0x7E57_5EED_2024_0001

    /// Mutants per model: 9 models x 225 = 2,025 subprocesses. Measured on 2 cores, debug build,
    /// 4 at a time: 2,250 mutants took 83 s alone and 149 s while the other CLI suites ran
    /// alongside, so 2,025 stay well under 3 minutes. VERNIER_MUTANTS_PER_MODEL overrides.
    static var perModel: Int {
        if let s = ProcessInfo.processInfo.environment["VERNIER_MUTANTS_PER_MODEL"], let n = Int(s), n > 0 { return n }
        return 225
    }

    static let concurrency = 4
    static var logPath: String? { ProcessInfo.processInfo.environment["VERNIER_MUTANTS_LOG"] }
    static let timeout: Double = 20
    static let formats = ["json", "table", "json", "csv", "json", "md"]

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// A position in 0..<count. Raw weight data fills the middle of these files, while the
    /// nodes come first and the graph inputs and outputs last, so half the positions are drawn
    /// from the first 4 KiB or the last 2 KiB, where a flip changes structure rather than a float.
    static func position(_ rng: inout SplitMix64, count: Int) -> Int {
        precondition(count > 0)
        switch rng.below(4) {
        case 0: return rng.below(min(count, 4096))
        case 1: return count - 1 - rng.below(min(count, 2048))
        default: return rng.below(count)
        }
    }

    static func mutate(_ original: Data, kind: Kind, rng: inout SplitMix64) -> (Data, String) {
        var b = [UInt8](original)
        let n = b.count
        switch kind {
        case .truncate:
            let length = rng.below(n)
            return (Data(b.prefix(length)), "truncated to \(length) of \(n) bytes")
        case .flip:
            let count = rng.within(1...8)
            var at: [Int] = []
            for _ in 0..<count {
                let p = position(&rng, count: n)
                b[p] ^= UInt8(rng.within(1...255))
                at.append(p)
            }
            return (Data(b), "xor at \(at)")
        case .insert:
            let p = rng.below(8) == 0 ? n : position(&rng, count: n)  // sometimes append at the end
            let len = rng.within(1...16)
            b.insert(contentsOf: rng.bytes(len), at: p)
            return (Data(b), "inserted \(len) random bytes at \(p)")
        case .delete:
            let p = position(&rng, count: n)
            let len = min(rng.within(1...16), n - p)
            b.removeSubrange(p..<(p + len))
            return (Data(b), "deleted \(len) bytes at \(p)")
        case .overwrite:
            let p = position(&rng, count: n)
            let len = min(rng.within(1...64), n - p)
            b.replaceSubrange(p..<(p + len), with: rng.bytes(len))
            return (Data(b), "overwrote \(len) bytes at \(p)")
        case .duplicate:
            let from = position(&rng, count: n)
            let len = min(rng.within(1...256), n - from)
            let to = position(&rng, count: n)
            b.insert(contentsOf: Array(b[from..<(from + len)]), at: to)
            return (Data(b), "copied \(len) bytes from \(from) to \(to)")
        }
    }

    /// Mutant `index` of `model`; its generator depends only on the seed, the model and the index.
    static func makeMutant(model: String, index i: Int, original: Data, weights: Data?) -> Mutant {
        var rng = SplitMix64(seed: seed ^ fnv1a(model) &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03)
        let kind = Kind.allCases[i % Kind.allCases.count]
        // For the external-data model, every fifth mutant corrupts the weights file instead.
        let onWeights = weights != nil && i % 5 == 4
        let (bytes, detail) = mutate(onWeights ? weights! : original, kind: kind, rng: &rng)
        return Mutant(model: model, index: i, kind: kind, detail: detail, mutatesWeightsFile: onWeights,
                      bytes: bytes, format: formats[i % formats.count])
    }

    struct Source {
        var model: String
        var fileName: String
        var original: Data
        var weights: Data?  // ext_weights.bin for the external-data model
    }

    static let weightsFileName = "ext_weights.bin"

    struct Tally {
        var exit0 = 0
        var exit2 = 0
        var byKind: [String: (exit0: Int, exit2: Int)] = [:]
        var failures: [String] = []
        var slowest: Double = 0
        /// One line per mutant, written to $VERNIER_MUTANTS_LOG when that is set.
        var log: [String] = []
    }

    @Test("mutated models exit 0 or 2 with one message line, never crash or hang")
    func mutatedModels() throws {
        _ = try CLI.requireBinary()
        let work = try CLI.makeTempFolder("mutants")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let keep = (NSTemporaryDirectory() as NSString).appendingPathComponent("vernier-mutant-failures")

        let sources: [Source] = try CLI.goodModels.map { model in
            let url = URL(fileURLWithPath: CLI.root + "/" + model)
            let weights = model.hasSuffix("ext_weights.onnx")
                ? try Data(contentsOf: url.deletingLastPathComponent().appendingPathComponent(Self.weightsFileName)) : nil
            return Source(model: model, fileName: url.lastPathComponent, original: try Data(contentsOf: url), weights: weights)
        }
        let jobs = sources.indices.flatMap { s in (0..<Self.perModel).map { (source: s, index: $0) } }

        // Workers make each mutant, write it to its own folder (the external model needs its
        // .bin beside it), run vernier on it and delete the folder again.
        let start = Date()
        let next = Box(0)
        let tally = Box(Tally())
        let group = DispatchGroup()
        for _ in 0..<Self.concurrency {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while true {
                    let j = next.mutate { n -> Int in defer { n += 1 }; return n }
                    if j >= jobs.count { return }
                    let source = sources[jobs[j].source]
                    let m = Self.makeMutant(model: source.model, index: jobs[j].index,
                                            original: source.original, weights: source.weights)
                    let folder = "\(work)/\(source.fileName.replacingOccurrences(of: ".onnx", with: ""))-\(m.index)"
                    let path = folder + "/" + source.fileName
                    let verdict: Verdict
                    do {
                        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                        if let weights = source.weights {
                            try (m.mutatesWeightsFile ? m.bytes : weights).write(to: URL(fileURLWithPath: folder + "/" + Self.weightsFileName))
                            try (m.mutatesWeightsFile ? source.original : m.bytes).write(to: URL(fileURLWithPath: path))
                        } else {
                            try m.bytes.write(to: URL(fileURLWithPath: path))
                        }
                        verdict = Self.check(m, path: path)
                    } catch {
                        verdict = .failed("\(m.model) mutant #\(m.index): cannot write it: \(error)")
                    }
                    tally.mutate { t in
                        switch verdict {
                        case .exit0(let s):
                            t.exit0 += 1; t.slowest = max(t.slowest, s); t.byKind[m.kind.rawValue, default: (0, 0)].exit0 += 1
                        case .exit2(let s):
                            t.exit2 += 1; t.slowest = max(t.slowest, s); t.byKind[m.kind.rawValue, default: (0, 0)].exit2 += 1
                        case .failed(let why): t.failures.append(why)
                        }
                        if Self.logPath != nil {
                            let outcome: String
                            switch verdict {
                            case .exit0: outcome = "exit 0"
                            case .exit2: outcome = "exit 2"
                            case .failed: outcome = "FAILED"
                            }
                            t.log.append("\(m.model)\t\(m.index)\t\(m.kind.rawValue)\t\(m.format)\t\(m.detail)\t\(outcome)")
                        }
                    }
                    if case .failed = verdict { Self.keepCopy(folder: folder, in: keep) }
                    try? FileManager.default.removeItem(atPath: folder)
                }
            }
        }
        group.wait()
        let elapsed = Date().timeIntervalSince(start)
        let t = tally.value
        print("""
            MutatedModelTests: \(jobs.count) mutants (\(Self.perModel) per model, \(CLI.goodModels.count) models, \
            seed \(String(Self.seed, radix: 16))): exit 0: \(t.exit0), exit 2: \(t.exit2), failures: \(t.failures.count); \
            \(String(format: "%.1f", elapsed)) s with \(Self.concurrency) at a time, slowest run \(String(format: "%.2f", t.slowest)) s
              by kind (exit 0/exit 2): \(Kind.allCases.map { "\($0.rawValue) \(t.byKind[$0.rawValue]?.exit0 ?? 0)/\(t.byKind[$0.rawValue]?.exit2 ?? 0)" }.joined(separator: ", "))
            """)
        if let logPath = Self.logPath {
            try (t.log.sorted().joined(separator: "\n") + "\n").write(toFile: logPath, atomically: true, encoding: .utf8)
        }
        #expect(t.exit0 + t.exit2 + t.failures.count == jobs.count)
        // Both outcomes must occur, or the mutants are not exercising anything.
        #expect(t.exit0 > 0 && t.exit2 > 0)
        for why in t.failures.prefix(25) { Issue.record(Comment(rawValue: why)) }
        if t.failures.count > 25 { Issue.record("… and \(t.failures.count - 25) more failing mutants") }
        if !t.failures.isEmpty { print("MutatedModelTests: failing mutants were copied to \(keep)") }
    }

    @Test("the mutant generator is deterministic")
    func deterministic() throws {
        // Reference value: the first SplitMix64 output for seed 0 is 0xE220A8397B1DCDAF.
        var zero = SplitMix64(seed: 0)
        #expect(zero.next() == 0xE220_A839_7B1D_CDAF)
        let original = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        for i in 0..<12 {
            let a = Self.makeMutant(model: "Models/x.onnx", index: i, original: original, weights: nil)
            let b = Self.makeMutant(model: "Models/x.onnx", index: i, original: original, weights: nil)
            #expect(a.bytes == b.bytes && a.detail == b.detail)
            #expect(a.bytes != original, "mutant \(i) (\(a.kind)) did not change anything: \(a.detail)")
        }
    }

    enum Verdict { case exit0(Double), exit2(Double), failed(String) }

    static func check(_ m: Mutant, path: String) -> Verdict {
        let what = "\(m.model) mutant #\(m.index) (\(m.kind.rawValue)\(m.mutatesWeightsFile ? " of the .bin" : ""): \(m.detail)), --format \(m.format)"
        let r: CLI.Result
        do {
            r = try CLI.run(["summary", path, "--format", m.format], timeout: timeout)
        } catch {
            return .failed("\(what): could not start vernier: \(error)")
        }
        if r.timedOut { return .failed("\(what): no answer within \(Int(timeout)) s (killed)") }
        if r.signaled { return .failed("\(what): killed by signal \(r.status)\n  stderr: \(r.err.suffix(600))") }
        switch r.status {
        case 0:
            if r.stdout.isEmpty { return .failed("\(what): exit 0 with empty stdout") }
            if m.format == "json", (try? JSONSerialization.jsonObject(with: r.stdout)) == nil {
                return .failed("\(what): exit 0 but stdout is not valid JSON")
            }
            if let failure = execute(m, path: path, what: what) { return .failed(failure) }
            return .exit0(r.seconds)
        case 2:
            if !r.stderrIsOneVernierLine {
                return .failed("\(what): exit 2 but stderr is not one 'vernier: ' line: \(r.err.debugDescription.prefix(600))")
            }
            if !r.stdout.isEmpty { return .failed("\(what): exit 2 but wrote \(r.stdout.count) bytes to stdout") }
            return .exit2(r.seconds)
        default:
            return .failed("\(what): exit \(r.status)\n  stderr: \(r.err.suffix(600))")
        }
    }

    /// Runs a mutant that `summary` accepted through the executor: `run` or `profile`
    /// must also exit 0 or 2 with one message line. Returns the failure, if any.
    static func execute(_ m: Mutant, path: String, what: String) -> String? {
        let dims = m.model.contains("bert") ? ["--dim", "batch=1", "--dim", "seq=8"] : []
        let args = m.index % 2 == 0
            ? ["run", path, "--threads", "1", "--show", "2"] + dims
            : ["profile", path, "--runs", "1", "--warmup", "0", "--min-time", "0", "--no-roofline", "--threads", "1", "--format", "json"] + dims
        let command = "vernier \(args[0])"
        let r: CLI.Result
        do { r = try CLI.run(args, timeout: timeout) } catch { return "\(what): could not start \(command): \(error)" }
        if r.timedOut { return "\(what): \(command) gave no answer within \(Int(timeout)) s (killed)" }
        if r.signaled { return "\(what): \(command) killed by signal \(r.status)\n  stderr: \(r.err.suffix(600))" }
        switch r.status {
        case 0:
            if args[0] == "profile", (try? JSONSerialization.jsonObject(with: r.stdout)) == nil {
                return "\(what): \(command) exit 0 but stdout is not valid JSON"
            }
            return nil
        case 2:
            return r.stderrIsOneVernierLine ? nil : "\(what): \(command) exit 2 but stderr is not one 'vernier: ' line: \(r.err.debugDescription.prefix(600))"
        default:
            return "\(what): \(command) exit \(r.status)\n  stderr: \(r.err.suffix(600))"
        }
    }

    /// Keeps a failing mutant (outside the repository) for reproduction.
    static func keepCopy(folder: String, in keep: String) {
        let target = "\(keep)/\((folder as NSString).lastPathComponent)"
        try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: target)
        try? FileManager.default.copyItem(atPath: folder, toPath: target)
    }
}
