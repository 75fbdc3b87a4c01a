import Foundation
import Yams

/// What a machine can do, as the roofline model sees it: peak arithmetic rate and memory
/// bandwidth per thread count, and its cache sizes. `vernier device --measure` measures
/// the host's; profiles of other machines come from public specs (and, once calibrated,
/// from measured runs there).
///
/// Stored as JSON (`vernier.device/1`); every field name is snake_case in the file. A
/// field added later is optional, so older files stay readable.
public struct DeviceProfile: Codable, Sendable, Equatable {
    /// Bumped only when a field is removed or renamed.
    public static let currentSchema = "vernier.device/1"

    /// How the numbers were obtained.
    public enum Source: String, Codable, Sendable {
        /// Measured on the machine by `vernier device --measure`.
        case measured
        /// Derived from a public spec sheet; not checked on the machine.
        case specDerived = "spec-derived"
    }

    /// The roofs at one thread count.
    public struct Roof: Codable, Sendable, Equatable {
        public var threads: Int
        /// Peak fp32 rate (GFLOP/s, one multiply-add = 2 FLOPs) reached by a large GEMM.
        public var fp32Gflops: Double
        /// Peak int8 rate (GOP/s, one multiply-add = 2 ops) when known.
        public var int8Gops: Double?
        /// Peak fp16 rate (GFLOP/s) when the device computes in fp16 natively.
        public var fp16Gflops: Double?
        /// Sustained memory bandwidth (GB/s = 1e9 bytes/s, bytes read + bytes written)
        /// of a copy much larger than the last-level cache.
        public var bandwidthGBps: Double

        public init(threads: Int, fp32Gflops: Double, int8Gops: Double? = nil, fp16Gflops: Double? = nil, bandwidthGBps: Double) {
            self.threads = threads
            self.fp32Gflops = fp32Gflops
            self.int8Gops = int8Gops
            self.fp16Gflops = fp16Gflops
            self.bandwidthGBps = bandwidthGBps
        }

        enum CodingKeys: String, CodingKey {
            case threads, fp32Gflops = "fp32_gflops", int8Gops = "int8_gops", fp16Gflops = "fp16_gflops", bandwidthGBps = "bandwidth_gbps"
        }
    }

    /// Cache sizes in bytes (per core for L1d and L2, the whole cache for L3 as the OS
    /// reports it); nil when unknown.
    public struct Caches: Codable, Sendable, Equatable {
        public var l1dBytes: Int?
        public var l2Bytes: Int?
        public var l3Bytes: Int?

        public init(l1dBytes: Int? = nil, l2Bytes: Int? = nil, l3Bytes: Int? = nil) {
            self.l1dBytes = l1dBytes
            self.l2Bytes = l2Bytes
            self.l3Bytes = l3Bytes
        }

        enum CodingKeys: String, CodingKey {
            case l1dBytes = "l1d_bytes", l2Bytes = "l2_bytes", l3Bytes = "l3_bytes"
        }
    }

    public var schema: String
    /// Short name (`host`, `rpi4`), used by `--device NAME`.
    public var name: String
    /// The processor, e.g. "AMD EPYC 7B13".
    public var cpu: String
    public var source: Source
    /// When the numbers were measured (ISO 8601), for measured profiles.
    public var measuredAt: String?
    /// Logical cores the OS reports.
    public var cores: Int
    /// Vector instruction sets that matter to the kernels (avx2, fma, avx512f, neon, ...).
    public var isa: [String]
    public var caches: Caches
    /// One entry per measured thread count, ascending.
    public var roofs: [Roof]
    /// Where the spec figures come from, for spec-derived profiles.
    public var notes: String?
    /// Efficiency curves and overheads for prediction; nil means the built-in priors.
    public var efficiency: EfficiencyModel?

    public init(name: String, cpu: String, source: Source, measuredAt: String? = nil, cores: Int, isa: [String],
                caches: Caches, roofs: [Roof], notes: String? = nil, efficiency: EfficiencyModel? = nil) {
        self.schema = Self.currentSchema
        self.name = name
        self.cpu = cpu
        self.source = source
        self.measuredAt = measuredAt
        self.cores = cores
        self.isa = isa
        self.caches = caches
        self.roofs = roofs.sorted { $0.threads < $1.threads }
        self.notes = notes
        self.efficiency = efficiency
    }

    enum CodingKeys: String, CodingKey {
        case schema, name, cpu, source, measuredAt = "measured_at", cores, isa, caches, roofs, notes, efficiency
    }

    /// The efficiency model prediction uses: the fitted one, else the priors.
    public var effectiveEfficiency: EfficiencyModel {
        efficiency ?? .priors(threadCounts: roofs.map(\.threads))
    }

    /// Whether predictions on this profile rest on a calibration.
    public var isCalibrated: Bool { efficiency?.calibrated ?? false }

    /// The channel block of the CPU's fp32 convolution layouts (oneDNN's `nChw16c` with
    /// AVX-512, `nChw8c` with AVX2); nil for other CPUs. Prediction and calibration count
    /// convolutions' work in whole blocks (`KernelSample.paddedToChannelBlocks`).
    public var channelBlock: Int? { isa.contains("avx512f") ? 16 : isa.contains("avx2") ? 8 : nil }

    /// The roof at `threads`: the entry for that count, else the nearest measured count
    /// below it (more threads than were measured gain nothing we know of), else the
    /// smallest. Nil only when the profile has no roofs.
    public func roof(threads: Int) -> Roof? {
        if let exact = roofs.first(where: { $0.threads == threads }) { return exact }
        return roofs.last(where: { $0.threads < threads }) ?? roofs.first
    }

    /// The roofline at `threads` for work of the given precision.
    public func roofline(threads: Int, integer: Bool = false) -> Roofline? {
        guard let roof = roof(threads: threads) else { return nil }
        let peak = integer ? (roof.int8Gops ?? roof.fp32Gflops) : roof.fp32Gflops
        return Roofline(peakGflops: peak, bandwidthGBps: roof.bandwidthGBps)
    }
}

// MARK: - Reading and writing

/// Problems with a device profile file.
public enum DeviceProfileError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read device profile \(path): \(reason)"
        case .invalid(let path, let reason):
            return "\(path) is not a valid device profile (\(reason)); measure this machine again with `vernier device --measure`"
        }
    }
}

extension DeviceProfile {
    /// The profile as pretty-printed JSON with sorted keys (stable diffs); slashes stay
    /// as they are (`vernier.device/1`, not `vernier.device\/1`).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    /// Reads and checks a profile: schema, at least one roof, positive figures. Files
    /// ending in `.yaml` or `.yml` are YAML with the same fields; others JSON.
    public static func load(path: String) throws -> DeviceProfile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw DeviceProfileError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, path: path, yaml: path.hasSuffix(".yaml") || path.hasSuffix(".yml"))
    }

    static func decode(_ data: Data, path: String, yaml: Bool = false) throws -> DeviceProfile {
        let profile: DeviceProfile
        do {
            if yaml {
                guard let text = String(data: data, encoding: .utf8) else {
                    throw DeviceProfileError.invalid(path: path, reason: "not UTF-8 text")
                }
                profile = try YAMLDecoder().decode(DeviceProfile.self, from: text)
            } else {
                profile = try JSONDecoder().decode(DeviceProfile.self, from: data)
            }
        } catch let error as DeviceProfileError {
            throw error
        } catch {
            throw DeviceProfileError.invalid(path: path, reason: "\(error)".split(separator: "\n").first.map(String.init) ?? "bad JSON")
        }
        guard profile.schema.hasPrefix("vernier.device/") else {
            throw DeviceProfileError.invalid(path: path, reason: "schema \"\(profile.schema)\", expected \(currentSchema)")
        }
        guard !profile.roofs.isEmpty else { throw DeviceProfileError.invalid(path: path, reason: "no roofs") }
        for roof in profile.roofs {
            guard roof.threads >= 1, roof.fp32Gflops > 0, roof.fp32Gflops.isFinite,
                  roof.bandwidthGBps > 0, roof.bandwidthGBps.isFinite, (roof.int8Gops ?? 1) > 0, (roof.fp16Gflops ?? 1) > 0 else {
                throw DeviceProfileError.invalid(path: path, reason: "roof at \(roof.threads) threads has a non-positive figure")
            }
        }
        for curve in profile.efficiency?.curves ?? [] {
            guard !curve.points.isEmpty, curve.points.allSatisfy({ $0.idealUs > 0 && $0.idealUs.isFinite && $0.efficiency > 0 && $0.efficiency.isFinite }) else {
                throw DeviceProfileError.invalid(path: path, reason: "an efficiency curve at \(curve.threads) threads has no points or a non-positive one")
            }
        }
        for overhead in profile.efficiency?.overheads ?? [] {
            guard overhead.perKernelUs >= 0, overhead.perRunUs >= 0, overhead.perKernelUs.isFinite, overhead.perRunUs.isFinite,
                  overhead.perRunFraction > -1, overhead.perRunFraction.isFinite,
                  overhead.betweenKernelsUs >= 0, overhead.betweenKernelsUs.isFinite else {
                throw DeviceProfileError.invalid(path: path, reason: "negative overhead at \(overhead.threads) threads")
            }
        }
        for model in profile.efficiency?.kernelModels ?? [] where !model.weights.values.allSatisfy({ $0 >= 0 && $0.isFinite }) {
            throw DeviceProfileError.invalid(path: path, reason: "the \(model.opClass.rawValue) kernel model at \(model.threads) threads has a negative or non-finite weight")
        }
        return profile
    }
}
