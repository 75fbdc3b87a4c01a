import Foundation

/// The process's memory as the kernel reports it (Linux `/proc/self/status`).
public enum ProcessMemory {
    /// Peak resident set size (`VmHWM`), in bytes; nil where /proc is unavailable.
    public static var peakResidentBytes: Int? { statusField("VmHWM:") }

    /// Current resident set size (`VmRSS`), in bytes.
    public static var residentBytes: Int? { statusField("VmRSS:") }

    /// Resets the peak (`VmHWM`) to the current resident set, where the kernel allows
    /// (Linux 4.0+: writing 5 to /proc/self/clear_refs), and returns the current
    /// resident bytes: the baseline a later peak is measured against.
    @discardableResult
    public static func resetPeak() -> Int? {
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            try? handle.write(contentsOf: Data("5".utf8))
            try? handle.close()
        }
        return residentBytes
    }

    static func statusField(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        let number = line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
        return number.map { $0 * 1024 }   // kB
    }
}
