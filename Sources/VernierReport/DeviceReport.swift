import Foundation
import VernierCost

/// Renders device profiles for `vernier device`: one profile (header and a table of
/// roofs per thread count) and the listing of a profile folder. The JSON form of a
/// profile is the file itself (`DeviceProfile.jsonData`).
public struct DeviceReport {
    public let profile: DeviceProfile
    /// The file the profile was read from or saved to, when there is one.
    public let path: String?

    public init(_ profile: DeviceProfile, path: String? = nil) {
        self.profile = profile
        self.path = path
    }

    /// The header lines and the roofs table.
    public func table() -> String {
        var header: [(String, String)] = [
            ("device", profile.name), ("cpu", profile.cpu), ("source", profile.source.rawValue),
        ]
        if let at = profile.measuredAt { header.append(("measured_at", at)) }
        header.append(("cores", String(profile.cores)))
        header.append(("isa", profile.isa.isEmpty ? "unknown" : profile.isa.joined(separator: " ")))
        header.append(("caches", Self.cachesText(profile.caches)))
        if let path { header.append(("file", path)) }
        if let notes = profile.notes { header.append(("notes", notes)) }
        let width = header.map(\.0.count).max() ?? 0
        var out = header.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
            .joined(separator: "\n") + "\n\n"
        let rows = profile.roofs.map { roof in
            [String(roof.threads), String(format: "%.1f", roof.fp32Gflops),
             roof.int8Gops.map { String(format: "%.1f", $0) } ?? "-",
             String(format: "%.2f", roof.bandwidthGBps),
             String(format: "%.2f", roof.fp32Gflops / roof.bandwidthGBps)]
        }
        out += Format.columns(["threads", "fp32 GFLOP/s", "int8 GOP/s", "bandwidth GB/s", "ridge FLOPs/byte"],
                              rows, rightAligned: [0, 1, 2, 3, 4])
        return out
    }

    /// `L1d 32 KiB, L2 512 KiB, L3 32 MiB`; unknown levels are left out.
    public static func cachesText(_ caches: DeviceProfile.Caches) -> String {
        let levels = [("L1d", caches.l1dBytes), ("L2", caches.l2Bytes), ("L3", caches.l3Bytes)]
        let known = levels.compactMap { name, bytes in bytes.map { "\(name) \(sizeText($0))" } }
        return known.isEmpty ? "unknown" : known.joined(separator: ", ")
    }

    /// Whole binary units when exact (`32 KiB`, `1 MiB`), else `Format.bytes`.
    static func sizeText(_ bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= size && bytes % size == 0 {
            return "\(bytes / size) \(unit)"
        }
        return Format.bytes(bytes)
    }

    // MARK: - Listing

    /// The profiles of a folder as a table (name, cpu, source, measured_at), or a line
    /// saying the folder has none.
    public static func listTable(_ entries: [DeviceProfileStore.Entry], directory: String) -> String {
        guard !entries.isEmpty else {
            return "no device profiles in \(directory); measure this machine with `vernier device --measure`\n"
        }
        let rows = entries.map { entry -> [String] in
            guard let p = entry.profile else { return [entry.name, "(unreadable: \(entry.problem ?? "unknown problem"))", "", ""] }
            return [entry.name, p.cpu, p.source.rawValue, p.measuredAt ?? "-"]
        }
        return "profiles in \(directory):\n\n" + Format.columns(["name", "cpu", "source", "measured_at"], rows)
    }

    /// The listing as JSON: `{"directory", "profiles": [{"name", "path", "cpu", "source",
    /// "measured_at", "cores", "error"}]}`, with `error` set (and the profile fields null)
    /// for a file that does not load.
    public static func listJSON(_ entries: [DeviceProfileStore.Entry], directory: String) -> String {
        let profiles: [JSON] = entries.map { entry in
            let p = entry.profile
            return .object([
                ("name", .string(entry.name)), ("path", .string(entry.path)),
                ("cpu", p.map { .string($0.cpu) } ?? .null),
                ("source", p.map { .string($0.source.rawValue) } ?? .null),
                ("measured_at", p?.measuredAt.map { .string($0) } ?? .null),
                ("cores", p.map { .int($0.cores) } ?? .null),
                ("error", entry.problem.map { .string($0) } ?? .null),
            ])
        }
        return JSON.object([("directory", .string(directory)), ("profiles", .array(profiles))]).serialized() + "\n"
    }
}
