import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

// Conv, ConvTranspose, Gemm and MatMul kernels (the ops' factories, as the executor makes
// them) against the reference kernels, fused epilogues, and hand-computed cases.

/// A kernel for a hand-made node: inputs named in0, in1, ...; `constants` by index are
/// known at plan time; `shapes` by index are what inference would know.
func makeKernel(_ op: String, inputs: Int, attributes: [String: AttributeValue] = [:],
                constants: [Int: Tensor] = [:], shapes: [Int: [Int]] = [:]) throws -> Kernel {
    let node = Node(name: op, opType: op, inputs: (0..<inputs).map { "in\($0)" }, outputs: ["out"],
                    attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
    let types = (0..<inputs).map { i in TensorType(.float, (constants[i]?.shape ?? shapes[i])?.map(Dim.value)) }
    let context = KernelContext(node: node, opset: 17, inputTypes: types, outputTypes: [nil],
                                constantInputs: (0..<inputs).map { constants[$0] },
                                compileSubgraph: { _ in throw KernelError.unsupported("no subgraphs here") })
    let factory = try #require(KernelRegistry.factory(for: node))
    return try factory(context)
}

/// Runs a kernel and returns its first output.
func runKernel(_ kernel: Kernel, _ inputs: [Tensor?]) throws -> Tensor {
    let slots = OutputSlots(count: 1, maxBytes: 1 << 32)
    try kernel.run(inputs, slots)
    return try #require(slots.results[0])
}

/// Every activation a graph pass may fuse, with parameters away from the defaults.
let allActivations: [FusedEpilogue.Activation] = [
    .relu, .leakyRelu(alpha: 0.1), .clip(min: -0.25, max: 0.5), .sigmoid, .hardSigmoid(alpha: 0.3, beta: 0.4),
    .hardSwish, .silu, .tanh, .gelu,
]

/// The node attributes that describe `activation` (what the graph passes write).
func fusedAttributes(_ activation: FusedEpilogue.Activation?, sum: Bool) -> [String: AttributeValue] {
    var attributes: [String: AttributeValue] = sum ? ["fused_sum": .int(1)] : [:]
    guard let activation else { return attributes }
    let (name, alpha, beta): (String, Float?, Float?)
    switch activation {
    case .relu: (name, alpha, beta) = ("Relu", nil, nil)
    case .leakyRelu(let a): (name, alpha, beta) = ("LeakyRelu", a, nil)
    case .clip(let lo, let hi): (name, alpha, beta) = ("Clip", lo, hi)
    case .sigmoid: (name, alpha, beta) = ("Sigmoid", nil, nil)
    case .hardSigmoid(let a, let b): (name, alpha, beta) = ("HardSigmoid", a, b)
    case .hardSwish: (name, alpha, beta) = ("HardSwish", nil, nil)
    case .silu: (name, alpha, beta) = ("Silu", nil, nil)
    case .tanh: (name, alpha, beta) = ("Tanh", nil, nil)
    case .gelu: (name, alpha, beta) = ("Gelu", nil, nil)
    }
    attributes["fused_activation"] = .string(name)
    if let alpha { attributes["fused_alpha"] = .float(alpha) }
    if let beta { attributes["fused_beta"] = .float(beta) }
    return attributes
}

/// One Conv or ConvTranspose node case.
struct ConvNodeCase: CustomTestStringConvertible, Sendable {
    var name: String
    var transposed = false
    var input: [Int]
    var weights: [Int]
    var attributes: ConvAttributes = ConvAttributes()
    var bias = true
    var constantWeights = true

    var testDescription: String { name }

    var nodeAttributes: [String: AttributeValue] {
        var a: [String: AttributeValue] = ["group": .int(attributes.group), "auto_pad": .string(attributes.autoPad)]
        if let v = attributes.strides { a["strides"] = .ints(v) }
        if let v = attributes.pads { a["pads"] = .ints(v) }
        if let v = attributes.dilations { a["dilations"] = .ints(v) }
        if let v = attributes.kernelShape { a["kernel_shape"] = .ints(v) }
        if let v = attributes.outputPadding { a["output_padding"] = .ints(v) }
        if let v = attributes.outputShape { a["output_shape"] = .ints(v) }
        return a
    }
}

let convNodeCases: [ConvNodeCase] = [
    // Conv1d as in audio front ends: stride 2, SAME_UPPER, and a grouped dilated one.
    ConvNodeCase(name: "conv1d same_upper s2", input: [2, 5, 37], weights: [8, 5, 4],
                 attributes: ConvAttributes(strides: [2], autoPad: "SAME_UPPER")),
    ConvNodeCase(name: "conv1d groups dilation pads", input: [1, 6, 29], weights: [9, 2, 3],
                 attributes: ConvAttributes(pads: [2, 1], dilations: [3], group: 3), constantWeights: false),
    // A learned filterbank (`SignalWindowConvPlan`): one channel, a wide window, a long
    // stride, windows half outside the signal at both ends; three dilated channels.
    ConvNodeCase(name: "conv1d signal window", input: [1, 1, 2000], weights: [16, 1, 100],
                 attributes: ConvAttributes(strides: [40], pads: [50, 50])),
    ConvNodeCase(name: "conv1d signal window dilated 3ch", input: [1, 3, 300], weights: [20, 3, 25],
                 attributes: ConvAttributes(strides: [3], pads: [10, 30], dilations: [2]), bias: false),
    ConvNodeCase(name: "conv2d same_lower s2 asym", input: [1, 7, 13, 10], weights: [11, 7, 4, 3],
                 attributes: ConvAttributes(strides: [2, 3], autoPad: "SAME_LOWER")),
    ConvNodeCase(name: "conv2d valid kernel_shape", input: [1, 16, 12, 9], weights: [24, 16, 3, 2],
                 attributes: ConvAttributes(kernelShape: [3, 2], autoPad: "VALID"), bias: false),
    ConvNodeCase(name: "conv2d depthwise runtime weights", input: [2, 16, 15, 17], weights: [16, 1, 3, 3],
                 attributes: ConvAttributes(strides: [2, 2], pads: [1, 0, 1, 2], group: 16), constantWeights: false),
    ConvNodeCase(name: "conv3d groups", input: [1, 4, 6, 7, 5], weights: [6, 2, 3, 2, 3],
                 attributes: ConvAttributes(strides: [1, 2, 1], pads: [1, 0, 1, 1, 1, 0], group: 2)),
    ConvNodeCase(name: "convT1d s2 pads outpad", transposed: true, input: [1, 3, 7], weights: [3, 4, 3],
                 attributes: ConvAttributes(strides: [2], pads: [1, 0], outputPadding: [1])),
    ConvNodeCase(name: "convT2d group dilation", transposed: true, input: [2, 4, 5, 6], weights: [4, 3, 3, 2],
                 attributes: ConvAttributes(strides: [2, 3], pads: [1, 0, 0, 1], dilations: [1, 2], group: 2)),
    ConvNodeCase(name: "convT2d same_upper runtime", transposed: true, input: [1, 8, 5, 7], weights: [8, 5, 3, 3],
                 attributes: ConvAttributes(strides: [2, 2], autoPad: "SAME_UPPER"), constantWeights: false),
    ConvNodeCase(name: "convT2d output_shape", transposed: true, input: [1, 2, 4, 4], weights: [2, 3, 3, 3],
                 attributes: ConvAttributes(strides: [3, 2], outputShape: [12, 10]), bias: false),
    ConvNodeCase(name: "convT2d depthwise 16ch", transposed: true, input: [1, 16, 9, 9], weights: [16, 1, 4, 4],
                 attributes: ConvAttributes(strides: [2, 2], pads: [1, 1, 1, 1], group: 16)),
    ConvNodeCase(name: "convT3d", transposed: true, input: [1, 2, 3, 4, 3], weights: [2, 2, 2, 3, 2],
                 attributes: ConvAttributes(strides: [2, 1, 2], pads: [0, 1, 0, 0, 1, 1], outputPadding: [1, 0, 1])),
]

extension DNNLKernelTests {
@Suite struct ConvFamily {
    @Test(arguments: convNodeCases)
    func kernelMatchesReference(_ c: ConvNodeCase) throws {
        var rng = SeededGenerator(seed: 0xD00D &+ UInt64(c.name.utf8.count * 7 + c.input.reduce(0, +)))
        let w = randomTensor(c.weights, using: &rng)
        let outChannels = c.transposed ? c.weights[1] * c.attributes.group : c.weights[0]
        let b = c.bias ? randomTensor([outChannels], using: &rng) : nil
        var constants: [Int: Tensor] = [:]
        if c.constantWeights {
            constants[1] = w
            if let b { constants[2] = b }
        }
        let kernel = try makeKernel(c.transposed ? "ConvTranspose" : "Conv", inputs: c.bias ? 3 : 2,
                                    attributes: c.nodeAttributes, constants: constants, shapes: [0: c.input])
        let geometry = c.transposed ? try c.attributes.transposedGeometry(input: c.input, weights: c.weights)
                                    : try c.attributes.convGeometry(input: c.input, weights: c.weights)
        for _ in 0..<2 {
            let x = randomTensor(c.input, using: &rng)
            let expected = c.transposed ? ReferenceKernels.convTranspose(input: x, weights: w, bias: b, geometry: geometry)
                                        : ReferenceKernels.conv(input: x, weights: w, bias: b, geometry: geometry)
            let y = try runKernel(kernel, [x, w] + (b.map { [$0] } ?? []))
            #expect(y.shape == expected.shape)
            if y.shape == expected.shape {
                let error = relativeError(y, expected)
                #expect(error <= tolerance, "relative error \(error)")
            }
        }
    }

    /// Few-channel 1-D convolutions with wide windows run as one matrix product; narrow
    /// ones, many channels, 2-D and weights bound at run time keep oneDNN's convolution.
    @Test func wideWindowSignalConvolutionsRunAsMatrixProducts() throws {
        func takesPlan(input: [Int], weights: [Int], constant: Bool = true) throws -> Bool {
            let kernel = try makeKernel("Conv", inputs: 2, attributes: ["strides": .ints(Array(repeating: 2, count: input.count - 2))],
                                        constants: constant ? [1: Tensor(shape: weights)] : [:], shapes: [0: input, 1: weights])
            return try #require(kernel as? ConvKernel).signalPlan != nil
        }
        #expect(try takesPlan(input: [1, 1, 1600], weights: [32, 1, 400]))
        #expect(try takesPlan(input: [1, 2, 100], weights: [8, 2, 32]))
        #expect(try !takesPlan(input: [1, 2, 100], weights: [8, 2, 31]))
        #expect(try !takesPlan(input: [1, 16, 100], weights: [8, 16, 8]))
        #expect(try !takesPlan(input: [1, 1, 64, 64], weights: [8, 1, 9, 9]))
        #expect(try !takesPlan(input: [1, 1, 1600], weights: [32, 1, 400], constant: false))
    }

    @Test func autoPadResolvesLikeONNX() throws {
        // in 10, k 3, stride 2: out 5, total padding (5-1)*2+3-10 = 1.
        let upper = try ConvAttributes(strides: [2], autoPad: "SAME_UPPER").convGeometry(input: [1, 1, 10], weights: [1, 1, 3])
        #expect(upper.pads == [0, 1])
        let lower = try ConvAttributes(strides: [2], autoPad: "SAME_LOWER").convGeometry(input: [1, 1, 10], weights: [1, 1, 3])
        #expect(lower.pads == [1, 0])
        #expect(lower.outputShape(input: [1, 1, 10], weights: [1, 1, 3]) == [1, 1, 5])
        let valid = try ConvAttributes(pads: [4, 4], autoPad: "VALID").convGeometry(input: [1, 1, 10], weights: [1, 1, 3])
        #expect(valid.pads == [0, 0])
        // ConvTranspose: output_shape 10 from in 3, stride 3, k 3 needs total padding -1:
        // an extra output row at the end (output padding), no cropping.
        let t = try ConvAttributes(strides: [3], outputShape: [10]).transposedGeometry(input: [1, 1, 3], weights: [1, 1, 3])
        #expect(t.pads == [0, 0] && t.outputPadding == [1])
        #expect(t.transposedOutputShape(input: [1, 1, 3], weights: [1, 1, 3]) == [1, 1, 10])
        #expect(throws: KernelError.self) {
            _ = try ConvAttributes(kernelShape: [5]).convGeometry(input: [1, 1, 10], weights: [1, 1, 3])
        }
    }

    /// ONNX's ConvTranspose example with strides [3, 2] and pads [1, 2, 1, 2]
    /// (test_convtranspose_pads), worked by hand.
    @Test func convTransposeHandComputed() throws {
        let x = Tensor(shape: [1, 1, 3, 3], values: (0..<9).map(Float.init))
        let w = Tensor(shape: [1, 2, 3, 3], values: Array(repeating: 1, count: 18))
        let kernel = try makeKernel("ConvTranspose", inputs: 2,
                                    attributes: ["strides": .ints([3, 2]), "pads": .ints([1, 2, 1, 2])],
                                    constants: [1: w], shapes: [0: [1, 1, 3, 3]])
        let y = try runKernel(kernel, [x, w])
        let plane: [Float] = [1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15]
        #expect(y.shape == [1, 2, 7, 3])
        #expect(y.scalars(as: Float.self) == plane + plane)
    }

    @Test func badInputsThrowKernelErrors() throws {
        let kernel = try makeKernel("Conv", inputs: 2)
        #expect(throws: KernelError.self) { _ = try runKernel(kernel, [Tensor(shape: [1, 5, 8, 8]), Tensor(shape: [4, 3, 3, 3])]) }
        #expect(throws: KernelError.unsupported("Conv of int64 (fp32 only)")) {
            _ = try runKernel(kernel, [Tensor(elementType: .int64, shape: [1, 3, 8, 8]), Tensor(shape: [4, 3, 3, 3])])
        }
        // A new input shape at run time gets a plan of its own.
        let w = Tensor(shape: [4, 3, 3, 3])
        #expect(try runKernel(kernel, [Tensor(shape: [1, 3, 8, 8]), w]).shape == [1, 4, 6, 6])
        #expect(try runKernel(kernel, [Tensor(shape: [2, 3, 9, 7]), w]).shape == [2, 4, 7, 5])
    }

    /// Each fused activation, with and without a residual addend, on a conv whose output
    /// oneDNN keeps blocked (16 channels: the addend is reordered into the blocked
    /// destination) and on a 3-channel one, against the reference.
    @Test(arguments: allActivations.map { Optional($0) } + [nil])
    func fusedEpilogueMatchesReference(_ activation: FusedEpilogue.Activation?) throws {
        var rng = SeededGenerator(seed: 0xE71)
        for (channels, sum) in [(16, true), (3, true), (16, false)] {
            let epilogue = FusedEpilogue(activation: activation, addsResidual: sum)
            let geometry = ConvGeometry(pads: [1, 1, 1, 1])
            let x = randomTensor([1, 8, 9, 11], using: &rng)
            let w = randomTensor([channels, 8, 3, 3], using: &rng)
            let b = randomTensor([channels], using: &rng)
            let addend = sum ? randomTensor([1, channels, 9, 11], using: &rng) : nil
            let expected = ReferenceKernels.conv(input: x, weights: w, bias: b, geometry: geometry,
                                                 epilogue: epilogue, addend: addend)
            var attributes = fusedAttributes(activation, sum: sum)
            attributes["pads"] = .ints(geometry.pads)
            let kernel = try makeKernel("Conv", inputs: sum ? 4 : 3, attributes: attributes,
                                        constants: [1: w, 2: b], shapes: [0: x.shape])
            let y = try runKernel(kernel, [x, w, b] + (addend.map { [$0] } ?? []))
            let error = relativeError(y, expected)
            #expect(error <= tolerance, "\(channels) channels, sum \(sum): relative error \(error)")
        }
        // A one-channel filterbank: a matrix product (`SignalWindowConvPlan`) without the
        // residual, oneDNN's convolution with it.
        for sum in [false, true] {
            let epilogue = FusedEpilogue(activation: activation, addsResidual: sum)
            let geometry = ConvGeometry(strides: [20], pads: [40, 40])
            let x = randomTensor([1, 1, 500], using: &rng)
            let w = randomTensor([8, 1, 80], using: &rng)
            let b = randomTensor([8], using: &rng)
            let addend = sum ? randomTensor([1, 8, 26], using: &rng) : nil
            let expected = ReferenceKernels.conv(input: x, weights: w, bias: b, geometry: geometry,
                                                 epilogue: epilogue, addend: addend)
            var attributes = fusedAttributes(activation, sum: sum)
            attributes["pads"] = .ints(geometry.pads)
            attributes["strides"] = .ints(geometry.strides)
            let kernel = try makeKernel("Conv", inputs: sum ? 4 : 3, attributes: attributes,
                                        constants: [1: w, 2: b], shapes: [0: x.shape])
            #expect((kernel as? ConvKernel)?.signalPlan != nil || sum)
            let y = try runKernel(kernel, [x, w, b] + (addend.map { [$0] } ?? []))
            #expect(y.shape == expected.shape)
            let error = relativeError(y, expected)
            #expect(error <= tolerance, "filterbank, sum \(sum): relative error \(error)")
        }
    }

    /// The addend may be the output's own memory (the memory planner reuses a dead input).
    @Test func residualInPlace() throws {
        var rng = SeededGenerator(seed: 0x1F)
        for channels in [16, 3] {
            let x = randomTensor([1, 8, 7, 7], using: &rng)
            let w = randomTensor([channels, 8, 3, 3], using: &rng)
            let addend = randomTensor([1, channels, 7, 7], using: &rng)
            let epilogue = FusedEpilogue(activation: .relu, addsResidual: true)
            let geometry = ConvGeometry(pads: [1, 1, 1, 1])
            let expected = ReferenceKernels.conv(input: x, weights: w, geometry: geometry, epilogue: epilogue, addend: addend)
            let plan = try ConvPlan(transposed: false, inputShape: x.shape, weightsShape: w.shape, weights: .constant(w),
                                    bias: nil, geometry: geometry, epilogue: epilogue)
            let output = addend.copy()
            try plan.run(input: x, weights: nil, bias: nil, addend: output, output: output)
            #expect(relativeError(output, expected) <= tolerance, "[\(plan.implementation)] \(channels) channels")
        }
    }

    /// ConvTranspose takes the same epilogue (a decoder's upsampling + skip connection).
    @Test func convTransposeEpilogueMatchesReference() throws {
        var rng = SeededGenerator(seed: 0x7E)
        for activation: FusedEpilogue.Activation in [.leakyRelu(alpha: 0.2), .silu] {
            let x = randomTensor([1, 16, 6, 7], using: &rng), w = randomTensor([16, 8, 4, 4], using: &rng)
            let b = randomTensor([8], using: &rng), addend = randomTensor([1, 8, 12, 14], using: &rng)
            var attributes = fusedAttributes(activation, sum: true)
            attributes["strides"] = .ints([2, 2])
            attributes["pads"] = .ints([1, 1, 1, 1])
            let kernel = try makeKernel("ConvTranspose", inputs: 4, attributes: attributes, constants: [1: w, 2: b],
                                        shapes: [0: x.shape])
            let geometry = ConvGeometry(strides: [2, 2], pads: [1, 1, 1, 1])
            let expected = ReferenceKernels.convTranspose(input: x, weights: w, bias: b, geometry: geometry,
                                                          epilogue: FusedEpilogue(activation: activation, addsResidual: true),
                                                          addend: addend)
            let y = try runKernel(kernel, [x, w, b, addend])
            #expect(y.shape == expected.shape)
            #expect(relativeError(y, expected) <= tolerance, "\(activation)")
        }
    }

    /// A ConvTranspose whose kernel equals its stride runs row by row in registers
    /// (`PatchConvTransposeKernel`): batch 2, one or many output channels, non-square
    /// blocks, with and without bias and activation; 53 input columns cover the 32- and
    /// 8-column vector steps and the scalar tail.
    @Test(arguments: [(1, [2, 2], true, true), (24, [2, 2], false, false), (100, [2, 2], true, false), (5, [3, 2], true, true),
                      (3, [2, 3], true, false), (4, [1, 1], false, true)])
    func convTransposeWithKernelEqualToStrideMatchesReference(_ oc: Int, _ kernel: [Int], _ withBias: Bool, _ sigmoid: Bool) throws {
        var rng = SeededGenerator(seed: 0x5CA7 &+ UInt64(oc))
        let x = randomTensor([2, 12, 9, 53], using: &rng), w = randomTensor([12, oc] + kernel, using: &rng)
        let b = randomTensor([oc], using: &rng)
        var attributes = fusedAttributes(sigmoid ? .sigmoid : nil, sum: false)
        attributes["strides"] = .ints(kernel)
        attributes["kernel_shape"] = .ints(kernel)
        let made = try makeKernel("ConvTranspose", inputs: withBias ? 3 : 2, attributes: attributes,
                                  constants: withBias ? [1: w, 2: b] : [1: w], shapes: [0: x.shape])
        #expect(made is PatchConvTransposeKernel)
        let expected = ReferenceKernels.convTranspose(input: x, weights: w, bias: withBias ? b : nil,
                                                      geometry: ConvGeometry(strides: kernel),
                                                      epilogue: FusedEpilogue(activation: sigmoid ? .sigmoid : nil))
        let y = try runKernel(made, withBias ? [x, nil, nil] : [x, nil])
        #expect(y.shape == expected.shape)
        #expect(relativeError(y, expected) <= tolerance, "oc \(oc), kernel \(kernel)")
        // Overlapping windows (stride below the kernel) keep the general kernel.
        guard kernel.contains(where: { $0 > 1 }) else { return }
        attributes["strides"] = .ints(kernel.map { max(1, $0 - 1) })
        let overlapping = try makeKernel("ConvTranspose", inputs: 2, attributes: attributes, constants: [1: w], shapes: [0: x.shape])
        #expect(!(overlapping is PatchConvTransposeKernel))
    }

    @Test func fusedAttributesParse() throws {
        let node = Node(name: "c", opType: "Conv", inputs: ["x", "w", "r"], outputs: ["y"], attributes: [
            Attribute(name: "fused_activation", value: .string("HardSigmoid")),
            Attribute(name: "fused_alpha", value: .float(0.25)), Attribute(name: "fused_sum", value: .int(1)),
        ])
        let epilogue = try FusedEpilogue(node: node)
        #expect(epilogue == FusedEpilogue(activation: .hardSigmoid(alpha: 0.25, beta: 0.5), addsResidual: true))
        let bad = Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["y"],
                       attributes: [Attribute(name: "fused_activation", value: .string("Softplus"))])
        #expect(throws: KernelError.self) { _ = try FusedEpilogue(node: bad) }
    }
}
}

extension DNNLKernelTests {
@Suite struct MatMulFamily {
    static let numpyCases: [([Int], [Int])] = [
        ([7], [7]), ([7], [7, 5]), ([4, 7], [7]), ([3, 2, 7], [7]), ([7], [3, 7, 5]),
        ([2, 3, 5, 9], [9, 4]), ([2, 1, 5, 9], [3, 9, 4]), ([1, 3, 1, 2, 5, 9], [2, 1, 4, 1, 9, 6]),
        ([33, 65], [65, 17]),
    ]

    @Test(arguments: numpyCases)
    func matMulKernelMatchesReference(_ a: [Int], _ b: [Int]) throws {
        var rng = SeededGenerator(seed: 0xA11 &+ UInt64(a.reduce(0, +) * 13 + b.reduce(0, +)))
        for constant in [false, true] {
            let w = randomTensor(b, using: &rng)
            let kernel = try makeKernel("MatMul", inputs: 2, constants: constant ? [1: w] : [:], shapes: [0: a, 1: b])
            for _ in 0..<2 {
                let x = randomTensor(a, using: &rng)
                let expected = ReferenceKernels.matMul(x, w)
                let y = try runKernel(kernel, [x, w])
                #expect(y.shape == expected.shape)
                if y.shape == expected.shape { #expect(relativeError(y, expected) <= tolerance, "constant B \(constant)") }
            }
        }
    }

    @Test(arguments: allActivations.map { Optional($0) } + [nil])
    func matMulEpilogueMatchesReference(_ activation: FusedEpilogue.Activation?) throws {
        var rng = SeededGenerator(seed: 0x5E)
        for sum in [false, true] {
            let x = randomTensor([2, 5, 12], using: &rng), w = randomTensor([12, 19], using: &rng)
            let addend = sum ? randomTensor([2, 5, 19], using: &rng) : nil
            let epilogue = FusedEpilogue(activation: activation, addsResidual: sum)
            let kernel = try makeKernel("MatMul", inputs: sum ? 3 : 2, attributes: fusedAttributes(activation, sum: sum),
                                        constants: [1: w], shapes: [0: x.shape])
            let expected = ReferenceKernels.matMul(x, w, epilogue: epilogue, addend: addend)
            let y = try runKernel(kernel, [x, w] + (addend.map { [$0] } ?? []))
            #expect(relativeError(y, expected) <= tolerance, "sum \(sum)")
        }
    }

    struct GemmCase: CustomTestStringConvertible, Sendable {
        var a: [Int], b: [Int], c: [Int]?
        var transA = false, transB = false
        var alpha: Float = 1, beta: Float = 1
        var activation: FusedEpilogue.Activation? = nil
        var sum = false
        var constantB = true
        var testDescription: String {
            "A\(a)\(transA ? "^T" : "") B\(b)\(transB ? "^T" : "") C\(c ?? []) alpha \(alpha) beta \(beta)"
                + " \(activation.map { "\($0)" } ?? "")\(sum ? " +residual" : "")\(constantB ? "" : " runtime B")"
        }
    }

    static let gemmCases: [GemmCase] = [
        GemmCase(a: [5, 7], b: [9, 7], c: [9], transB: true),                         // Linear layer: bias row
        GemmCase(a: [5, 7], b: [7, 9], c: [1, 9], constantB: false),
        GemmCase(a: [7, 5], b: [9, 7], c: [5, 9], transA: true, transB: true, alpha: 0.5, beta: 2),
        GemmCase(a: [5, 7], b: [7, 9], c: [5, 1], beta: -1),
        GemmCase(a: [5, 7], b: [7, 9], c: [], alpha: 2),
        GemmCase(a: [5, 7], b: [7, 9], c: [1]),
        GemmCase(a: [5, 7], b: [7, 9], c: [9], alpha: 1.5),                            // bias row, alpha != 1
        GemmCase(a: [5, 7], b: [7, 9], c: [9], beta: 0),
        GemmCase(a: [5, 7], b: [7, 9], c: nil),
        GemmCase(a: [6, 8], b: [10, 8], c: [10], transB: true, activation: .gelu, sum: true),
        GemmCase(a: [6, 8], b: [8, 10], c: [6, 10], alpha: 0.5, beta: 0.25, activation: .tanh, sum: true),
    ]

    @Test(arguments: gemmCases)
    func gemmKernelMatchesReference(_ g: GemmCase) throws {
        var rng = SeededGenerator(seed: 0x6E &+ UInt64(g.a.reduce(0, +) + (g.c?.count ?? 5)))
        let w = randomTensor(g.b, using: &rng)
        let c = g.c.map { randomTensor($0, using: &rng) }
        var attributes = fusedAttributes(g.activation, sum: g.sum)
        attributes["transA"] = .int(g.transA ? 1 : 0)
        attributes["transB"] = .int(g.transB ? 1 : 0)
        attributes["alpha"] = .float(g.alpha)
        attributes["beta"] = .float(g.beta)
        let inputCount = (c == nil ? 2 : 3) + (g.sum ? 1 : 0)
        let kernel = try makeKernel("Gemm", inputs: inputCount, attributes: attributes,
                                    constants: g.constantB ? [1: w] : [:], shapes: [0: g.a])
        let m = g.transA ? g.a[1] : g.a[0], n = g.transB ? g.b[0] : g.b[1]
        for _ in 0..<2 {
            let x = randomTensor(g.a, using: &rng)
            let addend = g.sum ? randomTensor([m, n], using: &rng) : nil
            let expected = ReferenceKernels.gemm(x, w, c, transA: g.transA, transB: g.transB, alpha: g.alpha, beta: g.beta,
                                                 epilogue: FusedEpilogue(activation: g.activation, addsResidual: g.sum),
                                                 addend: addend)
            let y = try runKernel(kernel, [x, w] + (c.map { [$0] } ?? []) + (addend.map { [$0] } ?? []))
            #expect(y.shape == [m, n])
            #expect(relativeError(y, expected) <= tolerance)
        }
    }

    @Test func gemmHandComputed() throws {
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4]), b = Tensor(shape: [2, 2], values: [5, 6, 7, 8])
        let c = Tensor(shape: [2], values: [1, -1])
        let kernel = try makeKernel("Gemm", inputs: 3, attributes: ["alpha": .float(0.5), "beta": .float(2)])
        // 0.5 * [[19, 22], [43, 50]] + 2 * [1, -1]
        #expect(try runKernel(kernel, [a, b, c]).scalars(as: Float.self) == [11.5, 9, 23.5, 23])
        let matmul = try makeKernel("MatMul", inputs: 2)
        #expect(try runKernel(matmul, [a, b]).scalars(as: Float.self) == [19, 22, 43, 50])
    }

    @Test func emptyAndMismatchedShapes() throws {
        let kernel = try makeKernel("MatMul", inputs: 2)
        // K == 0: all zeros, of shape [3, 4].
        let y = try runKernel(kernel, [Tensor(shape: [3, 0]), Tensor(shape: [0, 4])])
        #expect(y.shape == [3, 4] && y.scalars(as: Float.self).allSatisfy { $0 == 0 })
        #expect(try runKernel(kernel, [Tensor(shape: [0, 5]), Tensor(shape: [5, 4])]).shape == [0, 4])
        #expect(throws: KernelError.self) { _ = try runKernel(kernel, [Tensor(shape: [3, 5]), Tensor(shape: [4, 4])]) }
        #expect(throws: KernelError.self) { _ = try runKernel(kernel, [Tensor(shape: [2, 3, 5]), Tensor(shape: [3, 5, 4])]) }
        let gemm = try makeKernel("Gemm", inputs: 3)
        #expect(throws: KernelError.self) {
            _ = try runKernel(gemm, [Tensor(shape: [3, 5]), Tensor(shape: [5, 4]), Tensor(shape: [2, 4])])
        }
    }
}
}

extension DNNLKernelTests {
/// Not speed tests: print achieved GFLOP/s of representative layers at 1 and 2 threads
/// (plans made after setting the thread count; median and best of 30 runs after 5 warm-up).
@Suite struct Throughput {
    static func measure(_ label: String, macs: Int, _ body: () throws -> Void) rethrows {
        for _ in 0..<5 { try body() }
        var seconds: [Double] = []
        for _ in 0..<30 {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        seconds.sort()
        let median = seconds[seconds.count / 2]
        print(String(format: "throughput: %@, %d thread(s): median %.3f ms = %.1f GFLOP/s, best %.1f GFLOP/s",
                     label, ThreadPool.threadCount, median * 1e3, 2 * Double(macs) / median / 1e9,
                     2 * Double(macs) / seconds[0] / 1e9))
    }

    @Test func layersThroughputIsReported() throws {
        let saved = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(saved) }
        var rng = SeededGenerator(seed: 56)
        let convs: [(String, [Int], [Int], ConvGeometry)] = [
            ("3x3 conv 64->64 @56x56", [1, 64, 56, 56], [64, 64, 3, 3], ConvGeometry(pads: [1, 1, 1, 1])),
            ("1x1 conv 256->64 @56x56", [1, 256, 56, 56], [64, 256, 1, 1], ConvGeometry()),
            ("depthwise 3x3 c=32 @112x112", [1, 32, 112, 112], [32, 1, 3, 3], ConvGeometry(pads: [1, 1, 1, 1], group: 32)),
        ]
        let a = randomTensor([128, 768], using: &rng), b = randomTensor([768, 3072], using: &rng)
        for threads in [1, 2] {
            ThreadPool.setThreadCount(threads)
            for (label, input, weights, geometry) in convs {
                let w = randomTensor(weights, using: &rng), bias = randomTensor([weights[0]], using: &rng)
                let x = randomTensor(input, using: &rng)
                for blocked in [true, false] where blocked || label.hasPrefix("3x3") {
                    let plan = try ConvPlan(transposed: false, inputShape: input, weightsShape: weights, weights: .constant(w),
                                            bias: .constant(bias), geometry: geometry, blockedLayouts: blocked)
                    let y = Tensor(shape: plan.outputShape)
                    try Self.measure("\(label) [\(plan.implementation)\(blocked ? "" : ", plain NCHW forced")]", macs: plan.macs) {
                        try plan.run(input: x, output: y)
                    }
                }
            }
            let plan = try MatMulPlan(a: [128, 768], b: [768, 3072], constantB: b)
            let y = Tensor(shape: plan.outputShape)
            try Self.measure("MatMul [128,768]x[768,3072] constant B [\(plan.implementation)]", macs: plan.macs) {
                try plan.run(a: a, output: y)
            }
        }
    }
}
}
