import ArgumentParser
import Foundation
import VernierCost

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
        subcommands: [Summary.self]
    )

    /// Runs the command; maps every failure to exit code 2 with a one-line message, and
    /// help/version to 0.
    static func main() {
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
            if isArgumentError(error) {
                // ArgumentParser's usage errors: its message plus usage, still exit 2.
                let message = fullMessage(for: error)
                FileHandle.standardError.write(Data(("vernier: " + message + "\n").utf8))
            } else {
                FileHandle.standardError.write(Data(("vernier: error: \(error)\n").utf8))
            }
            Foundation.exit(2)
        }
    }

    private static func isArgumentError(_ error: Error) -> Bool {
        String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }
}
