import Foundation

/// The process's memory as the kernel reports it (Linux `/proc/self/status`).
public enum ProcessMemory {
    /// Peak resident set size (`VmHWM`), in bytes; nil where /proc is unavailable.
    public static var peakResidentBytes: Int? { statusField("VmHWM:") }

    /// Current resident set size (`VmRSS`), in bytes.
    public static var residentBytes: Int? { statusField("VmRSS:") }

    static func statusField(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        let number = line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
        return number.map { $0 * 1024 }   // kB
    }
}
