import Foundation
import Testing
import VernierGraph
import VernierRuntime
import VernierTestSupport
@testable import VernierPlanner

/// int8 QDQ and float16 weight storage on small seeded models: the weights dequantize back
/// within half a step of the originals (scale checked by hand), calibrated ranges are the
/// min/max of the values a separate run produces, the result passes libonnx's checker and
/// runs on the executor close to the original. Serialized like the pruning tests (one
/// oneDNN stream per process).
@Suite(.serialized) struct QuantizationTests {
    static func analyze(_ model: Model) throws -> AnalyzedModel { try ModelAnalyzer().analyze(model: model) }

    static func initializer(_ name: String, in model: Model) throws -> TensorData {
        try #require(model.graph.initializers.first { $0.name == name }, "no initializer \(name)")
    }

    static func run(_ analyzed: AnalyzedModel, _ feeds: [String: Tensor]) throws -> [String: Tensor] {
        try ExecutionPlan.compile(analyzed.inferred, opsets: analyzed.model.opsets).run(feeds)
    }

    static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return dot / (na * nb)
    }

    /// x [1,4] -> MatMul W [4,3] -> Relu -> Gemm (transB) V [2,3] -> y; and a MatMul of
    /// two activations (y^T y), which has no weight to quantize.
    static func denseModel(opset: Int = 17) -> Model {
        var m = PruningTestModels.Builder()
        m.b.opset = opset
        m.b.input("x", .float, [.value(1), .value(4)])
        m.random("W", [4, 3])
        m.random("V", [2, 3])
        m.random("c", [2])
        m.op("MatMul", ["x", "W"], "h")
        m.op("Relu", ["h"], "r")
        m.op("Gemm", ["r", "V", "c"], "y", ["transB": .int(1)])
        m.op("Transpose", ["y"], "yt")
        m.op("MatMul", ["yt", "y"], "outer")
        m.b.outputs = [ValueInfo(name: "outer", type: nil)]
        return m.b.model
    }

    @Test(arguments: [false, true])
    func weightsDequantizeWithinHalfAStepOfTheOriginals(perChannel: Bool) throws {
        let model = PruningTestModels.residual()
        let analyzed = try Self.analyze(model)
        let targets = QuantizationTargets.find(in: analyzed)
        #expect(targets.targets.map(\.nodeName) == ["stem", "conv1", "conv2", "head"])
        let samples = try ActivationCalibration.randomSamples(for: analyzed, count: 2, seed: 1)
        let ranges = try ActivationCalibration.ranges(of: targets.activations, in: analyzed, samples: samples)
        let rewritten = try ModelQuantizer.rewrite(model, targets: targets.targets, storage: .int8(perChannel: perChannel), ranges: ranges)
        for name in ["stem.w", "conv1.w", "head.w"] {
            let original = try Self.initializer(name, in: model)
            let w = try #require(WeightQuantization.floats(of: original))
            let q = try #require(try Self.initializer(name + "_int8", in: rewritten).integerValues())
            let scales = try #require(try Self.initializer(name + "_scale", in: rewritten).doubleValues())
            #expect(try Self.initializer(name + "_int8", in: rewritten).elementType == .int8)
            let channels = original.dims[0], inner = w.count / channels
            #expect(scales.count == (perChannel ? channels : 1))
            for c in 0..<channels {
                // By hand: the scale maps the largest magnitude (of the channel, or of the tensor)
                // to 127; an all-zero channel (the models zero one on purpose) gets scale 1.
                let slice = perChannel ? Array(w[(c * inner)..<((c + 1) * inner)]) : w
                let largest = Double(slice.map { abs($0) }.max() ?? 0)
                let expectedScale = largest > 0 ? largest / 127 : 1
                let scale = scales[perChannel ? c : 0]
                #expect(abs(scale - expectedScale) <= 1e-7 * max(1, expectedScale), "\(name) channel \(c)")
                for i in (c * inner)..<((c + 1) * inner) {
                    #expect(abs(Int(q[i])) <= 127)
                    #expect(abs(Double(q[i]) * scale - Double(w[i])) <= scale / 2 + 1e-7, "\(name)[\(i)]")
                }
            }
            // The float original is gone from the file: only the int8 copy remains.
            #expect(!rewritten.graph.initializers.contains { $0.name == name })
        }
    }

    @Test func calibratedRangesAreTheMinAndMaxOfTheValuesARunProduces() throws {
        let model = PruningTestModels.residual()
        let analyzed = try Self.analyze(model)
        let activations = QuantizationTargets.find(in: analyzed).activations
        #expect(activations == ["x", "a", "r1", "r2"])
        let samples = try ActivationCalibration.randomSamples(for: analyzed, count: 3, seed: 11)
        let ranges = try ActivationCalibration.ranges(of: activations, in: analyzed, samples: samples)
        for value in activations where value != "x" {
            // Independently: a model whose only output is this value, run sample by sample.
            var single = model
            single.graph.outputs = [ValueInfo(name: value, type: nil)]
            let plan = try Self.analyze(single)
            var low = Double.infinity, high = -Double.infinity
            for feeds in samples {
                let values = try #require(try Self.run(plan, feeds)[value]?.doubles())
                low = min(low, values.min() ?? low)
                high = max(high, values.max() ?? high)
            }
            let range = try #require(ranges[value])
            #expect(Double(range.min) == Double(Float(low)) && Double(range.max) == Double(Float(high)), "\(value): \(range) vs [\(low), \(high)]")
        }
        // The input's range is the feeds' own extremes.
        let inputs = samples.flatMap { $0["x"]?.doubles() ?? [] }
        #expect(Double(try #require(ranges["x"]).min) == inputs.min())
    }

    @Test func activationParametersFollowTheUint8Formula() {
        let p = ActivationRange(min: -1, max: 3).uint8Parameters
        #expect(p.scale == 4 / 255 && p.zeroPoint == 64)   // round(1 / (4/255)) = round(63.75)
        let relu = ActivationRange(min: 0.5, max: 2).uint8Parameters   // widened to [0, 2]
        #expect(relu.scale == 2 / 255 && relu.zeroPoint == 0)
        #expect(ActivationRange(min: 0, max: 0).uint8Parameters == (1, 0))
    }

    @Test func quantizedModelPassesLibONNXAndRunsCloseToTheOriginal() throws {
        let model = PruningTestModels.residual()
        let analyzed = try Self.analyze(model)
        let samples = try ActivationCalibration.randomSamples(for: analyzed, count: 4, seed: 5)
        let quantized = try ModelQuantizer.quantize(analyzed, storage: .int8(perChannel: true), samples: samples)
        let bytes = try ModelWriter().serialize(quantized.analyzed.model)
        #expect(LibONNX.check(strippedBytes: bytes, full: true) == .valid)
        let ops = quantized.analyzed.model.graph.nodes.map(\.opType)
        #expect(ops.filter { $0 == "QuantizeLinear" }.count == 4)      // x, a, r1, r2
        #expect(ops.filter { $0 == "DequantizeLinear" }.count == 8)    // 4 activations + 4 weights
        let feeds = try ModelInputs.random(for: analyzed.inferred, seed: 99)
        let expected = try #require(try Self.run(analyzed, feeds)["y"])
        let actual = try #require(try Self.run(quantized.analyzed, feeds)["y"])
        #expect(actual.shape == expected.shape)
        let cos = Self.cosine(try #require(expected.doubles()), try #require(actual.doubles()))
        #expect(cos > 0.99 && cos < 1, "cosine \(cos): close, but not bit-identical (it was quantized)")
    }

    @Test func nodesWithoutAStoredWeightAreSkippedWithAReason() throws {
        let analyzed = try Self.analyze(Self.denseModel())
        let targets = QuantizationTargets.find(in: analyzed)
        #expect(targets.targets.map(\.opType) == ["MatMul", "Gemm"])
        #expect(targets.targets.map(\.weightAxis) == [1, 0])   // MatMul [K,N]: N; Gemm transB [N,K]: N
        #expect(targets.skipped.count == 1)
        #expect(targets.skipped.first?.reason.contains("computed at run time") == true)
        let quantized = try ModelQuantizer.quantize(analyzed, storage: .int8(perChannel: true),
                                                    samples: try ActivationCalibration.randomSamples(for: analyzed, count: 2, seed: 3))
        let feeds = try ModelInputs.random(for: analyzed.inferred, seed: 4)
        let out = try #require(try Self.run(quantized.analyzed, feeds)["outer"])
        #expect(out.shape == [2, 2])
    }

    @Test func anAlreadyQuantizedModelHasNothingLeftToQuantize() throws {
        let analyzed = try Self.analyze(PruningTestModels.residual())
        let once = try ModelQuantizer.quantize(analyzed, storage: .int8(perChannel: true),
                                               samples: try ActivationCalibration.randomSamples(for: analyzed, count: 1, seed: 1))
        let targets = QuantizationTargets.find(in: once.analyzed)
        #expect(targets.targets.isEmpty)
        #expect(targets.skipped.count == 4 && targets.skipped.allSatisfy { $0.reason.contains("already quantized") }, "\(targets.skipped)")
        #expect(throws: QuantizationError.self) { try ModelQuantizer.quantize(once.analyzed, storage: .float16, samples: []) }
    }

    @Test func perChannelNeedsOpset13() throws {
        let analyzed = try Self.analyze(Self.denseModel(opset: 12))
        let targets = QuantizationTargets.find(in: analyzed).targets
        #expect(throws: QuantizationError.self) {
            try ModelQuantizer.rewrite(analyzed.model, targets: targets, storage: .int8(perChannel: true),
                                       ranges: ["x": ActivationRange(min: -1, max: 1), "r": ActivationRange(min: 0, max: 1)])
        }
        // Per tensor works from opset 10.
        let model = try ModelQuantizer.rewrite(analyzed.model, targets: targets, storage: .int8(perChannel: false),
                                               ranges: ["x": ActivationRange(min: -1, max: 1), "r": ActivationRange(min: 0, max: 1)])
        _ = try Self.analyze(model)
    }

    @Test func float16StorageHalvesTheWeightBytesAndKeepsTheOutputs() throws {
        let model = PruningTestModels.residual()
        let analyzed = try Self.analyze(model)
        let quantized = try ModelQuantizer.quantize(analyzed, storage: .float16, samples: [])
        let weights = ["stem.w", "conv1.w", "conv2.w", "head.w"]
        let before = try weights.reduce(0) { $0 + (try Self.initializer($1, in: model)).byteCount }
        let after = try weights.reduce(0) { $0 + (try Self.initializer($1 + "_fp16", in: quantized.analyzed.model)).byteCount }
        #expect(after * 2 == before)
        #expect(try weights.allSatisfy { try Self.initializer($0 + "_fp16", in: quantized.analyzed.model).elementType == .float16 })
        let bytes = try ModelWriter().serialize(quantized.analyzed.model)
        #expect(LibONNX.check(strippedBytes: bytes, full: true) == .valid)
        let feeds = try ModelInputs.random(for: analyzed.inferred, seed: 8)
        let expected = try #require(try Self.run(analyzed, feeds)["y"]?.doubles())
        let actual = try #require(try Self.run(quantized.analyzed, feeds)["y"]?.doubles())
        let worst = zip(expected, actual).map { abs($0 - $1) }.max() ?? .infinity
        let largest = expected.map(abs).max() ?? 0
        #expect(worst <= 2e-3 * max(1, largest), "float16 weights: \(worst)")
    }

    @Test func float16RoundsToNearestEven() {
        #expect(WeightQuantization.halfBits(1) == 0x3C00)
        #expect(WeightQuantization.halfBits(-2) == 0xC000)
        #expect(WeightQuantization.halfBits(65504) == 0x7BFF)
        #expect(WeightQuantization.halfBits(1e6) == 0x7C00)
        #expect(WeightQuantization.halfBits(Float(sign: .plus, exponent: -24, significand: 1)) == 0x0001)
        // 1 + 2^-11 lies halfway between 1 and the next half; even is 1.
        #expect(WeightQuantization.halfBits(1 + Float(sign: .plus, exponent: -11, significand: 1)) == 0x3C00)
        for v: Float in [0.1, -3.14159, 1e-5, 1234.5] {
            #expect(abs(halfToFloatForTest(WeightQuantization.halfBits(v)) - v) <= abs(v) * 1e-3 + 3e-8)   // subnormal halves: steps of 2^-24
        }
    }

    @Test func calibrationArraysSplitIntoSamples() throws {
        let analyzed = try Self.analyze(PruningTestModels.residual())   // input x: [1, 3, 8, 8]
        let batch = Tensor(shape: [4, 3, 8, 8], values: (0..<768).map { Float($0) })
        let samples = try ActivationCalibration.samples(from: [(name: "x", tensor: batch)], for: analyzed)
        #expect(samples.count == 4)
        #expect(samples[2]["x"]?.shape == [1, 3, 8, 8])
        #expect(samples[2]["x"]?.doubles()?.first == 384)
        let single = Tensor(shape: [3, 8, 8], values: [Float](repeating: 1, count: 192))
        #expect(try ActivationCalibration.samples(from: [(name: "x", tensor: single)], for: analyzed).count == 1)
        #expect(throws: CalibrationError.self) {
            try ActivationCalibration.samples(from: [(name: "x", tensor: Tensor(shape: [3, 3, 8, 7], values: [Float](repeating: 0, count: 504)))], for: analyzed)
        }
        #expect(throws: CalibrationError.self) {
            try ActivationCalibration.samples(from: [(name: "input", tensor: single)], for: analyzed)
        }
    }

    func halfToFloatForTest(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
}
