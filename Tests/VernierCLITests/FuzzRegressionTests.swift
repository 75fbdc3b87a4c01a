import Foundation
import Testing

/// Every input the fuzzer (Scripts/fuzz.sh) ever crashed on stays in Tests/Fuzz/crashes/
/// and must now exit 0 or 2 with at most one message line, like any other input.
struct FuzzRegressionTests {
    static var reproducers: [String] {
        let folder = CLI.root + "/Tests/Fuzz/crashes"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted().map { folder + "/" + $0 }
    }

    @Test(arguments: reproducers)
    func fuzzCrashReproducerNoLongerCrashes(path: String) throws {
        let result = try CLI.summary(path, timeout: 30)
        #expect(result.exitedNormally, "\(path): \(result)")
        #expect(result.status == 0 || result.status == 2, "\(path): \(result)")
        if result.status == 2 { #expect(result.stderrIsOneVernierLine, "\(path): \(result.err)") }
    }
}
