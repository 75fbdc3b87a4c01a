/// Device profiles shipped with Vernier for machines the user may not have at hand.
/// Their roofs are derived from public specs (the arithmetic is in each profile's notes,
/// so it can be checked), not measured: labelled `spec-derived`, and their predictions
/// uncalibrated until `vernier device --calibrate` fits them on profiles measured there.
///
/// Conventions for every profile: peak = cores x clock x FLOPs per cycle per core from
/// the core's vector units; sustained bandwidth = half the DRAM interface's theoretical
/// rate (what STREAM-style copies typically reach on such boards), split as one core
/// reaching half of it; int8 from the core's widest integer multiply-accumulate.
public enum BuiltinDevices {
    /// All built-in profiles, by name.
    public static let all: [DeviceProfile] = [raspberryPi4, raspberryPi5, jetsonOrinNano, laptopX86]

    public static func named(_ name: String) -> DeviceProfile? { all.first { $0.name == name } }

    /// Roofs at 1...cores threads: compute scales with cores, bandwidth with cores up to
    /// the sustained figure (one core reaches `singleCoreShare` of it).
    static func roofs(cores: Int, clockGHz: Double, fp32PerCycle: Double, int8PerCycle: Double?, fp16PerCycle: Double?,
                      sustainedGBps: Double, singleCoreShare: Double = 0.5) -> [DeviceProfile.Roof] {
        (1...cores).map { t in
            let n = Double(t)
            return DeviceProfile.Roof(threads: t, fp32Gflops: n * clockGHz * fp32PerCycle,
                                      int8Gops: int8PerCycle.map { n * clockGHz * $0 },
                                      fp16Gflops: fp16PerCycle.map { n * clockGHz * $0 },
                                      bandwidthGBps: min(sustainedGBps, n * singleCoreShare * sustainedGBps))
        }
    }

    /// Raspberry Pi 4 Model B: Broadcom BCM2711, 4 x Cortex-A72 at 1.5 GHz, LPDDR4-3200
    /// on a 32-bit bus.
    public static let raspberryPi4 = DeviceProfile(
        name: "rpi4", cpu: "Broadcom BCM2711 (4 x Cortex-A72 @ 1.5 GHz)", source: .specDerived, cores: 4,
        isa: ["neon"], caches: .init(l1dBytes: 32 << 10, l2Bytes: 1 << 20, l3Bytes: nil),
        roofs: roofs(cores: 4, clockGHz: 1.5, fp32PerCycle: 16, int8PerCycle: 32, fp16PerCycle: nil, sustainedGBps: 6.4),
        notes: """
        spec-derived, uncalibrated. Raspberry Pi 4 Model B product brief (raspberrypi.com): BCM2711, \
        quad Cortex-A72 1.5 GHz, LPDDR4-3200. Arm Cortex-A72 Software Optimization Guide (UAN 0016A): two \
        128-bit FP/ASIMD pipes, FMLA on both: 2 x 4 lanes x 2 = 16 fp32 FLOP/cycle; no dot-product \
        instructions, int8 via widening multiply-accumulate: 32 op/cycle. DRAM 3200 MT/s x 4 bytes = \
        12.8 GB/s theoretical, 6.4 GB/s taken as sustained. L2 1 MiB shared by the 4 cores.
        """)

    /// Raspberry Pi 5: Broadcom BCM2712, 4 x Cortex-A76 at 2.4 GHz, LPDDR4X-4267 on a
    /// 32-bit bus.
    public static let raspberryPi5 = DeviceProfile(
        name: "rpi5", cpu: "Broadcom BCM2712 (4 x Cortex-A76 @ 2.4 GHz)", source: .specDerived, cores: 4,
        isa: ["neon", "dotprod", "fp16"], caches: .init(l1dBytes: 64 << 10, l2Bytes: 512 << 10, l3Bytes: 2 << 20),
        roofs: roofs(cores: 4, clockGHz: 2.4, fp32PerCycle: 16, int8PerCycle: 64, fp16PerCycle: 32, sustainedGBps: 8.5),
        notes: """
        spec-derived, uncalibrated. Raspberry Pi 5 product brief (raspberrypi.com): BCM2712, quad Cortex-A76 \
        2.4 GHz, 512 KiB L2 per core, 2 MiB shared L3, LPDDR4X-4267. Arm Cortex-A76 Software Optimization \
        Guide: two 128-bit ASIMD pipes (V0, V1) with FMLA on both: 16 fp32 FLOP/cycle, 32 fp16; SDOT on \
        both: 2 x 16 MAC = 64 int8 op/cycle. DRAM 4267 MT/s x 4 bytes = 17.1 GB/s theoretical, 8.5 GB/s \
        taken as sustained.
        """)

    /// NVIDIA Jetson Orin Nano 8 GB, CPU only: 6 x Cortex-A78AE at 1.5 GHz, 128-bit
    /// LPDDR5 at 68 GB/s (shared with the GPU).
    public static let jetsonOrinNano = DeviceProfile(
        name: "orin-nano", cpu: "NVIDIA Jetson Orin Nano 8GB CPU (6 x Cortex-A78AE @ 1.5 GHz)", source: .specDerived, cores: 6,
        isa: ["neon", "dotprod", "fp16"], caches: .init(l1dBytes: 64 << 10, l2Bytes: 256 << 10, l3Bytes: 2 << 20),
        roofs: roofs(cores: 6, clockGHz: 1.5, fp32PerCycle: 16, int8PerCycle: 64, fp16PerCycle: 32, sustainedGBps: 34, singleCoreShare: 0.3),
        notes: """
        spec-derived, uncalibrated. NVIDIA Jetson Orin Nano series data sheet: 6-core Arm Cortex-A78AE v8.2 \
        up to 1.5 GHz, 256 KiB L2 per core, 2 MiB L3; 8 GB 128-bit LPDDR5, 68 GB/s. Cortex-A78 keeps the \
        A76's two 128-bit FMLA/SDOT pipes: 16 fp32 FLOP/cycle, 32 fp16, 64 int8 op/cycle. 34 GB/s taken as \
        sustained for the CPU cluster, one core reaching 30% of it. The GPU and DLA are not modelled.
        """)

    /// A 4-core laptop x86: Intel Core i5-1135G7 (Tiger Lake), 4 cores / 8 threads,
    /// AVX-512 with VNNI, LPDDR4x-4266 dual channel.
    public static let laptopX86 = DeviceProfile(
        name: "laptop-x86", cpu: "Intel Core i5-1135G7 (4 cores @ 2.4 GHz base)", source: .specDerived, cores: 4,
        isa: ["avx2", "fma", "avx512f", "avx512_vnni"], caches: .init(l1dBytes: 48 << 10, l2Bytes: 1280 << 10, l3Bytes: 8 << 20),
        roofs: roofs(cores: 4, clockGHz: 2.4, fp32PerCycle: 32, int8PerCycle: 128, fp16PerCycle: nil, sustainedGBps: 34, singleCoreShare: 0.4),
        notes: """
        spec-derived, uncalibrated. Intel ARK, Core i5-1135G7: 4 cores, 8 threads, 2.4 GHz base (4.2 GHz \
        turbo, not sustained under AVX-512 on all cores), 8 MiB cache, LPDDR4x-4266 up to 68.3 GB/s; \
        Tiger Lake client cores have one 512-bit FMA unit: 16 lanes x 2 = 32 fp32 FLOP/cycle; VNNI \
        VPDPBUSD 512-bit: 64 MAC = 128 int8 op/cycle. Base clock taken as the all-core AVX-512 clock; 34 \
        GB/s taken as sustained, one core reaching 40% of it. Threads beyond the 4 cores add nothing.
        """)
}
