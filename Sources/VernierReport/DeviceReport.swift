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
        header.append(("prediction", Self.calibrationText(profile)))
        let width = header.map(\.0.count).max() ?? 0
        var out = header.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
            .joined(separator: "\n") + "\n\n"
        let rows = profile.roofs.map { roof in
            [String(roof.threads), String(format: "%.1f", roof.fp32Gflops),
             roof.int8Gops.map { String(format: "%.1f", $0) } ?? "-",
             roof.fp16Gflops.map { String(format: "%.1f", $0) } ?? "-",
             String(format: "%.2f", roof.bandwidthGBps),
             String(format: "%.2f", roof.fp32Gflops / roof.bandwidthGBps)]
        }
        out += Format.columns(["threads", "fp32 GFLOP/s", "int8 GOP/s", "fp16 GFLOP/s", "bandwidth GB/s", "ridge FLOPs/byte"],
                              rows, rightAligned: [0, 1, 2, 3, 4, 5])
        let model = profile.effectiveEfficiency
        out += "\nefficiency (share of the roofline reached, by kernel size in us of roofline time):\n\n"
        let curves = model.curves.filter { $0.bound == nil }.sorted {
            ($0.threads, $0.opClass?.rawValue ?? "~all") < ($1.threads, $1.opClass?.rawValue ?? "~all")
        }
        out += Format.columns(["threads", "class", "kernels", "curve (ideal us: efficiency)"], curves.map { c in
            [String(c.threads), c.opClass?.rawValue ?? "all", String(c.samples),
             c.points.map { String(format: "%.3g: %.2f", $0.idealUs, $0.efficiency) }.joined(separator: ", ")]
        }, rightAligned: [0, 2])
        if !model.kernelModels.isEmpty {
            out += "\nkernel models (these classes predict by them instead of the curve; us per unit of each term):\n\n"
            let sorted = model.kernelModels.sorted { ($0.threads, $0.opClass.rawValue) < ($1.threads, $1.opClass.rawValue) }
            out += Format.columns(["threads", "class", "kernels", "terms"], sorted.map { m in
                [String(m.threads), m.opClass.rawValue, String(m.samples),
                 m.weights.sorted { $0.key < $1.key }.map { "\($0.key) " + String(format: "%.3g", $0.value) }.joined(separator: ", ")]
            }, rightAligned: [0, 2])
            out += Self.kernelModelNotes(model.kernelModels)
        }
        out += "\n" + Format.columns(["threads", "per-kernel overhead us", "per-run overhead us", "per-run share of kernels",
                                      "between kernels us"], model.overheads.map {
            [String($0.threads), String(format: "%.2f", $0.perKernelUs), String(format: "%.1f", $0.perRunUs),
             String(format: "%+.1f%%", $0.perRunFraction * 100), String(format: "%.2f", $0.betweenKernelsUs)]
        }, rightAligned: [0, 1, 2, 3, 4])
        return out
    }

    /// What the byte terms of the kernel models count: the thresholds and the overlap
    /// the fit used (the same for every thread count: they come from the caches and the
    /// one-thread roofs).
    static func kernelModelNotes(_ models: [KernelCostModel]) -> String {
        var notes: [String] = []
        if let perMac = models.lazy.compactMap(\.overlapBytesPerMac).first {
            notes.append("bytes of a float convolution count beyond " + String(format: "%.2f", perMac)
                         + " per multiply-add (what a core moves while it computes, at the one-thread roofs)")
        }
        if let model = models.first(where: { $0.streamingBytes != nil }), let limit = model.streamingBytes {
            let perThread = Format.bytes(Int(limit) / max(1, model.threads))
            notes.append("streamed_bytes: kernels moving more than \(perThread) per thread (the L2)"
                         + (model.residentBytes.map { ", of models over " + Format.bytes(Int($0)) + " (their share of the L3)" } ?? ""))
        }
        return notes.map { "  " + $0 + "\n" }.joined()
    }

    /// "calibrated on N profiles (...)" or "uncalibrated (built-in priors)".
    public static func calibrationText(_ profile: DeviceProfile) -> String {
        guard let e = profile.efficiency, e.calibrated else {
            return "uncalibrated: efficiencies are built-in priors; fit them with `vernier device --calibrate`"
        }
        return "calibrated on \(e.fittedOn.count) profile(s), \(e.sampleCount) kernels\(e.fittedAt.map { ", " + $0 } ?? ""): "
            + e.fittedOn.joined(separator: ", ")
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
        var out: String
        if entries.isEmpty {
            out = "no device profiles in \(directory); measure this machine with `vernier device --measure`\n"
        } else {
            let rows = entries.map { entry -> [String] in
                guard let p = entry.profile else { return [entry.name, "(unreadable: \(entry.problem ?? "unknown problem"))", "", "", ""] }
                return [entry.name, p.cpu, p.source.rawValue, p.isCalibrated ? "calibrated" : "uncalibrated", p.measuredAt ?? "-"]
            }
            out = "profiles in \(directory):\n\n" + Format.columns(["name", "cpu", "source", "prediction", "measured_at"], rows)
        }
        let stored = Set(entries.map(\.name))
        let builtins = BuiltinDevices.all.filter { !stored.contains($0.name) }
        if !builtins.isEmpty {
            out += "\nbuilt-in profiles (spec-derived; a stored file of the same name overrides one):\n\n"
            out += Format.columns(["name", "cpu", "cores"], builtins.map { [$0.name, $0.cpu, String($0.cores)] }, rightAligned: [2])
        }
        return out
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
                ("calibrated", p.map { .bool($0.isCalibrated) } ?? .null),
                ("error", entry.problem.map { .string($0) } ?? .null),
            ])
        }
        let stored = Set(entries.map(\.name))
        let builtins: [JSON] = BuiltinDevices.all.filter { !stored.contains($0.name) }.map { p in
            .object([("name", .string(p.name)), ("path", .string("built-in")), ("cpu", .string(p.cpu)),
                     ("source", .string(p.source.rawValue)), ("measured_at", .null), ("cores", .int(p.cores)),
                     ("calibrated", .bool(p.isCalibrated)), ("error", .null)])
        }
        return JSON.object([("directory", .string(directory)), ("profiles", .array(profiles)),
                            ("builtin", .array(builtins))]).serialized() + "\n"
    }
}
