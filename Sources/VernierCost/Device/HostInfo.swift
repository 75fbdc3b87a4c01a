import Foundation

/// What the operating system says about this machine's processor: its model name, core
/// count, vector instruction sets and caches. Read from Linux's `/proc/cpuinfo` and
/// `/sys/devices/system/cpu/cpu0/cache`; anything the OS does not report stays unknown
/// (nil, empty, or "unknown") rather than failing.
///
/// It lives beside `DeviceProfile` (not in the runtime) because deciding whether a stored
/// host profile still describes this machine needs the CPU model and core count too.
public struct HostInfo: Sendable, Equatable {
    /// The processor's model name, e.g. "AMD EPYC 7B13"; "unknown" when not reported.
    public var cpu: String
    /// Logical cores this process may run on.
    public var cores: Int
    /// The instruction sets in `HostInfo.relevantISA` that the CPU has, in that order.
    public var isa: [String]
    public var caches: DeviceProfile.Caches

    public init(cpu: String, cores: Int, isa: [String], caches: DeviceProfile.Caches) {
        self.cpu = cpu
        self.cores = cores
        self.isa = isa
        self.caches = caches
    }

    /// The CPU model string used when the OS names none.
    public static let unknownCPU = "unknown"

    /// This machine, read now.
    public static func current(cpuinfoPath: String = "/proc/cpuinfo",
                               cacheFolder: String = "/sys/devices/system/cpu/cpu0/cache") -> HostInfo {
        let cpuinfo = (try? String(contentsOfFile: cpuinfoPath, encoding: .utf8)) ?? ""
        return HostInfo(cpu: cpuModel(cpuinfo: cpuinfo) ?? unknownCPU,
                        cores: max(1, ProcessInfo.processInfo.activeProcessorCount),
                        isa: isa(cpuinfo: cpuinfo),
                        caches: caches(cacheFolder: cacheFolder))
    }

    // MARK: - /proc/cpuinfo

    /// Instruction-set flags that decide which kernels oneDNN and our SIMD code can use,
    /// in the order they are listed in a profile: x86 first (as `/proc/cpuinfo` spells
    /// them), then Arm's `Features` names.
    public static let relevantISA: [String] = [
        "sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni",
        "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
        "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
        "asimd", "asimdhp", "asimddp", "fphp", "i8mm", "bf16", "sve", "sve2", "sme",
    ]

    /// The first "model name" of a `/proc/cpuinfo` text (x86), else Arm's "Model" or
    /// "Hardware" line; nil when none is present or the value is empty.
    public static func cpuModel(cpuinfo: String) -> String? {
        for key in ["model name", "Model", "Hardware"] {
            if let value = firstValue(of: key, in: cpuinfo), !value.isEmpty { return value }
        }
        return nil
    }

    /// The relevant instruction sets named on the first "flags" (x86) or "Features"
    /// (Arm) line, in `relevantISA` order; empty when there is no such line.
    public static func isa(cpuinfo: String) -> [String] {
        guard let line = firstValue(of: "flags", in: cpuinfo) ?? firstValue(of: "Features", in: cpuinfo) else { return [] }
        let present = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
        return relevantISA.filter(present.contains)
    }

    /// The value of the first `key : value` line whose key is exactly `key`.
    static func firstValue(of key: String, in text: String) -> String? {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            guard line[..<colon].trimmingCharacters(in: .whitespaces) == key else { continue }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    // MARK: - sysfs caches

    /// The data caches described under `cacheFolder` (Linux's
    /// `/sys/devices/system/cpu/cpu0/cache`): each `index*/` folder holds `level`, `type`
    /// (`Data`, `Instruction`, `Unified`) and `size` (`32K`, `1M`). Instruction caches are
    /// skipped; a folder with a missing or unreadable file is skipped.
    public static func caches(cacheFolder: String) -> DeviceProfile.Caches {
        var caches = DeviceProfile.Caches()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: cacheFolder)) ?? []
        for entry in entries.sorted() where entry.hasPrefix("index") {
            let folder = (cacheFolder as NSString).appendingPathComponent(entry)
            func read(_ name: String) -> String? {
                (try? String(contentsOfFile: (folder as NSString).appendingPathComponent(name), encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let level = read("level").flatMap({ Int($0) }), let type = read("type"), type != "Instruction",
                  let bytes = read("size").flatMap(cacheBytes) else { continue }
            switch level {
            case 1: caches.l1dBytes = caches.l1dBytes ?? bytes
            case 2: caches.l2Bytes = caches.l2Bytes ?? bytes
            case 3: caches.l3Bytes = caches.l3Bytes ?? bytes
            default: continue
            }
        }
        return caches
    }

    /// A sysfs cache size in bytes: `32K` -> 32768, `1M` -> 1048576, `512` -> 512 (the
    /// kernel writes binary units); nil for anything else.
    public static func cacheBytes(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let multipliers: [String: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(trimmed)
        var multiplier = 1
        if let last = trimmed.last, let m = multipliers[last.uppercased()] {
            multiplier = m
            digits = trimmed.dropLast()
        }
        guard let value = Int(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }
}
