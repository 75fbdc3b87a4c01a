import ArgumentParser
import Foundation
import Synchronization
import VernierCost

/// glibc's `mallopt` (declared in <malloc.h>, which the Glibc module does not import).
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// What a SIGBUS means here: model files and their external data are memory-mapped,
/// and a mapped file made shorter by another process faults on the next read of a page
/// beyond its new end.
private let mappedFileShrankMessage: StaticString = """
    vernier: error: a memory-mapped model or external-data file became shorter while it was being read \
    (overwritten or truncated by another process?); stopped, no output file was written

    """
/// Set by the first thread that faults; the others wait for its `_exit`.
private let mappedFileShrankReported = Atomic<Bool>(false)

/// The command line. Each subcommand parses flags, calls the libraries, and prints.
@main
struct Vernier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vernier",
        abstract: "Inference latency and memory profiler for ONNX models.",
        discussion: """
        Exit codes: 0 success, 1 a budget failed (check), 2 an error (bad file, bad flag, unsupported op).

        \(CountingConventions.text)
        """,
        version: "0.1.0",
        subcommands: [Summary.self, ProfileCommand.self, Check.self, Compare.self, Report.self, Predict.self, Run.self,
                      DeviceCommand.self, Prune.self, Quantize.self, Distill.self, Plan.self]
    )

    /// Runs the command; maps every failure to exit code 2 with a one-line message, and
    /// help/version to 0.
    static func main() {
        // Large buffers (weight copies, tensors) come from mmap and go back to the system
        // when freed. glibc otherwise raises its mmap threshold after the first large
        // free, and later weight copies then stay in the heap after release, holding
        // tens of MB of a model's peak RSS.
        let mmapThreshold: Int32 = -3   // M_MMAP_THRESHOLD of <malloc.h> (a macro Swift does not import)
        _ = mallopt(mmapThreshold, 256 * 1024)
        // A shrunken mapped file ends the run with one line and exit code 2, not a crash
        // (outputs are written atomically, so none is left half-written).
        signal(SIGBUS) { _ in
            if mappedFileShrankReported.exchange(true, ordering: .relaxed) {
                while true { pause() }
            }
            _ = write(2, mappedFileShrankMessage.utf8Start, mappedFileShrankMessage.utf8CodeUnitCount)
            _exit(2)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            // One line on stderr, whatever the error: scripts read it.
            let text: String
            if isArgumentError(error) {
                let message = self.message(for: error)
                    .split(separator: "\n").first.map(String.init) ?? "invalid command line"
                let trimmed = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
                text = "\(trimmed) (see vernier --help)"
            } else {
                text = "\(error)".replacingOccurrences(of: "\n", with: " ")
            }
            FileHandle.standardError.write(Data(("vernier: error: " + text + "\n").utf8))
            Foundation.exit(2)
        }
    }

    private static func isArgumentError(_ error: Error) -> Bool {
        String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }
}
