import Foundation
import Testing
@testable import VernierCost
import VernierReport

/// Kernel cost models: a kernel's time as a weighted sum of its multiply-adds, elements,
/// bytes and fused epilogue ops, fitted on measured kernels.
struct KernelCostModelTests {
    /// Costs a synthetic machine charges, in us per unit.
    static let pointwiseUsPerMac = 2e-5, windowUsPerMac = 1e-5, sigmoidUsPerElement = 1e-3, fixedUs = 2.0

    /// A convolution on an NCHW input with `window` taps per input channel, with or
    /// without a fused Sigmoid+Mul, measured at the synthetic machine's costs.
    static func conv(_ name: String, channels: Int, outChannels: Int, side: Int, window: Int, silu: Bool,
                     integer: Bool = false) -> KernelSample {
        let outputs = Double(outChannels * side * side)
        let macs = outputs * Double(channels * window)
        let shape = KernelSample.Shape(macs: macs, inputDims: [1, channels, side, side], outputDims: [1, outChannels, side, side],
                                       fusedOpTypes: silu ? "Conv+Sigmoid+Mul" : "Conv")
        var us = fixedUs + macs * (window == 1 ? pointwiseUsPerMac : windowUsPerMac)
        if silu { us += outputs * sigmoidUsPerElement }
        return KernelSample(name: name, opClass: .conv, ops: 2 * macs, bytes: 4 * (outputs + Double(channels * side * side)),
                            integer: integer, measuredUs: us, shape: shape)
    }

    /// 32 kernels of varied channels, sizes and windows, half with an epilogue.
    static func measuredConvs(prefix: String = "k") -> [KernelSample] {
        var out: [KernelSample] = []
        for (i, channels) in [8, 16, 32, 64].enumerated() {
            for (j, side) in [7, 14, 28, 56].enumerated() {
                for window in [1, 9] {
                    out.append(conv("\(prefix)\(i)\(j)\(window)", channels: channels, outChannels: channels * (1 + j % 2),
                                    side: side, window: window, silu: (i + j) % 2 == 0))
                }
            }
        }
        return out
    }

    @Test func fittingRecoversTheCostOfEachTerm() throws {
        let model = try #require(KernelCostModel.fit(Self.measuredConvs(), opClass: .conv, threads: 1))
        #expect(model.samples == 32)
        // The Mul has the same output elements as the Sigmoid it follows: the two split
        // the epilogue's cost between them, summing to it.
        let epilogue = (model.weights["epilogue.Sigmoid"] ?? 0) + (model.weights["epilogue.Mul"] ?? 0)
        #expect(abs(epilogue - Self.sigmoidUsPerElement) < 1e-3 * Self.sigmoidUsPerElement)
        #expect(abs((model.weights["pointwise_macs"] ?? 0) - Self.pointwiseUsPerMac) < 1e-3 * Self.pointwiseUsPerMac)
        #expect(abs((model.weights["window_macs"] ?? 0) - Self.windowUsPerMac) < 1e-3 * Self.windowUsPerMac)
        #expect(abs(model.perKernelUs - Self.fixedUs) < 1e-2)
        // A kernel of a shape it never saw is predicted by the same costs.
        let unseen = Self.conv("new", channels: 48, outChannels: 96, side: 20, window: 9, silu: true)
        let predicted = try #require(model.predictUs(unseen))
        #expect(abs(predicted - unseen.measuredUs!) < 1e-3 * unseen.measuredUs!)
    }

    @Test func anEpilogueOnlyAFewKernelsCarryIsHeldAtTheCap() throws {
        // Three convolutions end in Tanh and each runs 40 us longer than its terms
        // say, for a reason no feature sees; only the epilogue can soak that up.
        var kernels = Self.measuredConvs()
        for (i, channels) in [64, 128, 256].enumerated() {
            var k = Self.conv("se\(i)", channels: channels / 4, outChannels: channels, side: 4, window: 1, silu: false)
            k.shape = KernelSample.Shape(macs: k.shape.macs, inputDims: [1, channels / 4, 4, 4], outputDims: [1, channels, 4, 4],
                                         fusedOpTypes: "Conv+Tanh")
            k.measuredUs = (k.measuredUs ?? 0) + 40
            kernels.append(k)
        }
        let cap = 2 * Self.sigmoidUsPerElement
        let free = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect((free.weights["epilogue.Tanh"] ?? 0) > 5 * cap, "\(free.weights)")
        let capped = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1, epilogueCapUs: cap))
        #expect(capped.weights["epilogue.Tanh"] == cap)
        // Epilogues below the cap are fitted as without it.
        let silu = (capped.weights["epilogue.Sigmoid"] ?? 0) + (capped.weights["epilogue.Mul"] ?? 0)
        #expect(abs(silu - Self.sigmoidUsPerElement) < 0.1 * Self.sigmoidUsPerElement, "\(capped.weights)")
    }

    /// A clamp or piecewise-linear gate fused after a kernel is no feature: it costs
    /// nothing measurable on outputs in registers. Sigmoid, an exponential, is one.
    @Test func cheapEpiloguesAreNoFeature() throws {
        func features(_ ops: String) throws -> [String: Double] {
            let shape = KernelSample.Shape(macs: 1000, inputDims: [1, 8, 4, 4], outputDims: [1, 16, 4, 4], fusedOpTypes: ops)
            return try #require(KernelCostModel.features(of: KernelSample(name: "k", opClass: .conv, ops: 2000, bytes: 100,
                                                                           integer: false, shape: shape)))
        }
        for op in ["Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish"] {
            #expect(try features("Conv+\(op)").keys.allSatisfy { !$0.hasPrefix("epilogue.") }, "\(op)")
        }
        #expect(try features("Conv+Sigmoid+Mul")["epilogue.Sigmoid"] == 256)
    }

    @Test func weightsStayNonNegativeWhenATermExplainsNothing() throws {
        // Time from the multiply-adds alone, with noise on top: any other term's least
        // squares weight could come out negative, and negative costs are refused.
        var kernels = Self.measuredConvs()
        for i in kernels.indices {
            let macs = kernels[i].shape.macs
            kernels[i].measuredUs = 1e-5 * macs * (1 + 0.05 * sin(Double(i)))
        }
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect(model.weights.values.allSatisfy { $0 >= 0 })
        #expect((model.weights["window_macs"] ?? 0) > 0)
    }

    /// Bytes a kernel reorders between layouts are a feature of their own: on a synthetic
    /// machine charging them at 5e-5 us per byte besides the rest, the fit recovers the
    /// rate and predicts a held-out reordering kernel.
    @Test func reorderedBytesAreWeighedApart() throws {
        let usPerReorderedByte = 5e-5
        var kernels = Self.measuredConvs()
        for i in kernels.indices where i % 3 == 0 {
            kernels[i].relayoutBytes = 2 * kernels[i].bytes
            kernels[i].measuredUs = (kernels[i].measuredUs ?? 0) + usPerReorderedByte * kernels[i].relayoutBytes
        }
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect(abs((model.weights["relayout_bytes"] ?? 0) - usPerReorderedByte) < 1e-3 * usPerReorderedByte, "\(model.weights)")
        var unseen = Self.conv("new", channels: 48, outChannels: 96, side: 20, window: 9, silu: true)
        unseen.relayoutBytes = unseen.bytes
        let expected = unseen.measuredUs! + usPerReorderedByte * unseen.bytes
        #expect(abs(try #require(model.predictUs(unseen)) - expected) < 1e-3 * expected)
    }

    /// A term whose least-squares weight came out negative is dropped at 0, not left
    /// out: its kernels were measured, so the model still predicts them rather than
    /// leaving them to the class curve as kernels of a kind it never saw.
    @Test func aDroppedTermIsKeptAtZeroAndItsKernelsArePredicted() throws {
        var kernels = Self.measuredConvs()
        // Squeeze-excitation-like products on 1x1 maps that run faster than the fixed
        // cost the other kernels show: only a negative multiply-add rate would fit them.
        for (i, channels) in [64, 96, 128, 192, 256, 384, 512, 768].enumerated() {
            var k = Self.conv("se\(i)", channels: channels, outChannels: channels / 4, side: 1, window: 1, silu: false)
            k.measuredUs = 0.5 * Self.fixedUs
            kernels.append(k)
        }
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect(model.weights["vector_macs"] == 0, "\(model.weights)")
        let se = try #require(kernels.last)
        let predicted = try #require(model.predictUs(se))
        #expect(predicted > 0 && predicted < 2 * Self.fixedUs, "\(predicted)")
    }

    @Test func tooFewKernelsOrNoShapesFitNothing() {
        #expect(KernelCostModel.fit(Array(Self.measuredConvs().prefix(10)), opClass: .conv, threads: 1) == nil)
        let shapeless = Self.measuredConvs().map { k -> KernelSample in
            var k = k
            k.shape = KernelSample.Shape()
            return k
        }
        #expect(KernelCostModel.fit(shapeless, opClass: .conv, threads: 1) == nil)
    }

    @Test func integerProductsWithoutAnIntegerFitAreLeftToTheCurve() throws {
        let model = try #require(KernelCostModel.fit(Self.measuredConvs(), opClass: .conv, threads: 1))
        let int8 = Self.conv("q", channels: 64, outChannels: 64, side: 14, window: 9, silu: false, integer: true)
        #expect(model.predictUs(int8) == nil)
        // Calibrated on float kernels only, the device predicts the integer conv by its curve.
        let device = DeviceProfile(name: "t", cpu: "t", source: .specDerived, cores: 1, isa: [], caches: .init(),
                                   roofs: [.init(threads: 1, fp32Gflops: 100, int8Gops: 400, bandwidthGBps: 10)])
        let fitted = try device.calibrated(on: [ModelSamples(model: "m", runtime: .vernier, threads: 1, kernels: Self.measuredConvs(),
                                                             endToEndUs: nil)])
        let p = try #require(fitted.predict(int8, threads: 1))
        let curve = try #require(fitted.efficiency?.curve(for: .conv, bound: p.bound, threads: 1))
        #expect(abs(p.efficiency - curve.efficiency(atIdealUs: p.idealUs)) < 1e-12)
    }

    @Test func calibratedProfilesPredictByTheKernelModelAndKeepItInTheirJSON() throws {
        let device = DeviceProfile(name: "t", cpu: "t", source: .measured, cores: 2, isa: [],
                                   caches: .init(l2Bytes: 1 << 20, l3Bytes: 32 << 20),
                                   roofs: [.init(threads: 1, fp32Gflops: 100, bandwidthGBps: 10),
                                           .init(threads: 2, fp32Gflops: 200, bandwidthGBps: 20)])
        let sets = [ModelSamples(model: "a", runtime: .vernier, threads: 1, kernels: Self.measuredConvs(prefix: "a"), endToEndUs: nil)]
        let fitted = try device.calibrated(on: sets)
        let model = try #require(fitted.efficiency?.kernelModel(for: .conv, threads: 2))
        #expect(model.threads == 1)   // the nearest count that has one
        // Models of up to three quarters of the L3 count as staying there; kernels stream
        // past the L2 of each core that runs them.
        #expect(model.residentBytes == Double(24 << 20) && model.streamingBytes == Double(1 << 20))
        // A core moves 10 GB/s while it does 50 G multiply-adds/s: 0.2 bytes per one.
        #expect(model.overlapBytesPerMac.map { abs($0 - 0.2) < 1e-12 } == true)
        let shown = DeviceReport(fitted).table()
        #expect(shown.contains("count beyond 0.20 per multiply-add") && shown.contains("more than 1.0 MiB per thread"))
        #expect(fitted.efficiency?.kernelModel(for: .matmul, threads: 1) == nil)
        let unseen = Self.conv("new", channels: 24, outChannels: 24, side: 30, window: 1, silu: false)
        let p = try #require(fitted.predict(unseen, threads: 1))
        #expect(abs(p.predictedUs - unseen.measuredUs!) < 1e-3 * unseen.measuredUs!)
        #expect(abs(p.overheadUs - Self.fixedUs) < 1e-2)
        let decoded = try DeviceProfile.decode(try fitted.jsonData(), path: "t")
        #expect(decoded == fitted)
        // A profile written before kernel models existed still reads, with none.
        var old = try #require(JSONSerialization.jsonObject(with: try fitted.jsonData()) as? [String: Any])
        var efficiency = try #require(old["efficiency"] as? [String: Any])
        efficiency.removeValue(forKey: "kernel_models")
        old["efficiency"] = efficiency
        let legacy = try DeviceProfile.decode(try JSONSerialization.data(withJSONObject: old), path: "old")
        #expect(legacy.efficiency?.kernelModels.isEmpty == true)
        // A hand-edited negative cost is refused with the class named.
        var negative = fitted
        negative.efficiency?.kernelModels[0].weights["kernel"] = -1
        #expect(throws: DeviceProfileError.self) { try DeviceProfile.decode(try negative.jsonData(), path: "bad") }
    }

    @Test func profileRowsGiveTheShapeTheModelWeighs() {
        let shape = KernelSample.Shape(macs: 1000, inputDims: [1, 16, 8, 8], outputDims: [1, 32, 8, 8],
                                       fusedOpTypes: "Conv+com.microsoft.Gelu+Add")
        #expect(shape.inputChannels == 16 && shape.inputElements == 1024 && shape.outputElements == 2048)
        #expect(shape.epilogue == ["Gelu", "Add"])
        let features = KernelCostModel.features(of: KernelSample(name: "c", opClass: .conv, ops: 2000, bytes: 10, integer: false,
                                                                  shape: shape))
        // 1000 MACs over 2048 outputs x 16 channels is under one tap: a pointwise conv.
        #expect(features?["pointwise_macs"] == 1000 && features?["window_macs"] == nil)
        #expect(features?["epilogue.Gelu"] == 2048 && features?["kernel"] == 1)
        // A QDQ group's DequantizeLinears ahead of the conv are no epilogue; the
        // requantizing QuantizeLinear after it is.
        let qdq = KernelSample.Shape(macs: 1000, inputDims: [1, 16, 8, 8], outputDims: [1, 32, 8, 8],
                                     fusedOpTypes: "DequantizeLinear+DequantizeLinear+Conv+Relu+QuantizeLinear")
        #expect(qdq.anchor == "Conv" && qdq.epilogue == ["Relu", "QuantizeLinear"])
        let lone = KernelSample.Shape(macs: 0, inputDims: [4], outputDims: [4], fusedOpTypes: "QuantizeLinear")
        #expect(lone.anchor == "QuantizeLinear" && lone.epilogue.isEmpty)
    }

    /// Integer convolutions whose activation has a zero point get a rate of their own:
    /// fitted on kernels where those run at half the rate, the model gives each kind its
    /// time back; a model fitted without any predicts them at the plain integer rate.
    @Test func zeroPointProductsAreWeighedApart() throws {
        func conv(_ i: Int, zeroPoint: Bool) -> KernelSample {
            var k = Self.conv("c\(i)", channels: 16 * (1 + i % 5), outChannels: 32, side: 8 + i % 24, window: 1, silu: false,
                              integer: true)
            k.shape.sourceZeroPoint = zeroPoint
            // 1 us fixed, 1 ns per multiply-add, 2 ns with a zero point.
            k.measuredUs = 1 + k.shape.macs * (zeroPoint ? 2e-3 : 1e-3)
            return k
        }
        let mixed = (0..<60).map { conv($0, zeroPoint: $0 % 2 == 0) }
        let model = try #require(KernelCostModel.fit(mixed, opClass: .conv, threads: 1))
        for kernel in mixed {
            let predicted = try #require(model.predictUs(kernel))
            #expect(abs(predicted / (kernel.measuredUs ?? 1) - 1) < 0.02, "\(kernel.name): \(predicted)")
        }
        let plainOnly = try #require(KernelCostModel.fit(mixed.filter { !$0.shape.sourceZeroPoint }, opClass: .conv, threads: 1))
        let withZeroPoint = conv(7, zeroPoint: true), without = conv(7, zeroPoint: false)
        // Equal up to the order the features are summed in.
        let (a, b) = (try #require(plainOnly.predictUs(withZeroPoint)), try #require(plainOnly.predictUs(without)))
        #expect(abs(a - b) <= 1e-9 * b, "\(a) against \(b)")
        #expect(KernelCostModel.features(of: withZeroPoint)?["int8.zero_point.pointwise_macs"] == withZeroPoint.shape.macs)
    }

    /// 3x3 stride-1 convolutions the executor runs as Winograd get their own rate: on
    /// maps of 28x28 and more, dense, float; a 14x14 map, a stride-2 one, a grouped one
    /// and an int8 one keep the window rate.
    @Test func winogradConvolutionsAreWeighedApart() {
        func feature(side: Int, outSide: Int? = nil, channels: Int = 32, group: Int = 1, integer: Bool = false) -> String? {
            let o = outSide ?? side
            let outputs = Double(64 * o * o), macs = outputs * Double(channels / group * 9)
            let shape = KernelSample.Shape(macs: macs, inputDims: [1, channels, side, side], outputDims: [1, 64, o, o], fusedOpTypes: "Conv")
            let f = KernelCostModel.features(of: KernelSample(name: "c", opClass: .conv, ops: 2 * macs, bytes: 1, integer: integer, shape: shape))
            return f?.keys.first { $0.hasSuffix("_macs") && !$0.hasPrefix("window_") || $0.hasSuffix("window_macs") }
        }
        #expect(feature(side: 28) == "winograd_macs")
        #expect(feature(side: 56) == "winograd_macs")
        #expect(feature(side: 14) == "window_macs")
        #expect(feature(side: 56, outSide: 28) == "window_macs")
        #expect(feature(side: 56, group: 2) == "window_macs")
        #expect(feature(side: 56, integer: true) == "int8.window_macs")
    }

    /// oneDNN runs some 3x3 convolutions as Winograd F(2x2, 3x3) and others as F(4x4,
    /// 3x3), by shape and thread count: the implementation a profile records says which,
    /// and each variant gets a rate of its own.
    @Test func winogradVariantsAreToldApartByTheirImplementation() throws {
        let f2UsPerMac = 4e-6, f4UsPerMac = 2.5e-6
        let f2 = "jit_fp32_wino_2x3:avx512_core", f4 = "jit_wino_4x3:avx512_core"
        var kernels: [KernelSample] = []
        for channels in [16, 32, 64, 128] {
            for (j, side) in [28, 56, 112].enumerated() {
                for variant in [f2, f4] {
                    var k = Self.conv("w\(channels)-\(side)-\(variant)", channels: channels, outChannels: channels * (j + 1),
                                      side: side, window: 9, silu: false)
                    k.implementation = variant
                    k.measuredUs = Self.fixedUs + k.shape.macs * (variant == f4 ? f4UsPerMac : f2UsPerMac)
                    kernels.append(k)
                }
            }
        }
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect(abs((model.weights["winograd_f4_macs"] ?? 0) - f4UsPerMac) < 0.01 * f4UsPerMac, "\(model.weights)")
        #expect(abs((model.weights["winograd_macs"] ?? 0) - f2UsPerMac) < 0.01 * f2UsPerMac, "\(model.weights)")
        // Without an implementation the shape rule decides (F(2x2)'s feature); a direct
        // kernel the rule would take for Winograd is weighed as direct.
        var unknown = kernels[1]
        unknown.implementation = nil
        #expect(KernelCostModel.features(of: unknown)?["winograd_macs"] == unknown.shape.macs)
        var direct = kernels[1]
        direct.implementation = "jit:avx512_core"
        #expect(KernelCostModel.features(of: direct)?["window_macs"] == direct.shape.macs)
        // A model fitted before the variants were told apart has one Winograd rate.
        var old = model
        old.weights["winograd_f4_macs"] = nil
        let predicted = try #require(old.predictUs(kernels[1]))
        let atF2Rate = Self.fixedUs + kernels[1].shape.macs * f2UsPerMac
        #expect(abs(predicted - atF2Rate) < 0.02 * atF2Rate)
    }

    /// Direct float convolutions pay for loads their register blocks do not amortize:
    /// a narrow map shares each weight among fewer outputs, few output channels share
    /// each input among fewer blocks. On a synthetic machine charging both, the fit
    /// recovers each kernel's time; integer and 1x1 convolutions carry neither feature.
    @Test func directConvolutionsPayForTheirRegisterBlocking() throws {
        let usPerMac = 8e-6, usPerRowShare = 2e-5, usPerChannelShare = 1e-5
        func direct(_ name: String, channels: Int, outChannels: Int, side: Int, window: Int = 9, stride: Int = 2,
                    integer: Bool = false) -> KernelSample {
            let out = side / stride
            let macs = Double(outChannels * out * out * channels * window)
            let shape = KernelSample.Shape(macs: macs, inputDims: [1, channels, side, side], outputDims: [1, outChannels, out, out],
                                           fusedOpTypes: "Conv")
            let blocks = min(4.0, (Double(outChannels) / 16).rounded(.up))
            let us = Self.fixedUs + macs * (usPerMac + usPerRowShare / min(Double(out), 28) + usPerChannelShare / blocks)
            return KernelSample(name: name, opClass: .conv, ops: 2 * macs, bytes: 4 * macs.squareRoot(), integer: integer,
                                measuredUs: us, shape: shape)
        }
        var kernels: [KernelSample] = []
        for channels in [16, 32, 64, 128] {
            for outChannels in [16, 24, 32, 64, 128] {
                for side in [14, 28, 56, 112] {
                    kernels.append(direct("d\(channels).\(outChannels).\(side)", channels: channels, outChannels: outChannels, side: side))
                }
            }
        }
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        // Held out: a 7x7 map with 24 output channels, and a wide one with many.
        for k in [direct("narrow", channels: 96, outChannels: 24, side: 14), direct("wide", channels: 48, outChannels: 192, side: 160)] {
            let predicted = try #require(model.predictUs(k))
            #expect(abs(predicted - k.measuredUs!) < 0.01 * k.measuredUs!, "\(k.name): \(predicted) against \(k.measuredUs!)")
        }
        let features = try #require(KernelCostModel.features(of: direct("f", channels: 16, outChannels: 24, side: 14)))
        #expect(features["window_row_macs"] == features["window_macs"].map { $0 / 7 })
        #expect(features["window_channel_block_macs"] == features["window_macs"].map { $0 / 2 })
        let integer = try #require(KernelCostModel.features(of: direct("i", channels: 16, outChannels: 24, side: 14, integer: true)))
        let pointwise = try #require(KernelCostModel.features(of: direct("p", channels: 16, outChannels: 24, side: 14, window: 1)))
        for f in [integer, pointwise] { #expect(f["window_row_macs"] == nil && f["window_channel_block_macs"] == nil, "\(f)") }
    }

    /// Kernels of a model that fits in the last-level cache stream nothing from memory
    /// however much they move: fitted on big kernels of both kinds of model, the model
    /// gives each its time, and keeps the cache size it was fitted with.
    @Test func kernelsOfModelsThatFitTheLastLevelCacheDoNotStream() throws {
        let cacheUsPerByte = 1e-5, extraUsPerByte = 4e-5, limit = 1e6, lastLevel = 32e6
        var kernels: [KernelSample] = []
        for (i, channels) in [16, 32, 64, 96, 128, 192].enumerated() {
            for side in [14, 28, 56, 112, 160] {
                for modelBytes in [10e6, 100e6] {
                    var k = Self.conv("d\(i)\(side)", channels: channels, outChannels: channels, side: side, window: 9, silu: false)
                    k.opClass = .depthwiseConv
                    k.modelBytes = modelBytes
                    let streams = k.bytes > limit && modelBytes > lastLevel
                    k.measuredUs = Self.fixedUs + k.bytes * cacheUsPerByte + (streams ? k.bytes * extraUsPerByte : 0)
                        + k.shape.macs * 1e-7
                    kernels.append(k)
                }
            }
        }
        let model = try #require(KernelCostModel.fit(kernels, opClass: .depthwiseConv, threads: 1, streamingBytes: limit,
                                                     residentBytes: lastLevel))
        #expect(model.residentBytes == lastLevel)
        for k in kernels {
            let p = try #require(model.predictUs(k))
            #expect(abs(p - k.measuredUs!) < 0.02 * k.measuredUs!, "\(k.name) of a \(k.modelBytes ?? 0)-byte model")
        }
        // A kernel whose model's size is unknown streams, as before.
        var unknown = try #require(kernels.first { $0.bytes > limit })
        unknown.modelBytes = nil
        #expect(KernelCostModel.features(of: unknown, streamingBytes: limit, residentBytes: lastLevel)?["streamed_bytes"] == unknown.bytes)
        let decoded = try JSONDecoder().decode(KernelCostModel.self, from: try JSONEncoder().encode(model))
        #expect(decoded == model)
    }

    /// Kernels moving more than the caches hold pay memory's rate per byte on top of the
    /// caches': the fit recovers both rates when given the threshold, and a profile
    /// keeps the threshold it was fitted with.
    @Test func kernelsStreamingPastTheCachesPayMemorysRate() throws {
        let cacheUsPerByte = 1e-5, extraUsPerByte = 4e-5, limit = 1e6
        var kernels: [KernelSample] = []
        for (i, channels) in [16, 32, 64, 96, 128, 192].enumerated() {
            for side in [14, 28, 56, 112, 160] {
                var k = Self.conv("d\(i)\(side)", channels: channels, outChannels: channels, side: side, window: 9, silu: false)
                k.opClass = .depthwiseConv
                k.measuredUs = Self.fixedUs + k.bytes * cacheUsPerByte + (k.bytes > limit ? k.bytes * extraUsPerByte : 0)
                    + k.shape.macs * 1e-7
                kernels.append(k)
            }
        }
        #expect(kernels.contains { $0.bytes > limit } && kernels.contains { $0.bytes <= limit })
        let model = try #require(KernelCostModel.fit(kernels, opClass: .depthwiseConv, threads: 1, streamingBytes: limit))
        #expect(model.streamingBytes == limit)
        #expect(abs((model.weights["streamed_bytes"] ?? 0) - extraUsPerByte) < 0.02 * extraUsPerByte)
        for k in kernels {
            let p = try #require(model.predictUs(k))
            #expect(abs(p - k.measuredUs!) < 0.02 * k.measuredUs!)
        }
        // Without the threshold one rate per byte misses both sides.
        let flat = try #require(KernelCostModel.fit(kernels, opClass: .depthwiseConv, threads: 1))
        #expect(flat.weights["streamed_bytes"] == nil)
        #expect(kernels.contains { abs(flat.predictUs($0)! - $0.measuredUs!) > 0.1 * $0.measuredUs! })
        let decoded = try JSONDecoder().decode(KernelCostModel.self, from: try JSONEncoder().encode(model))
        #expect(decoded == model)
    }

    @Test func bytesThatMoveWhileAConvolutionComputesCostNothing() throws {
        // The synthetic machine moves 0.3 bytes in the time of a multiply-add; a
        // kernel's bytes beyond that cost 2e-5 us each.
        let perMac = 0.3, usPerByte = 2e-5
        var kernels = Self.measuredConvs()
        for i in kernels.indices {
            kernels[i].bytes *= 6
            kernels[i].measuredUs = Self.fixedUs + kernels[i].shape.macs * Self.pointwiseUsPerMac
                + max(0, kernels[i].bytes - kernels[i].shape.macs * perMac) * usPerByte
        }
        #expect(kernels.contains { $0.bytes > $0.shape.macs * perMac } && kernels.contains { $0.bytes < $0.shape.macs * perMac })
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1, overlapBytesPerMac: perMac))
        #expect(model.overlapBytesPerMac == perMac)
        #expect(abs((model.weights["bytes"] ?? 0) - usPerByte) < 0.01 * usPerByte)
        for k in kernels {
            let p = try #require(model.predictUs(k))
            #expect(abs(p - k.measuredUs!) < 0.01 * k.measuredUs!)
        }
        // Charging every byte misses some kernels by more than 10%.
        let additive = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect(kernels.contains { abs(additive.predictUs($0)! - $0.measuredUs!) > 0.1 * $0.measuredUs! })
        // Integer kernels and other classes are charged every byte.
        var integer = kernels[0]
        integer.integer = true
        #expect(KernelCostModel.features(of: integer, overlapBytesPerMac: perMac)?["bytes"] == integer.bytes)
        var depthwise = kernels[0]
        depthwise.opClass = .depthwiseConv
        #expect(KernelCostModel.features(of: depthwise, overlapBytesPerMac: perMac)?["bytes"] == depthwise.bytes)
        let decoded = try JSONDecoder().decode(KernelCostModel.self, from: try JSONEncoder().encode(model))
        #expect(decoded == model)
    }

    /// A matrix product of [rows, K] x [K, N] at the synthetic machine's costs.
    static func matmul(_ name: String, rows: Int, k: Int, n: Int, integer: Bool, usPerMac: Double) -> KernelSample {
        let macs = Double(rows * k * n)
        let shape = KernelSample.Shape(macs: macs, inputDims: [rows, k], outputDims: [rows, n], fusedOpTypes: "MatMul")
        return KernelSample(name: name, opClass: .matmul, ops: 2 * macs, bytes: Double(rows * k + k * n + rows * n),
                            integer: integer, measuredUs: fixedUs + macs * usPerMac, shape: shape)
    }

    @Test func aMatrixVectorProductIsWeighedApartFromAMatrixProduct() {
        func features(rows: Int) -> [String: Double]? {
            KernelCostModel.features(of: Self.matmul("m", rows: rows, k: 64, n: 32, integer: false, usPerMac: 1e-5))
        }
        // rows = output elements x first-input elements / multiply-adds.
        #expect(features(rows: 1)?["vector_macs"] == 2048 && features(rows: 1)?["macs"] == nil)
        #expect(features(rows: 128)?["macs"] == 128 * 64 * 32 && features(rows: 128)?["vector_macs"] == nil)
        // A squeeze-excitation 1x1 conv on a pooled 1x1 map is one too; on a 7x7 map it is not.
        let se = KernelCostModel.features(of: Self.conv("se", channels: 64, outChannels: 16, side: 1, window: 1, silu: false))
        #expect(se?["vector_macs"] == 1024 && se?["pointwise_macs"] == nil)
        let pointwise = KernelCostModel.features(of: Self.conv("pw", channels: 64, outChannels: 16, side: 7, window: 1, silu: false))
        #expect(pointwise?["pointwise_macs"] == 1024 * 49 && pointwise?["vector_macs"] == nil)
    }

    /// A depthwise convolution on an NCHW map, 3x3, measured at `usPerMac` plus the
    /// synthetic machine's fixed and epilogue costs.
    static func depthwise(_ name: String, channels: Int, side: Int, silu: Bool, usPerMac: Double) -> KernelSample {
        let outputs = Double(channels * side * side)
        let dims = [1, channels, side, side]
        let shape = KernelSample.Shape(macs: 9 * outputs, inputDims: dims, outputDims: dims,
                                       fusedOpTypes: silu ? "Conv+Sigmoid+Mul" : "Conv")
        let us = fixedUs + 9 * outputs * usPerMac + (silu ? outputs * sigmoidUsPerElement : 0)
        return KernelSample(name: name, opClass: .depthwiseConv, ops: 18 * outputs, bytes: 8 * outputs, integer: false,
                            measuredUs: us, shape: shape)
    }

    /// An epilogue op no calibration kernel of a class had (EfficientNet's SiLU after a
    /// depthwise convolution) costs what it costs after the convolutions that had it.
    @Test func anEpilogueUnseenInAClassTakesTheConvolutionsCostPerElement() throws {
        let usPerMac = 3e-5
        var kernels = Self.measuredConvs()
        for channels in [16, 32, 64, 96, 128, 192] {
            for side in [7, 14, 28, 56] {
                kernels.append(Self.depthwise("d\(channels)x\(side)", channels: channels, side: side, silu: false, usPerMac: usPerMac))
            }
        }
        let device = DeviceProfile(name: "t", cpu: "t", source: .measured, cores: 1, isa: [], caches: .init(),
                                   roofs: [.init(threads: 1, fp32Gflops: 100, int8Gops: 400, bandwidthGBps: 10)])
        let fitted = try device.calibrated(on: [ModelSamples(model: "m", runtime: .vernier, threads: 1, kernels: kernels, endToEndUs: nil)])
        let efficiency = try #require(fitted.efficiency)
        #expect(efficiency.kernelModel(for: .depthwiseConv, threads: 1)?.weights["epilogue.Sigmoid"] == nil)
        let silu = Self.depthwise("silu", channels: 48, side: 20, silu: true, usPerMac: usPerMac)
        let model = try #require(efficiency.kernelModel(for: silu, threads: 1))
        let epilogue = (model.weights["epilogue.Sigmoid"] ?? 0) + (model.weights["epilogue.Mul"] ?? 0)
        #expect(abs(epilogue - Self.sigmoidUsPerElement) < 1e-2 * Self.sigmoidUsPerElement)
        // The epilogue is three quarters of this kernel's time.
        let p = try #require(fitted.predict(silu, threads: 1))
        #expect(abs(p.predictedUs - silu.measuredUs!) < 0.05 * silu.measuredUs!)
    }

    /// Pooling kernels get a kernel model of their own: a global pool's time follows the
    /// elements it reads, which its bytes against the roofline do not tell apart from a
    /// window pool writing as many as it reads.
    @Test func poolingKernelsAreFittedAModelOfTheirOwn() throws {
        let usPerInput = 2e-4
        func pool(_ name: String, channels: Int, side: Int) -> KernelSample {
            let inputs = Double(channels * side * side)
            let shape = KernelSample.Shape(macs: 0, inputDims: [1, channels, side, side], outputDims: [1, channels, 1, 1],
                                           fusedOpTypes: "GlobalAveragePool")
            return KernelSample(name: name, opClass: .pooling, ops: inputs, bytes: 4 * (inputs + Double(channels)), integer: false,
                                measuredUs: Self.fixedUs + inputs * usPerInput, shape: shape)
        }
        var kernels: [KernelSample] = []
        for channels in [16, 32, 64, 96, 128, 256] {
            for side in [7, 14, 28, 56] { kernels.append(pool("p\(channels)x\(side)", channels: channels, side: side)) }
        }
        let device = DeviceProfile(name: "t", cpu: "t", source: .measured, cores: 1, isa: [], caches: .init(),
                                   roofs: [.init(threads: 1, fp32Gflops: 100, int8Gops: 400, bandwidthGBps: 10)])
        let fitted = try device.calibrated(on: [ModelSamples(model: "m", runtime: .vernier, threads: 1, kernels: kernels, endToEndUs: nil)])
        #expect(fitted.efficiency?.kernelModel(for: .pooling, threads: 1) != nil)
        let unseen = pool("new", channels: 200, side: 20)
        let p = try #require(fitted.predict(unseen, threads: 1))
        #expect(abs(p.predictedUs - unseen.measuredUs!) < 0.05 * unseen.measuredUs!)
    }

    /// Integer matrix products measured in no calibration model take the integer rate of
    /// 1x1 convolutions, which are matrix products; a class with its own rate keeps it.
    @Test func anIntegerMatrixProductBorrowsThePointwiseConvolutionRate() throws {
        let int8UsPerMac = 4e-6
        var convs = Self.measuredConvs()
        for (i, channels) in [8, 16, 32, 64, 96, 128].enumerated() {
            for side in [7, 14, 28, 56] {
                var c = Self.conv("q\(i)\(side)", channels: channels, outChannels: channels, side: side, window: 1, silu: false, integer: true)
                c.measuredUs = Self.fixedUs + c.shape.macs * int8UsPerMac
                convs.append(c)
            }
        }
        let floatMatmuls = (0..<24).map { i in Self.matmul("f\(i)", rows: 16 * (1 + i % 4), k: 64 * (1 + i % 3), n: 32 * (1 + i % 5),
                                                        integer: false, usPerMac: 1e-5) }
        let device = DeviceProfile(name: "t", cpu: "t", source: .measured, cores: 1, isa: [], caches: .init(),
                                   roofs: [.init(threads: 1, fp32Gflops: 100, int8Gops: 400, bandwidthGBps: 10)])
        let fitted = try device.calibrated(on: [ModelSamples(model: "m", runtime: .vernier, threads: 1, kernels: convs + floatMatmuls,
                                                             endToEndUs: nil)])
        let efficiency = try #require(fitted.efficiency)
        #expect(efficiency.kernelModel(for: .matmul, threads: 1)?.weights["int8.macs"] == nil)
        let int8 = Self.matmul("x", rows: 128, k: 768, n: 768, integer: true, usPerMac: int8UsPerMac)
        let borrowed = try #require(efficiency.kernelModel(for: int8, threads: 1))
        let rate = try #require(borrowed.weights["int8.macs"])
        #expect(abs(rate - int8UsPerMac) < 1e-2 * int8UsPerMac)
        let p = try #require(fitted.predict(int8, threads: 1))
        #expect(abs(p.predictedUs - int8.measuredUs!) < 0.05 * int8.measuredUs!)
        // Float kernels and kernels of other classes are left as they were.
        let float = Self.matmul("y", rows: 128, k: 768, n: 768, integer: false, usPerMac: 1e-5)
        #expect(efficiency.kernelModel(for: float, threads: 1) == efficiency.kernelModel(for: .matmul, threads: 1))
    }

    /// A quantization kernel of `elements` outputs anchored on `ops`' first non-Q/DQ op
    /// (a QDQ group) or its only op, measured at `usPerElement` plus `fixedUs`.
    static func conversion(_ name: String, ops: String, elements: Int, usPerElement: Double, fixedUs: Double = 0.3) -> KernelSample {
        let dims = [1, elements]
        let shape = KernelSample.Shape(macs: 0, inputDims: dims, outputDims: dims, fusedOpTypes: ops)
        return KernelSample(name: name, opClass: .quantization, ops: Double(elements), bytes: 5 * Double(elements),
                            integer: false, measuredUs: fixedUs + Double(elements) * usPerElement, shape: shape)
    }

    /// A plain DequantizeLinear pass and a QDQ group around an Add move the same bytes
    /// per element but take different passes: each anchor op has its own cost.
    @Test func quantizationKernelsAreWeighedByTheirOp() throws {
        var kernels: [KernelSample] = []
        for i in 1...16 {
            kernels.append(Self.conversion("dq\(i)", ops: "DequantizeLinear", elements: 4096 * i, usPerElement: 1e-5))
            kernels.append(Self.conversion("add\(i)", ops: "DequantizeLinear+DequantizeLinear+Add+QuantizeLinear",
                                           elements: 3000 * i, usPerElement: 5e-5))
        }
        #expect(KernelCostModel.classes.contains(.quantization))
        #expect(KernelCostModel.features(of: kernels[0])?["op.DequantizeLinear"] == 4096)
        #expect(KernelCostModel.features(of: kernels[1])?["op.Add"] == 3000)
        let model = try #require(KernelCostModel.fit(kernels, opClass: .quantization, threads: 1))
        for probe in [Self.conversion("dq", ops: "DequantizeLinear", elements: 50_000, usPerElement: 1e-5),
                      Self.conversion("add", ops: "DequantizeLinear+DequantizeLinear+Add+QuantizeLinear", elements: 50_000,
                                      usPerElement: 5e-5)] {
            let predicted = try #require(model.predictUs(probe))
            #expect(abs(predicted - probe.measuredUs!) < 0.02 * probe.measuredUs!, "\(probe.name): \(predicted) us")
        }
    }

    /// Many sub-microsecond conversions whose rate per element is not the large passes'
    /// (scalars and bias vectors beside whole activations): fitted on relative errors
    /// alone they set the rate, and the passes come out a third too slow; weighed by the
    /// square root of their time (the quantization class's default) the passes are
    /// predicted within a few percent.
    @Test func timeWeightingKeepsManySmallKernelsFromSettingTheRateOfLargeOnes() throws {
        var kernels = (1...60).map { Self.conversion("s\($0)", ops: "DequantizeLinear", elements: 64 * $0, usPerElement: 3e-4) }
        let passes = (1...6).map { Self.conversion("p\($0)", ops: "DequantizeLinear", elements: 100_000 * $0, usPerElement: 1e-4, fixedUs: 0) }
        kernels += passes
        func passesError(_ model: KernelCostModel) throws -> Double {
            let predicted = try passes.reduce(0.0) { $0 + (try #require(model.predictUs($1))) }
            let measured = passes.reduce(0.0) { $0 + $1.measuredUs! }
            return abs(predicted - measured) / measured
        }
        let weighted = try #require(KernelCostModel.fit(kernels, opClass: .quantization, threads: 1))
        let relative = try #require(KernelCostModel.fit(kernels, opClass: .quantization, threads: 1, timeWeighted: false))
        #expect(try passesError(relative) > 0.2)
        #expect(try passesError(weighted) < 0.05)
    }

    /// Integer kernels have a fixed cost of their own; a model fitted before they had one
    /// gives them the shared one.
    @Test func integerKernelsHaveTheirOwnFixedCost() throws {
        var kernels = Self.measuredConvs()
        for k in Self.measuredConvs(prefix: "i") {
            var integer = k
            integer.integer = true
            integer.measuredUs = k.measuredUs! - Self.fixedUs * 0.5
            kernels.append(integer)
        }
        #expect(KernelCostModel.features(of: kernels[40])?["int8.kernel"] == 1)
        #expect(KernelCostModel.features(of: kernels[40])?["kernel"] == nil)
        let model = try #require(KernelCostModel.fit(kernels, opClass: .conv, threads: 1))
        #expect(abs(model.perKernelUs - Self.fixedUs) < 0.05)
        #expect(abs(model.perKernelUs(integer: true) - Self.fixedUs * 0.5) < 0.05)
        var older = model
        older.weights["int8.kernel"] = nil
        #expect(older.perKernelUs(integer: true) == model.perKernelUs)
    }
}
