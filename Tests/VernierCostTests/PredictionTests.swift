import Foundation
import Testing
import VernierTestSupport
import VernierGraph
@testable import VernierCost

/// Latency prediction: op classes, efficiency curves, calibration, leave-one-out, the
/// profile inputs it reads, and the built-in device profiles.
struct PredictionTests {
    /// A device with round numbers: 100 GFLOP/s and 10 GB/s at 1 thread (ridge 10
    /// FLOP/B), twice both at 2 threads, 400 int8 GOP/s.
    func device() -> DeviceProfile {
        DeviceProfile(name: "test", cpu: "test cpu", source: .specDerived, cores: 2, isa: [], caches: .init(),
                      roofs: [.init(threads: 1, fp32Gflops: 100, int8Gops: 400, bandwidthGBps: 10),
                              .init(threads: 2, fp32Gflops: 200, int8Gops: 800, bandwidthGBps: 20)])
    }

    @Test func depthwiseConvolutionIsToldApartByItsWeightShape() {
        #expect(OpClass.classify(opType: "Conv", weightShape: [32, 1, 3, 3], inputChannels: 32) == .depthwiseConv)
        #expect(OpClass.classify(opType: "Conv", weightShape: [32, 16, 3, 3], inputChannels: 16) == .conv)
        // One input channel (a stem on a grey image) is a dense conv, not a depthwise one.
        #expect(OpClass.classify(opType: "Conv", weightShape: [8, 1, 3, 3], inputChannels: 1) == .conv)
        #expect(OpClass.classify(opType: "FusedConv", weightShape: [64, 1, 5, 5], inputChannels: 64) == .depthwiseConv)
        #expect(OpClass.classify(opType: "com.microsoft.FusedMatMul") == .matmul)
        #expect(OpClass.classify(opType: "LayerNormalization") == .normalization)
        #expect(OpClass.classify(opType: "Transpose") == .dataMovement)
        #expect(OpClass.classify(opType: "ReduceMean") == .reduce)
        #expect(OpClass.classify(opType: "Sigmoid") == .elementwise)
        #expect(OpClass.classify(opType: "LSTM") == .recurrent)
    }

    @Test func elementwiseOpsOnInt8ValuesAreQuantizationWork() {
        let dq = "DequantizeLinear", q = "QuantizeLinear"
        #expect(OpClass.ofGroup(anchorClass: .elementwise, opTypes: [dq, dq, "Add", q]) == .quantization)
        #expect(OpClass.ofGroup(anchorClass: .elementwise, opTypes: ["com.microsoft.QLinearAdd"]) == .quantization)
        #expect(OpClass.ofGroup(anchorClass: .elementwise, opTypes: ["Mul"]) == .elementwise)
        #expect(OpClass.ofGroup(anchorClass: .elementwise, opTypes: ["Sigmoid", "Mul"]) == .elementwise)
        // Only element-wise groups: a QDQ convolution stays a convolution.
        #expect(OpClass.ofGroup(anchorClass: .conv, opTypes: [dq, dq, "Conv", q]) == .conv)
        // Read from a profile that called the group element-wise, and from ONNX Runtime.
        #expect(ORTKernelCost.estimate(op: "QLinearMul", inputs: [], outputs: []).opClass == .quantization)
    }

    /// On a CPU with 16-channel layouts, fp32 convolutions count their work in whole
    /// blocks where the executor keeps the tensors blocked (padding at most half a block):
    /// 144 -> 8 channels doubles, a depthwise conv of 24 channels computes 32, 3 input
    /// channels stay plain; int8 (channels-last) kernels, matrix products and CPUs
    /// without such layouts are unchanged.
    @Test func convolutionsCountTheirWorkInWholeChannelBlocks() {
        func conv(_ opClass: OpClass, _ inputChannels: Double, _ outputChannels: Double, integer: Bool = false) -> KernelSample {
            KernelSample(name: "k", opClass: opClass, ops: 1000, bytes: 10, integer: integer,
                         shape: .init(macs: 500, inputChannels: inputChannels, outputChannels: outputChannels))
        }
        let pointwise = conv(.conv, 144, 8).paddedToChannelBlocks(16)
        #expect(pointwise.ops == 2000 && pointwise.shape.macs == 1000 && pointwise.bytes == 10)
        #expect(abs(conv(.depthwiseConv, 24, 24).paddedToChannelBlocks(16).ops - 1000.0 * 32 / 24) < 1e-9)
        #expect(conv(.conv, 3, 16).paddedToChannelBlocks(16).ops == 1000, "3 channels would pad by 13: plain")
        #expect(abs(conv(.conv, 20, 40).paddedToChannelBlocks(16).ops - 1000.0 * 48 / 40) < 1e-9, "20 pads by 12: plain; 40 -> 48")
        #expect(conv(.conv, 144, 8, integer: true).paddedToChannelBlocks(16).ops == 1000)
        #expect(conv(.matmul, 144, 8).paddedToChannelBlocks(16).ops == 1000)
        #expect(conv(.conv, 144, 8).paddedToChannelBlocks(nil).ops == 1000)
        #expect(conv(.conv, 144, 8).paddedToChannelBlocks(8).ops == 1000)

        var avx512 = device()
        avx512.isa = ["avx2", "avx512f"]
        #expect(avx512.channelBlock == 16 && device().channelBlock == nil)
        // Prediction sees the padded work: twice the ideal time with the blocks.
        let plain = device().predict(conv(.conv, 144, 8), threads: 1)?.idealUs ?? 0
        let blocked = avx512.predict(conv(.conv, 144, 8), threads: 1)?.idealUs ?? 0
        #expect(plain > 0 && abs(blocked - 2 * plain) < 1e-9 * plain)
    }

    @Test func curvesInterpolateInLogSizeAndHoldFlatBeyondTheEnds() {
        let curve = EfficiencyModel.Curve(opClass: .conv, bound: nil, threads: 1,
                                          points: [.init(idealUs: 100, efficiency: 0.8), .init(idealUs: 1, efficiency: 0.2)],
                                          samples: 10)
        #expect(curve.points.map(\.idealUs) == [1, 100])   // sorted on creation
        #expect(curve.efficiency(atIdealUs: 0.01) == 0.2)
        #expect(curve.efficiency(atIdealUs: 1e6) == 0.8)
        // 10 us is halfway between 1 and 100 in log scale.
        #expect(abs(curve.efficiency(atIdealUs: 10) - 0.5) < 1e-12)
    }

    @Test func idealTimeIsTheSlowerRoofAndIntegerWorkUsesTheInt8Roof() throws {
        let d = device()
        // 1e6 FLOPs at 100 GFLOP/s = 10 us; 1e4 bytes at 10 GB/s = 1 us: compute-bound.
        let compute = try #require(d.idealTime(of: KernelSample(name: "c", opClass: .conv, ops: 1e6, bytes: 1e4, integer: false), threads: 1))
        #expect(abs(compute.us - 10) < 1e-9 && compute.bound == .compute)
        let memory = try #require(d.idealTime(of: KernelSample(name: "m", opClass: .elementwise, ops: 1e3, bytes: 1e6, integer: false), threads: 2))
        #expect(abs(memory.us - 50) < 1e-9 && memory.bound == .memory)   // 1e6 B at 20 GB/s
        let int8 = try #require(d.idealTime(of: KernelSample(name: "q", opClass: .conv, ops: 4e6, bytes: 1e3, integer: true), threads: 1))
        #expect(abs(int8.us - 10) < 1e-9)   // 4e6 ops at 400 GOP/s
    }

    /// Kernels measured as roofline time / efficiency + overhead, with a known efficiency
    /// per class and a known overhead.
    func synthetic(model: String, threads: Int = 1, convEfficiency: Double = 0.5, elementwiseEfficiency: Double = 0.25,
                   overheadUs: Double = 3, sizes: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]) -> ModelSamples {
        let d = device()
        var kernels: [KernelSample] = []
        for (i, size) in sizes.enumerated() {
            // Conv: compute-bound, `size` us of roofline time; Add: memory-bound.
            let roof = d.roof(threads: threads)!
            var conv = KernelSample(name: "\(model).conv\(i)", opClass: .conv, ops: size * roof.fp32Gflops * 1e3, bytes: 1e3, integer: false)
            conv.measuredUs = size / convEfficiency + overheadUs
            var add = KernelSample(name: "\(model).add\(i)", opClass: .elementwise, ops: 1, bytes: size * roof.bandwidthGBps * 1e3, integer: false)
            add.measuredUs = size / elementwiseEfficiency + overheadUs
            kernels += [conv, add]
        }
        let sum = kernels.reduce(0) { $0 + $1.measuredUs! }
        return ModelSamples(model: model, runtime: .vernier, threads: threads, kernels: kernels, endToEndUs: sum + 20)
    }

    @Test func calibrationRecoversKnownEfficienciesAndOverheads() throws {
        // b's kernels are three times a's: the run overhead (20 us constant) is then
        // told apart from a share of the kernels' time.
        let fitted = try device().calibrated(on: [synthetic(model: "a"),
                                                  synthetic(model: "b", sizes: [3, 6, 15, 30, 60, 150, 300, 600, 1500, 3000])],
                                             fittedAt: "now")
        let model = try #require(fitted.efficiency)
        #expect(model.calibrated && model.fittedOn.count == 2 && model.sampleCount == 40)
        let overhead = model.overhead(threads: 1)
        #expect(abs(overhead.perKernelUs - 3) < 1e-6)
        // 20 us outside the 20 kernels of each run: 1 us between kernels.
        #expect(abs(overhead.betweenKernelsUs - 1) < 1e-6 && abs(overhead.perRunFraction) < 1e-9 && overhead.perRunUs == 0)
        for size in [1.0, 7, 300, 5000] {
            let conv = try #require(fitted.predict(KernelSample(name: "x", opClass: .conv, ops: size * 1e5, bytes: 1, integer: false), threads: 1))
            #expect(abs(conv.predictedUs - (size / 0.5 + 3)) < 1e-6 * (size / 0.5 + 3))
            let add = try #require(fitted.predict(KernelSample(name: "y", opClass: .elementwise, ops: 1, bytes: size * 1e4, integer: false), threads: 1))
            #expect(abs(add.predictedUs - (size / 0.25 + 3)) < 1e-6 * (size / 0.25 + 3))
        }
        // A class never seen falls back to the curve over every class (between the two).
        let pool = try #require(fitted.predict(KernelSample(name: "p", opClass: .pooling, ops: 1, bytes: 1e5, integer: false), threads: 1))
        #expect(pool.efficiency > 0.2 && pool.efficiency < 0.55)
    }

    @Test func runOverheadLeavesOutAProfileWhoseKernelsWereTimedApartFromItsRuns() {
        // Runs take 2% more than their kernels plus 0.5 us per kernel; one profile's
        // kernels sum to more than its runs (timed while the machine was busier).
        var runs = [(100.0, 17), (1_000, 40), (10_000, 60), (100_000, 300), (1_000_000, 400)].map {
            (kernelSum: $0.0, kernels: $0.1, run: $0.0 * 1.02 + 0.5 * Double($0.1))
        }
        let clean = Calibrator.runOverhead(runs)
        #expect(abs(clean.fraction - 0.02) < 1e-9 && abs(clean.betweenKernelsUs - 0.5) < 1e-6)
        runs.append((kernelSum: 50_000, kernels: 100, run: 39_500))
        let withOutlier = Calibrator.runOverhead(runs)
        #expect(abs(withOutlier.fraction - 0.02) < 1e-9 && abs(withOutlier.betweenKernelsUs - 0.5) < 1e-6)
        // One profile cannot split its time outside kernels between the two terms: all
        // of it goes to the fraction, which then reproduces that profile exactly.
        let single = Calibrator.runOverhead([(kernelSum: 3_000, kernels: 30, run: 3_300)])
        #expect(abs(single.fraction - 0.1) < 1e-9 && single.betweenKernelsUs == 0)
    }

    @Test func leaveOneOutNeverPredictsAModelFromItsOwnMeasurements() throws {
        // a and b run at the same efficiency; c is twice as slow. Held out, c is
        // predicted from a and b only: its prediction is half its measured latency.
        let sets = [synthetic(model: "a"), synthetic(model: "b"),
                    synthetic(model: "c", convEfficiency: 0.25, elementwiseEfficiency: 0.125, overheadUs: 3)]
        let accuracy = try PredictionAccuracy.leaveOneOut(base: device(), calibration: sets, targets: sets)
        let byModel = Dictionary(uniqueKeysWithValues: accuracy.models.map { ($0.model, $0) })
        let c = try #require(byModel["c"])
        #expect(c.errorPercent < -35)
        // a is predicted from b and c (a mix of the two speeds): too slow, but less so.
        let a = try #require(byModel["a"])
        #expect(a.errorPercent > 0)
        // Per class, c's measured kernel time is its own, and its conv kernels carry
        // their share of the miss.
        let cConv = try #require(c.byClass.first { $0.opClass == .conv })
        let cAdd = try #require(c.byClass.first { $0.opClass == .elementwise })
        #expect(c.byClass.count == 2 && cConv.kernels == 10 && cAdd.kernels == 10)
        let held = try #require(sets.last)
        #expect(abs(cConv.measuredUs + cAdd.measuredUs - held.kernelSumUs) < 1e-9 * held.kernelSumUs)
        #expect(cConv.predictedUs < 0.6 * cConv.measuredUs)
        let summary = try #require(accuracy.endToEnd)
        #expect(summary.count == 3 && summary.within10Percent < 100)
        #expect(abs(summary.rmspe - (accuracy.models.map { $0.errorPercent * $0.errorPercent }.reduce(0, +) / 3).squareRoot()) < 1e-9)
    }

    @Test func accuracyFiguresCountErrorsWithinTheirBands() throws {
        let s = try #require(PredictionAccuracy.Summary(errorsPercent: [5, -9.9, 15, -30]))
        #expect(s.count == 4 && s.within10Percent == 50 && s.within20Percent == 75)
        #expect(abs(s.rmspe - ((25 + 98.01 + 225 + 900) / 4.0).squareRoot()) < 1e-9)
        #expect(abs(s.medianAbsoluteErrorPercent - 12.45) < 1e-9)   // between 9.9 and 15
        #expect(PredictionAccuracy.Summary(errorsPercent: []) == nil)
    }

    @Test func onnxRuntimeTracesGiveKernelsWithCostsFromTheirShapes() throws {
        let events = """
        [
          {"cat": "Session", "name": "model_run", "dur": 900},
          {"cat": "Node", "name": "conv1_kernel_time", "dur": 40, "args": {"op_name": "FusedConv",
            "input_type_shape": [{"float": [1, 3, 32, 32]}, {"float": [16, 3, 3, 3]}, {"float": [16]}],
            "output_type_shape": [{"float": [1, 16, 32, 32]}]}},
          {"cat": "Node", "name": "conv1_fence_before", "dur": 0, "args": {"op_name": "FusedConv"}},
          {"cat": "Node", "name": "fc_kernel_time", "dur": 10, "args": {"op_name": "Gemm",
            "input_type_shape": [{"float": [1, 64]}, {"float": [10, 64]}, {"float": [10]}],
            "output_type_shape": [{"float": [1, 10]}]}},
          {"cat": "Session", "name": "model_run", "dur": 100},
          {"cat": "Node", "name": "conv1_kernel_time", "dur": 60, "args": {"op_name": "FusedConv",
            "input_type_shape": [{"float": [1, 3, 32, 32]}, {"float": [16, 3, 3, 3]}, {"float": [16]}],
            "output_type_shape": [{"float": [1, 16, 32, 32]}]}},
          {"cat": "Node", "name": "fc_kernel_time", "dur": 12, "args": {"op_name": "Gemm",
            "input_type_shape": [{"float": [1, 64]}, {"float": [10, 64]}, {"float": [10]}],
            "output_type_shape": [{"float": [1, 10]}]}},
          {"cat": "Session", "name": "model_run", "dur": 120}
        ]
        """
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ort-trace-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("tiny_cnn.t2.json").path
        try Data(events.utf8).write(to: URL(fileURLWithPath: path))
        let samples = try ModelSamples.read(path: path, ortThreads: 2)
        #expect(samples.model == "tiny_cnn" && samples.runtime == .onnxRuntime && samples.threads == 2)
        // The first model_run is warm-up: median of 100 and 120.
        #expect(samples.endToEndUs == 110)
        #expect(samples.kernels.map(\.name) == ["conv1", "fc"])
        let conv = samples.kernels[0], fc = samples.kernels[1]
        #expect(conv.opClass == .conv && conv.measuredUs == 50)
        // MACs = output elements x (C/group x kh x kw) = 16384 x 27.
        #expect(conv.ops == 2 * 16384 * 27)
        #expect(conv.bytes == 4 * Double(3 * 32 * 32 + 16 * 27 + 16 + 16 * 32 * 32))
        #expect(fc.opClass == .matmul && fc.ops == 2 * 10 * 64 && fc.measuredUs == 11)
        // The shape kernel models weigh; the trace names no fused activation.
        #expect(conv.shape == KernelSample.Shape(macs: 16384 * 27, outputElements: 16384, inputElements: 3072, inputChannels: 3,
                                                 outputChannels: 16, outputWidth: 32, anchor: "FusedConv"))
        #expect(fc.shape.macs == 640 && fc.shape.outputElements == 10)
        // The fastest of each: runs 100 (not the 900 warm-up), conv 40, fc 10.
        let fastest = try ModelSamples.read(path: path, ortThreads: 2, statistic: .min)
        #expect(fastest.endToEndUs == 100)
        #expect(fastest.kernels.map(\.measuredUs) == [40, 10])
    }

    @Test func onnxRuntimeRecurrentKernelsCountTheirWorkAsVernierDoes() {
        // The bidirectional LSTM of CostFormulaTests: X [10, 1, 16], W [2, 128, 16], R [2, 128, 32]
        // (the trace lists W and R only when they are not initializers: the second call).
        func shape(_ dims: [Int]) -> ORTKernelCost.Shape { ORTKernelCost.Shape(elementBytes: 4, dims: dims) }
        let lstm = ORTKernelCost.estimate(op: "LSTM", inputs: [shape([10, 1, 16]), shape([2, 128, 16]), shape([2, 128, 32])],
                                          outputs: [shape([10, 2, 1, 32])])
        #expect(lstm.opClass == .recurrent)
        // 10 steps x 2 directions x 4 gates x 32 hidden x (16 + 32) multiply-adds, and
        // 10 x 2 x 32 units x 23 gate FLOPs: what Vernier's own cost of the node says.
        #expect(lstm.shape.macs == 122_880)
        #expect(lstm.ops == 245_760 + 14_720)
        // Batch first (layout 1), W and R left out of the trace: the same.
        let batchFirst = ORTKernelCost.estimate(op: "LSTM", inputs: [shape([1, 10, 16]), shape([1, 256])],
                                                outputs: [shape([1, 10, 2, 32])])
        #expect(batchFirst.ops == lstm.ops)
    }

    @Test func vernierProfilesGiveKernelsWithTheirShapesAndEpilogues() throws {
        let profile = """
        {"schema": "vernier.profile/1", "totals": {"threads": 2, "latency_ms": {"median": 1.5, "min": 1.375}},
         "nodes": [{"name": "q", "op": "Add", "fused_ops": "DequantizeLinear+DequantizeLinear+Add+QuantizeLinear",
                    "op_class": "elementwise", "flops": 4, "macs": 0, "int_macs": 0, "bytes_read": 8, "bytes_written": 4,
                    "input_shapes": [[1, 4]], "output_shapes": [[1, 4]], "latency_ms": {"median": 0.001, "min": 0.001}, "share": 0},
                   {"name": "c", "op": "Conv", "fused_ops": "Conv+Sigmoid+Mul", "op_class": "conv", "flops": 100, "macs": 40,
                    "int_macs": 0, "bytes_read": 64, "bytes_written": 32, "input_shapes": [[1, 2, 2, 2]],
                    "output_shapes": [[1, 4, 2, 2]], "latency_ms": {"median": 1.25, "min": 1.125}, "share": 1}]}
        """
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vernier-profile-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("tiny.t2.json").path
        try Data(profile.utf8).write(to: URL(fileURLWithPath: path))
        let samples = try ModelSamples.read(path: path)
        #expect(samples.runtime == .vernier && samples.threads == 2 && samples.endToEndUs == 1500)
        #expect(samples.kernels.map(\.opClass) == [.quantization, .conv], "a QDQ Add is quantization work, whatever the profile says")
        let c = try #require(samples.kernels.last)
        #expect(c.measuredUs == 1250 && c.ops == 100 && c.bytes == 96)
        #expect(c.shape == KernelSample.Shape(macs: 40, outputElements: 16, inputElements: 8, inputChannels: 2, outputChannels: 4,
                                              outputWidth: 2, anchor: "Conv", epilogue: ["Sigmoid", "Mul"]))
        let fastest = try ModelSamples.read(path: path, statistic: .min)
        #expect(fastest.endToEndUs == 1375 && fastest.kernels.last?.measuredUs == 1125)
    }

    @Test func unreadableAndForeignFilesAreRefusedWithTheirPath() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("calib-bad-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let garbage = folder.appendingPathComponent("garbage.json").path
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: garbage))
        #expect(throws: CalibrationInputError.unrecognized(path: garbage)) { try ModelSamples.read(path: garbage) }
        let other = folder.appendingPathComponent("other.json").path
        try Data(#"{"schema": "vernier.compare/1"}"#.utf8).write(to: URL(fileURLWithPath: other))
        #expect(throws: CalibrationInputError.unrecognized(path: other)) { try ModelSamples.read(path: other) }
        let missing = folder.appendingPathComponent("missing.json").path
        #expect(throws: (any Error).self) { try ModelSamples.read(path: missing) }
        #expect(throws: CalibrationError.noSamples) { try device().calibrated(on: []) }
    }

    @Test func builtinProfilesAreSpecDerivedUncalibratedAndRoundTrip() throws {
        #expect(BuiltinDevices.all.count >= 3)
        #expect(Set(BuiltinDevices.all.map(\.name)).count == BuiltinDevices.all.count)
        for profile in BuiltinDevices.all {
            #expect(profile.source == .specDerived && !profile.isCalibrated)
            #expect(profile.notes?.contains("spec-derived, uncalibrated") == true)
            #expect(profile.roofs.map(\.threads) == Array(1...profile.cores))
            // Roofs grow with threads; bandwidth never falls.
            for (a, b) in zip(profile.roofs, profile.roofs.dropFirst()) {
                #expect(b.fp32Gflops > a.fp32Gflops && b.bandwidthGBps >= a.bandwidthGBps)
            }
            let decoded = try DeviceProfile.decode(try profile.jsonData(), path: profile.name)
            #expect(decoded == profile)
        }
        // Pi 4: 4 cores x 1.5 GHz x 16 FLOP/cycle.
        #expect(BuiltinDevices.named("rpi4")?.roof(threads: 4)?.fp32Gflops == 96)
    }

    @Test func aYAMLProfileReadsLikeItsJSON() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("yaml-device-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let yaml = """
        schema: vernier.device/1
        name: edgebox
        cpu: Some ARM SoC
        source: spec-derived
        cores: 2
        isa: [neon]
        caches: {l1d_bytes: 32768}
        roofs:
          - {threads: 1, fp32_gflops: 20, fp16_gflops: 40, bandwidth_gbps: 4}
          - {threads: 2, fp32_gflops: 40, bandwidth_gbps: 6}
        efficiency:
          calibrated: false
          fitted_on: []
          sample_count: 0
          overheads: [{threads: 1, per_kernel_us: 2, per_run_us: 15}]
          curves:
            - {op_class: conv, threads: 1, samples: 0, points: [{ideal_us: 1, efficiency: 0.1}, {ideal_us: 100, efficiency: 0.5}]}
        """
        let path = folder.appendingPathComponent("edgebox.yaml").path
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        let profile = try DeviceProfileStore(directory: folder.path).load(nameOrPath: path)
        #expect(profile.name == "edgebox" && profile.roofs.count == 2 && profile.roofs[0].fp16Gflops == 40)
        #expect(profile.efficiency?.curves.first?.opClass == .conv)
        let conv = try #require(profile.predict(KernelSample(name: "c", opClass: .conv, ops: 2e6, bytes: 1, integer: false), threads: 1))
        // 2e6 FLOPs at 20 GFLOP/s = 100 us at efficiency 0.5, plus 2 us.
        #expect(abs(conv.predictedUs - 202) < 1e-9)
        let roundTrip = try DeviceProfile.decode(try profile.jsonData(), path: "x")
        #expect(roundTrip == profile)
        // A curve with a non-positive point is refused.
        let bad = yaml.replacingOccurrences(of: "efficiency: 0.1}", with: "efficiency: 0}")
        #expect(throws: DeviceProfileError.self) { try DeviceProfile.decode(Data(bad.utf8), path: "bad.yaml", yaml: true) }
    }

    @Test func aStoredProfileOverridesTheBuiltinOfTheSameName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("override-\(getpid())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = DeviceProfileStore(directory: folder.path)
        #expect(try store.load(nameOrPath: "rpi5") == BuiltinDevices.raspberryPi5)
        #expect(store.origin(of: "rpi5") == "built-in")
        var calibrated = BuiltinDevices.raspberryPi5
        calibrated.efficiency = .priors(threadCounts: [1])
        calibrated.efficiency?.calibrated = true
        try store.save(calibrated, to: store.path(forName: "rpi5"))
        #expect(try store.load(nameOrPath: "rpi5").isCalibrated)
        #expect(store.origin(of: "rpi5") == store.path(forName: "rpi5"))
        #expect(throws: DeviceStoreError.self) { try store.load(nameOrPath: "no-such-board") }
    }

    /// A QDQ convolution (DequantizeLinear x3 + Conv + Relu + QuantizeLinear) runs as one
    /// integer kernel: it is predicted as a convolution, depthwise when its groups say
    /// so, not as the quantization op its group starts with.
    @Test(arguments: [(1, OpClass.conv), (16, .depthwiseConv)])
    func aQDQGroupIsClassedByItsMainOp(group: Int, expected: OpClass) throws {
        let b = GraphBuilder.qdqConv(.init(channels: 16, outputs: 16, group: group))
        let model = try GraphValidator.validate(b.model)
        let inferred = try ShapeInference().infer(model)
        let table = CostModel.table(for: AnalyzedModel(model: model, inferred: inferred, libONNXNote: nil))
        let prediction = LatencyPrediction.build(table: table, optimized: GraphPasses.optimize(inferred), device: device(), threads: 1)
        let conv = try #require(prediction.rows.first { $0.costs.fusedOpTypes.contains("Conv") })
        #expect(conv.costs.fusedOpTypes.hasPrefix("DequantizeLinear"))
        #expect(conv.costs.opClass == expected)
        #expect(conv.costs.sample.integer)
        // A lone QuantizeLinear stays in its own class.
        let quantize = prediction.rows.filter { $0.costs.fusedOpTypes == "QuantizeLinear" }
        #expect(quantize.allSatisfy { $0.costs.opClass == .quantization })
    }

    /// A Concat the executor runs without copying is predicted at the fixed cost alone,
    /// and a profile row that says so reads as a kernel that moved no bytes.
    @Test func aConcatThatCopiesNothingCostsItsFixedCost() throws {
        var b = GraphBuilder()
        b.input("x", .float, [1, 64, 28, 28].map(Dim.value))
        b.node("Relu", ["x"], ["a"])
        b.node("Sigmoid", ["x"], ["s"])
        b.node("Concat", ["a", "s"], ["y"], ["axis": .int(1)])
        b.output("y")
        let model = try GraphValidator.validate(b.model)
        let inferred = try ShapeInference().infer(model)
        let table = CostModel.table(for: AnalyzedModel(model: model, inferred: inferred, libONNXNote: nil))
        let optimized = GraphPasses.optimize(inferred)
        let concat = try #require(optimized.graph.nodes.first { $0.opType == "Concat" }).displayName
        let copying = LatencyPrediction.build(table: table, optimized: optimized, device: device(), threads: 1)
        let inPlace = LatencyPrediction.build(table: table, optimized: optimized, device: device(), threads: 1, copyFree: [concat])
        let copied = try #require(copying.rows.first { $0.costs.name == concat }?.prediction)
        let free = try #require(inPlace.rows.first { $0.costs.name == concat }?.prediction)
        #expect(free.idealUs == 0 && free.predictedUs == free.overheadUs, "\(free)")
        // 2 x 200 KB read and 400 KB written at 10 GB/s: 80 us at the roof.
        #expect(abs(copied.idealUs - 80.28) < 0.01 && copied.predictedUs > free.predictedUs + 80, "\(copied)")
        #expect(inPlace.rows.first { $0.costs.name == concat }?.costs.copiesNothing == true)

        let row: [String: Any] = ["name": concat, "op": "Concat", "flops": 0, "bytes_read": 401408, "bytes_written": 401408,
                                  "latency_ms": ["median": 0.001], "share": 1.0]
        func read(_ rowOverride: [String: Any]) throws -> KernelSample {
            let json: [String: Any] = ["totals": ["threads": 1, "latency_ms": ["median": 0.002]],
                                       "nodes": [row.merging(rowOverride) { _, new in new }]]
            return try #require(try ModelSamples.fromVernierProfile(json, model: "m", path: "m.json").kernels.first)
        }
        #expect(try read([:]).bytes == 802816)
        #expect(try read(["copies_nothing": true]).bytes == 0)
        #expect(try read([:]).relayoutBytes == 0 && read(["relayout_bytes": 5000]).relayoutBytes == 5000)
        #expect(try read([:]).implementation == nil && read([:]).winogradTile == nil)
        #expect(try read(["implementation": "jit_wino_4x3:avx512_core"]).winogradTile == 4)
        #expect(try read(["implementation": "jit_fp32_wino_2x3:avx512_core"]).winogradTile == 2)
        #expect(try read(["implementation": "jit:avx512_core"]).winogradTile == 0)
    }

    /// Conv -> Relu -> Add(x) and a Shape -> Gather chain computed at plan time.
    @Test func predictionRowsAreTheKernelsAPlanRuns() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.value(1), .value(4), .value(8), .value(8)])
        b.weight("w", [4, 4, 3, 3])
        b.node("Conv", ["x", "w"], ["c"], ["pads": .ints([1, 1, 1, 1])])
        b.node("Relu", ["c"], ["r"])
        b.node("Add", ["r", "x"], ["a"])
        b.node("Shape", ["a"], ["s"])
        b.ints("flat", [1, -1])
        b.node("Reshape", ["a", "flat"], ["y"])
        b.output("y")
        b.output("s")
        let model = try GraphValidator.validate(b.model)
        let inferred = try ShapeInference().infer(model)
        let analyzed = AnalyzedModel(model: model, inferred: inferred, libONNXNote: nil)
        let table = CostModel.table(for: analyzed)
        let prediction = LatencyPrediction.build(table: table, optimized: GraphPasses.optimize(inferred), device: device(), threads: 1)
        // Shape of a known shape is folded; Conv, Relu and Add fuse into one kernel.
        let shape = try #require(table.nodes.first { $0.opType == "Shape" })
        #expect(prediction.notRun.contains(shape.name))
        let fusedOps = prediction.rows.map(\.costs.fusedOpTypes)
        #expect(fusedOps.first?.hasPrefix("Conv") == true)
        #expect(!fusedOps.contains("Shape"))
        #expect(prediction.rows.allSatisfy { $0.prediction != nil })
        let sum = prediction.rows.reduce(0) { $0 + $1.predictedMs }
        #expect(abs(prediction.kernelSumMs - sum) < 1e-12)
        #expect(abs(prediction.rows.reduce(0) { $0 + $1.share } - 1) < 1e-9)
        #expect(prediction.totalMs > prediction.kernelSumMs)   // plus the per-run overhead of the priors
    }
}
