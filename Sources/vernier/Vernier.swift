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
        subcommands: [Summary.self, Run.self]
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
