import Foundation
import Testing
import CDNNL
@testable import VernierRuntime

/// One conv case: input shape, output channels, kernel, geometry, bias, ReLU.
struct ConvCase: CustomTestStringConvertible, Sendable {
    var input: [Int]
    var outChannels: Int
    var kernel: [Int]
    var geometry: ConvGeometry
    var bias: Bool
    var relu: Bool
    var testDescription: String {
        "x\(input) M=\(outChannels) k\(kernel) s\(geometry.strides) p\(geometry.pads) "
            + "d\(geometry.dilations) g\(geometry.group)\(bias ? " bias" : "")\(relu ? " relu" : "")"
    }
}

let convCases: [ConvCase] = [
    ConvCase(input: [1, 3, 17, 13], outChannels: 5, kernel: [3, 3], geometry: ConvGeometry(), bias: false, relu: false),
    ConvCase(input: [2, 16, 15, 15], outChannels: 32, kernel: [3, 3],
             geometry: ConvGeometry(pads: [1, 1, 1, 1]), bias: true, relu: true),
    ConvCase(input: [1, 7, 19, 11], outChannels: 9, kernel: [5, 3],
             geometry: ConvGeometry(strides: [2, 2], pads: [2, 1, 1, 0]), bias: true, relu: false),
    ConvCase(input: [1, 8, 21, 21], outChannels: 12, kernel: [3, 3],
             geometry: ConvGeometry(pads: [2, 2, 2, 2], dilations: [2, 2]), bias: false, relu: true),
    ConvCase(input: [1, 12, 13, 9], outChannels: 6, kernel: [3, 3],
             geometry: ConvGeometry(strides: [1, 2], pads: [1, 1, 1, 1], group: 3), bias: true, relu: false),
    // Depthwise, stride 2 (MobileNet-style) and with a channel multiplier.
    ConvCase(input: [2, 32, 23, 23], outChannels: 32, kernel: [3, 3],
             geometry: ConvGeometry(strides: [2, 2], pads: [1, 1, 1, 1], group: 32), bias: true, relu: true),
    ConvCase(input: [1, 5, 11, 14], outChannels: 10, kernel: [3, 3],
             geometry: ConvGeometry(pads: [1, 1, 1, 1], dilations: [2, 1], group: 5), bias: false, relu: false),
    // A 3x3 stride-1 conv on a 30x30 map: Winograd F(2x2, 3x3) where oneDNN has it.
    ConvCase(input: [1, 32, 30, 30], outChannels: 48, kernel: [3, 3],
             geometry: ConvGeometry(pads: [1, 1, 1, 1]), bias: true, relu: true),
    // Pointwise 1x1 and a 7x7 stride-2 stem.
    ConvCase(input: [1, 24, 14, 14], outChannels: 40, kernel: [1, 1], geometry: ConvGeometry(), bias: true, relu: true),
    ConvCase(input: [1, 3, 33, 31], outChannels: 16, kernel: [7, 7],
             geometry: ConvGeometry(strides: [2, 2], pads: [3, 3, 3, 3]), bias: true, relu: true),
]

/// The oneDNN suites share `DNNLEngine.shared()`, whose stream must not be used from two
/// threads at once, so they run one test at a time under this parent.
@Suite(.serialized) struct DNNLKernelTests {}

extension DNNLKernelTests {
@Suite struct Conv {
    @Test(arguments: convCases)
    func convMatchesReference(_ c: ConvCase) throws {
        var rng = SeededGenerator(seed: 0xC0FFEE &+ UInt64(c.input.reduce(0, +) * 31 + c.outChannels))
        let weights = randomTensor([c.outChannels, c.input[1] / c.geometry.group] + c.kernel, using: &rng)
        let bias = c.bias ? randomTensor([c.outChannels], using: &rng) : nil
        let plan = try ConvPlan(inputShape: c.input, weights: weights, bias: bias, geometry: c.geometry, relu: c.relu)
        // Two different inputs through the same plan: created once, run many times.
        for _ in 0..<2 {
            let input = randomTensor(c.input, using: &rng)
            let expected = ReferenceKernels.conv(input: input, weights: weights, bias: bias,
                                                 geometry: c.geometry, relu: c.relu)
            let output = Tensor(shape: plan.outputShape)
            try plan.run(input: input, output: output)
            #expect(plan.outputShape == expected.shape)
            let error = relativeError(output, expected)
            #expect(error <= tolerance, "relative error \(error) [\(plan.implementation)]")
        }
    }

    /// Winograd only for fp32 3x3 stride-1 undilated dense convs on maps of 28x28 and
    /// more, with whole 16-channel blocks of inputs and outputs; on an AVX-512 CPU oneDNN
    /// then runs its wino kernel.
    @Test func winogradTakesLargeDenseThreeByThreeConvolutionsOnly() throws {
        let pad = ConvGeometry(pads: [1, 1, 1, 1])
        func takes(_ geometry: ConvGeometry = ConvGeometry(pads: [1, 1, 1, 1]), kernel: [Int] = [3, 3], side: Int = 28,
                   channels: Int = 64, inputChannels: Int = 64, int8: Bool = false, transposed: Bool = false) -> Bool {
            ConvPlan.takesWinograd(transposed: transposed, int8: int8, kernel: kernel, geometry: geometry,
                                   inputShape: [1, inputChannels, side, side], outputShape: [1, channels, side, side])
        }
        #expect(takes())
        #expect(takes(channels: 32) && !takes(channels: 24))
        // A first layer's 3 channels (an image) or 1 (a spectrogram) stay direct.
        #expect(takes(inputChannels: 16) && !takes(inputChannels: 3) && !takes(inputChannels: 1))
        #expect(!takes(side: 27))
        #expect(!takes(kernel: [5, 5]) && !takes(kernel: [1, 1]))
        #expect(!takes(ConvGeometry(strides: [2, 2], pads: [1, 1, 1, 1])))
        #expect(!takes(ConvGeometry(pads: [2, 2, 2, 2], dilations: [2, 2])))
        #expect(!takes(ConvGeometry(pads: [1, 1, 1, 1], group: 2)))
        #expect(!takes(int8: true) && !takes(transposed: true))
        var rng = SeededGenerator(seed: 29)
        let plan = try ConvPlan(inputShape: [1, 32, 28, 28], weights: randomTensor([32, 32, 3, 3], using: &rng), geometry: pad)
        let isa = dnnl_get_effective_cpu_isa().rawValue
        if isa & dnnl_cpu_isa_avx512_core.rawValue == dnnl_cpu_isa_avx512_core.rawValue {
            #expect(plan.implementation.contains("wino"), "\(plan.implementation)")
        }
    }

    /// A plan reports the activation bytes it reorders on each run: plain edges around a
    /// blocked primitive cost both the input's and the output's bytes, blocked edges none.
    @Test func plansCountTheBytesTheyReorder() throws {
        var rng = SeededGenerator(seed: 31)
        let weights = randomTensor([32, 32, 3, 3], using: &rng)
        let geometry = ConvGeometry(strides: [2, 2], pads: [1, 1, 1, 1])
        let plain = try ConvPlan(inputShape: [1, 32, 16, 16], weights: weights, geometry: geometry)
        let blocked = try ConvPlan(transposed: false, inputShape: [1, 32, 16, 16], weightsShape: weights.shape,
                                   weights: .constant(weights), bias: nil, geometry: geometry,
                                   sourceLayout: .channelBlocked(preferredChannelBlock),
                                   destinationLayout: .channelBlocked(preferredChannelBlock))
        #expect(plain.reordersInput == plain.reordersOutput)
        let expected = (plain.reordersInput ? 32 * 16 * 16 * 4 : 0) + (plain.reordersOutput ? 32 * 8 * 8 * 4 : 0)
        #expect(plain.relayoutBytes == expected)
        #expect(blocked.relayoutBytes == 0 && !blocked.reordersInput && !blocked.reordersOutput)
        let isa = dnnl_get_effective_cpu_isa().rawValue
        if isa & dnnl_cpu_isa_avx512_core.rawValue == dnnl_cpu_isa_avx512_core.rawValue {
            #expect(plain.relayoutBytes == 32 * 16 * 16 * 4 + 32 * 8 * 8 * 4, "\(plain.implementation)")
        }
    }

    @Test func badShapesThrowTypedErrors() throws {
        let weights = Tensor(shape: [4, 3, 3, 3])
        #expect(throws: DNNLError.self) {
            _ = try ConvPlan(inputShape: [1, 5, 8, 8], weights: weights, geometry: ConvGeometry())
        }
        let plan = try ConvPlan(inputShape: [1, 3, 8, 8], weights: weights, geometry: ConvGeometry())
        #expect(throws: DNNLError.shapeMismatch(
            "ConvPlan for [1, 3, 8, 8] -> [1, 4, 6, 6] run with [1, 3, 8, 9] -> [1, 4, 6, 6]")) {
            try plan.run(input: Tensor(shape: [1, 3, 8, 9]), output: Tensor(shape: [1, 4, 6, 6]))
        }
    }

    @Test func statusNamesAreReadable() {
        let error = DNNLError.call(function: "dnnl_primitive_create", status: "dnnl_unimplemented")
        #expect(error.description == "oneDNN: dnnl_primitive_create failed with dnnl_unimplemented")
    }
}
}

extension DNNLKernelTests {

@Suite struct MatMul {
    static let cases: [([Int], [Int], Bool)] = [
        ([1, 1], [1, 1], false),
        ([7, 13], [13, 5], false),
        ([64, 128], [128, 96], true),
        ([33, 65], [65, 17], false),
        ([3, 9, 11], [3, 11, 6], false),
        ([4, 17, 31], [31, 23], true),   // 2-D right side broadcast over the batch
        ([1, 5, 8], [6, 8, 7], false),   // batch-1 left side broadcast
        ([12, 64], [2, 64, 10], false),  // 2-D left side broadcast
    ]

    @Test(arguments: cases)
    func matMulMatchesReference(_ a: [Int], _ b: [Int], _ relu: Bool) throws {
        var rng = SeededGenerator(seed: 0xBEEF &+ UInt64(a.reduce(0, +) * 17 + b.reduce(0, +)))
        let plan = try MatMulPlan(a: a, b: b, relu: relu)
        for _ in 0..<2 {
            let x = randomTensor(a, using: &rng), w = randomTensor(b, using: &rng)
            var expected = ReferenceKernels.matMul(x, w)
            if relu {
                expected = Tensor(shape: expected.shape, values: expected.scalars(as: Float.self).map { max($0, 0) })
            }
            let output = Tensor(shape: plan.outputShape)
            try plan.run(a: x, b: w, output: output)
            #expect(output.shape == expected.shape)
            let error = relativeError(output, expected)
            #expect(error <= tolerance, "relative error \(error) [\(plan.implementation)]")
        }
    }

    /// A constant right operand with many columns runs as column panels writing their
    /// blocks of the result through strides; with the bias row and a residual (sum
    /// post-op) sliced to match, transposed or not, the result is the whole product's.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func columnPanelsComputeTheWholeProduct(_ transB: Bool, _ withBias: Bool) throws {
        let (m, k, n) = (37, 96, 1600)
        let panels = MatMulPlan.panelColumns(n)
        #expect(panels.count > 1 && panels.allSatisfy { $0.count <= MatMulPlan.widestPanel })
        #expect(panels.first?.lowerBound == 0 && panels.last?.upperBound == n)
        #expect(zip(panels, panels.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        var rng = SeededGenerator(seed: 0x9A1E &+ (transB ? 1 : 0) &+ (withBias ? 2 : 0))
        let x = randomTensor([2, m, k], using: &rng)
        let w = randomTensor([k, n], using: &rng)
        let stored = transB
            ? Tensor(shape: [n, k], values: (0..<(n * k)).map { i in w.scalars(as: Float.self)[(i % k) * n + i / k] })
            : w
        let bias = randomTensor([n], using: &rng)
        let residual = randomTensor([2, m, n], using: &rng)
        let plan = try MatMulPlan(a: [2, m, k], b: transB ? [n, k] : [k, n], transB: transB, constantB: stored,
                                  bias: withBias, postOps: DNNLPostOps(sum: true))
        #expect(plan.panelCount == panels.count)
        let output = Tensor(shape: plan.outputShape, values: residual.scalars(as: Float.self))
        try plan.run(a: x, b: nil, bias: withBias ? bias : nil, output: output)
        let product = ReferenceKernels.matMul(x, w).scalars(as: Float.self)
        let b = bias.scalars(as: Float.self), r = residual.scalars(as: Float.self)
        let expected = Tensor(shape: [2, m, n], values: product.indices.map { i in
            product[i] + r[i] + (withBias ? b[i % n] : 0)
        })
        let error = relativeError(output, expected)
        #expect(error <= tolerance, "relative error \(error) [\(plan.implementation)]")
        // Unsplit for comparison: one panel, same result.
        let whole = try MatMulPlan(a: [2, m, k], b: transB ? [n, k] : [k, n], transB: transB, constantB: stored,
                                   bias: withBias, postOps: DNNLPostOps(sum: true), split: false)
        #expect(whole.panelCount == 1)
    }

    @Test func mismatchedOperandsThrow() {
        #expect(throws: DNNLError.self) { _ = try MatMulPlan(a: [3, 4], b: [5, 6]) }
        #expect(throws: DNNLError.self) { _ = try MatMulPlan(a: [2, 3, 4], b: [3, 4, 6]) }
        #expect(throws: DNNLError.self) { _ = try MatMulPlan(a: [2, 2, 3, 4], b: [3, 6]) }
    }
}
}

extension DNNLKernelTests {
/// Packed weights are not zero-filled before their reorder (`DNNLMemory.reordered`):
/// the padding a blocked layout adds must come out of the reorder as zeros, since
/// blocked activations' padding channels hold arbitrary finite values.
@Suite struct PackedWeights {
    @Test func reorderZeroesThePaddingOfPoisonedMemory() throws {
        let engine = try DNNLEngine.shared()
        var rng = SeededGenerator(seed: 0x5EED)
        // 24 output and 20 input channels: both padded to 32 in 16-channel blocks.
        let shape = [24, 20, 3, 3]
        let weights = randomTensor(shape, using: &rng)
        let user = try DNNLMemory(unbound: try plainDescriptor(shape), engine: engine)
        try user.bind(weights.rawPointer)
        let blocked = try plainDescriptor(shape, tag: dnnl_OIhw16i16o)
        let packed = try DNNLMemory.reordered(from: user, into: blocked, engine: engine, prefill: 0xFF)
        try engine.wait()
        let floats = try #require(packed.buffer).baseAddress.assumingMemoryBound(to: Float.self)
        let stored = (0..<(packed.byteCount / 4)).map { floats[$0] }
        #expect(stored.count == 32 * 32 * 9)
        let poisoned = stored.filter { !$0.isFinite }.count
        #expect(poisoned == 0, "0xFF bytes (NaN) left in the padding")
        let sameValues = stored.filter { $0 != 0 }.sorted() == weights.scalars(as: Float.self).filter { $0 != 0 }.sorted()
        #expect(sameValues, "the packed weights are not a permutation of the weights plus zeros")
    }
}
}
