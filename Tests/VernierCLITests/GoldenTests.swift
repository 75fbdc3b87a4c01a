import Foundation
import Testing

/// Compares `vernier summary` output with Tests/Golden/, byte for byte. The golden files and
/// Tests/Golden/cases.tsv are written by Scripts/update_golden.sh; this test only reads them.
@Suite struct GoldenTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var model: String
        var extra: [String]
        var testDescription: String { ([name, model] + extra).joined(separator: " ") }
    }

    static var goldenFolder: String { CLI.root + "/Tests/Golden" }

    /// The cases listed in Tests/Golden/cases.tsv (case<TAB>model<TAB>extra args).
    static var cases: [Case] {
        guard let text = try? String(contentsOfFile: goldenFolder + "/cases.tsv", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") { return nil }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 2 else { return nil }
            let extra = fields.count > 2 ? fields[2].split(separator: " ").map(String.init) : []
            return Case(name: fields[0], model: fields[1], extra: extra)
        }
    }

    static let formats: [(flag: String, suffix: String)] = [("json", "summary.json"), ("table", "summary.txt")]
    static let hint = "if the change is intended, run Scripts/update_golden.sh and review `git diff Tests/Golden`"

    @Test("the golden set covers every model and has no stale files")
    func coverage() throws {
        let cases = Self.cases
        try #require(!cases.isEmpty, "Tests/Golden/cases.tsv is missing or empty; \(Self.hint)")
        let covered = Set(cases.filter(\.extra.isEmpty).map(\.model))
        let models = (try FileManager.default.contentsOfDirectory(atPath: CLI.root + "/Models"))
            .filter { $0.hasSuffix(".onnx") }.map { "Models/" + $0 }
        for m in models { #expect(covered.contains(m), "no golden output for \(m); \(Self.hint)") }
        #expect(cases.contains { $0.model == "Models/bert_mini.onnx" && $0.extra == ["--dim", "batch=1", "--dim", "seq=128"] })

        let expectedFiles = Set(cases.flatMap { c in Self.formats.map { "\(c.name).\($0.suffix)" } })
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: Self.goldenFolder)
            .filter { $0.hasSuffix(".summary.json") || $0.hasSuffix(".summary.txt") })
        #expect(present.subtracting(expectedFiles).isEmpty, "stale golden files: \(present.subtracting(expectedFiles).sorted())")
        #expect(expectedFiles.subtracting(present).isEmpty, "missing golden files: \(expectedFiles.subtracting(present).sorted())")
    }

    @Test("summary output matches the golden file", arguments: cases)
    func matchesGolden(_ c: Case) throws {
        for format in Self.formats {
            let path = "\(Self.goldenFolder)/\(c.name).\(format.suffix)"
            let golden = try #require(FileManager.default.contents(atPath: path), "missing \(path); \(Self.hint)")
            // Run from the repository root with the relative model path, as the script does.
            let r = try CLI.run(["summary", c.model] + c.extra + ["--format", format.flag])
            try #require(r.exitedNormally && r.status == 0, "\(r)")
            if r.stdout != golden {
                Issue.record("""
                    vernier summary \(([c.model] + c.extra).joined(separator: " ")) --format \(format.flag) \
                    differs from Tests/Golden/\(c.name).\(format.suffix):
                    \(Self.diffHint(expected: golden, actual: r.stdout))
                    \(Self.hint)
                    """)
            }
        }
    }

    /// The first differing line (1-based), with a little context, and the line counts.
    static func diffHint(expected: Data, actual: Data) -> String {
        let e = String(decoding: expected, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let a = String(decoding: actual, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        var i = 0
        while i < e.count, i < a.count, e[i] == a[i] { i += 1 }
        var out = "  first difference at line \(i + 1) (golden has \(e.count) lines, output has \(a.count); "
            + "\(expected.count) vs \(actual.count) bytes)\n"
        let context = max(0, i - 2)
        for j in context..<i { out += "    \(e[j])\n" }
        out += "  - golden: \(i < e.count ? String(e[i]) : "<end of file>")\n"
        out += "  + output: \(i < a.count ? String(a[i]) : "<end of file>")"
        return out
    }
}
