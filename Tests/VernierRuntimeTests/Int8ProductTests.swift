import Foundation
import Testing
import VernierGraph
import VernierTestSupport
@testable import VernierRuntime

/// The int8 convolution (oneDNN `jit_uni_int8`) against the graph run as written: a QDQ
/// convolution fused into QLinearConv must give the integers that dequantizing, running
/// the fp32 convolution and quantizing again give, up to one step where the two
/// roundings of a value at a half step differ.
///
/// The weights stay within +-63 (`GraphBuilder.qdqConv`) so no pair of u8 x s8 products
/// leaves int16: without VNNI oneDNN sums pairs with saturation, which the kernel's
/// comment describes and these tests do not exercise.
struct Int8ProductTests {
    typealias Case = GraphBuilder.QDQConv

    /// `b` compiled as written (no graph passes), run on `x` for its output `y`, and
    /// compiled with the passes.
    func asWrittenAndOptimized(_ b: GraphBuilder, _ x: Tensor) throws -> (reference: Tensor, fused: ExecutionPlan) {
        var plain = ExecutionOptions()
        plain.optimizeGraph = false
        let reference = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plain).run(["x": x])["y"])
        return (reference, try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets))
    }

    /// The first node of `opType` in `b` after the graph passes, its constant inputs and
    /// the context its kernels are made from.
    func fusedNode(_ b: GraphBuilder, _ opType: String) throws -> (node: Node, constants: [Tensor?], context: KernelContext) {
        let optimized = GraphPasses.optimize(try b.infer())
        let node = try #require(optimized.graph.nodes.first { $0.opType == opType })
        let initializers = optimized.graph.initializerIndex
        let constants = node.inputs.map { initializers[$0].flatMap(Tensor.init) }
        let context = KernelContext(node: node, opset: 13, inputTypes: node.inputs.map { optimized.type(of: $0) },
                                    outputTypes: node.outputs.map { optimized.type(of: $0) }, constantInputs: constants,
                                    compileSubgraph: { _ in throw KernelError.unsupported("no subgraphs") })
        return (node, constants, context)
    }

    /// The largest difference between the fused and the unfused run, in output steps, the
    /// share of outputs that differ at all, and the kernels the fused plan runs.
    func compare(_ c: Case) throws -> (steps: Float, differing: Double, ops: [String], int8: Bool) {
        let b = GraphBuilder.qdqConv(c)
        var rng = SplitMix64(seed: 11)
        let count = c.channels * c.size * c.size
        let x = Tensor(shape: [1, c.channels, c.size, c.size], values: (0..<count).map { _ in rng.signedUnit() * 2.5 })
        let (reference, fused) = try asWrittenAndOptimized(b, x)
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.shape == reference.shape)
        if c.second { #expect(fused.channelsLastValues == ["yq"], "the 8-bit tensor between the convolutions") }
        let (a, r) = (output.scalars(as: Float.self), reference.scalars(as: Float.self))
        let steps = zip(a, r).map { abs($0 - $1) / 0.05 }
        let differing = Double(steps.filter { $0 > 0.5 }.count) / Double(max(1, steps.count))
        let int8 = fused.steps.contains { $0.kernel is Int8ConvKernel }
        return (steps.max() ?? .infinity, differing, fused.steps.map(\.opType), int8)
    }

    @Test func aQDQConvRunsAsOneInt8ConvWithTheUnfusedResults() throws {
        let result = try compare(Case())
        #expect(result.ops == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"])
        #expect(result.int8, "the oneDNN int8 kernel runs it")
        #expect(result.steps <= 1.001)
        #expect(result.differing < 0.02, "a half-step tie may round either way, not more")
    }

    @Test func stridedDepthwisePerTensorSignedOutputWithoutBias() throws {
        let c = Case(channels: 16, outputs: 16, size: 10, stride: 2, group: 16, xZero: 0, outputSigned: true,
                     perChannel: false, bias: false, relu: false)
        let result = try compare(c)
        #expect(result.ops == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"])
        #expect(result.int8)
        #expect(result.steps <= 1.001)
        #expect(result.differing < 0.02, "a half-step tie may round either way, not more")
    }

    /// An fp32 bias (off the int32 grid by a little) is rounded into the product's units.
    @Test func anFP32BiasIsRoundedIntoTheProductsUnits() throws {
        let result = try compare(Case(floatBias: true))
        #expect(result.ops == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"])
        #expect(result.int8)
        #expect(result.steps <= 1.001)
        #expect(result.differing < 0.02)
    }

    @Test func pointwiseWithAZeroPointAndNoPadding() throws {
        let result = try compare(Case(channels: 32, outputs: 8, size: 7, kernel: 1, pad: 0, xZero: 128))
        #expect(result.int8)
        #expect(result.steps <= 1.001)
        #expect(result.differing < 0.02, "a half-step tie may round either way, not more")
    }

    /// The differences are real, not both runs producing the same constant: the output
    /// spans many steps.
    @Test func theOutputsVary() throws {
        let b = GraphBuilder.qdqConv(Case())
        var rng = SplitMix64(seed: 11)
        let x = Tensor(shape: [1, 16, 9, 9], values: (0..<1296).map { _ in rng.signedUnit() * 2.5 })
        let y = try #require(try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets).run(["x": x])["y"])
        #expect(Set(y.scalars(as: Float.self)).count > 20)
    }

    /// The exact reference kernel, which runs the QLinearConv forms oneDNN does not take,
    /// applies a fused activation where the int8 kernel does: both on one fused node.
    @Test func theReferenceKernelAppliesAFusedReluAsTheInt8KernelDoes() throws {
        let (node, constants, ctx) = try fusedNode(GraphBuilder.qdqConv(Case(xZero: 0)), "QLinearConv")
        #expect(try node.string(FusedAttributes.activation) == "Relu")
        var rng = SplitMix64(seed: 4)
        let x = Tensor(.uint8, shape: [1, 16, 9, 9], values: (0..<1296).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        func run(_ kernel: Kernel) throws -> [UInt8] {
            let outputs = OutputSlots(count: 1, maxBytes: 1 << 20)
            try kernel.run([x] + constants.dropFirst(), outputs)
            return try #require(outputs.results[0]).scalars(as: UInt8.self)
        }
        let fast = try run(try #require(try Int8ConvKernel.make(ctx)))
        let exact = try run(try IntegerConvKernel(ctx, qlinear: true))
        #expect(fast.count == 24 * 81)
        #expect(zip(fast, exact).allSatisfy { abs(Int($0) - Int($1)) <= 1 })
        #expect(zip(fast, exact).filter { $0 != $1 }.count < fast.count / 50)
        #expect(exact.filter { $0 == 5 }.count > 100, "the relu clamps many outputs to the zero point")
        #expect(exact.min() == 5)
    }

    /// Two int8 convolutions hand their 8-bit tensor over channels-last (no reorder) and
    /// still give the unfused graph's outputs; the output scale of the second is coarse
    /// (0.1), so its steps are checked against its own scale.
    /// A squeeze-and-excitation scale between two int8 convolutions (EfficientNet's
    /// blocks as a QDQ quantizer writes them): the map's global pool reads it
    /// channels-last and the per-channel QLinearMul scales it there, so the 8-bit maps
    /// and the pool's fp32 input stay channels-last and the convolutions reorder only at
    /// the graph's edges. The outputs equal the same plan's with plain layouts, and the
    /// graph's as written.
    @Test func aSqueezeExcitationScaleKeepsTheMapsChannelsLast() throws {
        var b = GraphBuilder.qdqConv(Case(second: true))
        let second = try #require(b.nodes.firstIndex { $0.opType == "Conv" && $0.inputs.first == "yd" })
        var tail = Array(b.nodes[second...])
        tail[0].inputs[0] = "md"
        b.nodes.removeSubrange(second...)
        b.initializers += [
            TensorData(floats: [0.05], name: "gs", dims: []), GraphBuilder.quantized("gz", .uint8, [], [0]),
            TensorData(floats: [0.3], name: "ms", dims: []), GraphBuilder.quantized("mz", .uint8, [], [0]),
        ]
        b.node("GlobalAveragePool", ["yd"], ["g"])
        b.node("QuantizeLinear", ["g", "gs", "gz"], ["gq"])
        b.node("DequantizeLinear", ["gq", "gs", "gz"], ["gd"])
        b.node("Mul", ["yd", "gd"], ["m"])
        b.node("QuantizeLinear", ["m", "ms", "mz"], ["mq"])
        b.node("DequantizeLinear", ["mq", "ms", "mz"], ["md"])
        b.nodes += tail
        var rng = SplitMix64(seed: 21)
        let x = Tensor(shape: [1, 16, 9, 9], values: (0..<1296).map { _ in rng.signedUnit() * 2.5 })
        let (reference, fused) = try asWrittenAndOptimized(b, x)
        #expect(fused.channelsLastValues == ["yq", "yd", "mq"])
        // Only at the graph's plain edges: the first conv's 8-bit input, the second's output.
        #expect(fused.relayoutBytes == ["c": 16 * 81, "c2": 8 * 81])
        #expect(fused.steps.map(\.opType).contains("com.microsoft.QLinearMul"))
        var plainOptions = ExecutionOptions()
        plainOptions.blockedLayouts = false
        let plain = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: plainOptions)
        #expect(plain.channelsLastValues.isEmpty)
        let output = try #require(try fused.run(["x": x])["y"]).scalars(as: Float.self)
        let plainOutput = try #require(try plain.run(["x": x])["y"]).scalars(as: Float.self)
        let expected = reference.scalars(as: Float.self)
        #expect(output.count == 8 * 81)
        // The pools sum in another order, which may move a gate by one step at a tie.
        #expect(zip(output, plainOutput).filter { $0 != $1 }.count < output.count / 50)
        #expect(zip(output, plainOutput).allSatisfy { abs($0 - $1) <= 0.1001 })
        #expect(Double(zip(output, expected).filter { abs($0 - $1) > 0.1001 }.count) < 0.05 * Double(output.count))
        #expect(Set(output).count > 20)
    }

    @Test func twoInt8ConvsInARowKeepTheirTensorChannelsLast() throws {
        let b = GraphBuilder.qdqConv(Case(second: true))
        var rng = SplitMix64(seed: 12)
        let x = Tensor(shape: [1, 16, 9, 9], values: (0..<1296).map { _ in rng.signedUnit() * 2.5 })
        let (reference, fused) = try asWrittenAndOptimized(b, x)
        #expect(fused.channelsLastValues == ["yq"])
        #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "QLinearConv", "QLinearConv", "DequantizeLinear"])
        let output = try #require(try fused.run(["x": x])["y"]).scalars(as: Float.self)
        let expected = reference.scalars(as: Float.self)
        #expect(output.count == 8 * 81)
        // A one-step difference in the first conv's output may move the second's by one step too.
        #expect(zip(output, expected).allSatisfy { abs($0 - $1) <= 0.1001 })
        #expect(Double(zip(output, expected).filter { abs($0 - $1) > 0.05 }.count) < 0.05 * Double(output.count))
        #expect(Set(output).count > 20)
    }

    @Test func channelsLastCopiesRoundTrip() throws {
        let values = (0..<60).map { Float($0) }
        let plain = Tensor(shape: [1, 3, 4, 5], values: values)
        var last = Tensor(shape: [1, 3, 4, 5])
        try permuteChannels(plain, into: &last, toChannelsLast: true)
        // Element (c=1, h=0, w=2) sits at (h * W + w) * C + c = 2 * 3 + 1.
        #expect(last.scalars(as: Float.self)[7] == values[1 * 20 + 2])
        #expect(last.layout == .channelsLast)
        var back = Tensor(shape: [1, 3, 4, 5])
        try permuteChannels(last, into: &back, toChannelsLast: false)
        #expect(back.scalars(as: Float.self) == values)
    }

    /// A QDQ Linear layer runs as one int8 matmul with the unfused graph's outputs.
    @Test func aQDQMatMulRunsAsOneInt8MatMulWithTheUnfusedResults() throws {
        let b = GraphBuilder.qdqMatMul()
        var rng = SplitMix64(seed: 13)
        let x = Tensor(shape: [1, 20, 48], values: (0..<960).map { _ in rng.signedUnit() * 2 })
        let (reference, fused) = try asWrittenAndOptimized(b, x)
        #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "QLinearMatMul", "DequantizeLinear"])
        #expect(fused.steps.contains { $0.kernel is Int8MatMulKernel }, "the oneDNN int8 kernel runs it")
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.shape == [1, 20, 40])
        let steps = zip(output.scalars(as: Float.self), reference.scalars(as: Float.self)).map { abs($0 - $1) / 0.05 }
        #expect(steps.allSatisfy { $0 <= 1.001 })
        #expect(Double(steps.filter { $0 > 0.5 }.count) < 0.02 * Double(steps.count))
        #expect(Set(output.scalars(as: Float.self)).count > 20)
    }

    /// A QDQ Gemm (transposed weights, int32 or fp32 bias, quantized or fp32 result) runs
    /// as one int8 QGemm with the unfused graph's outputs, within one output step (or,
    /// for an fp32 result, half a product step per bias plus fp32 rounding).
    @Test(arguments: [(false, true), (true, true), (false, false)])
    func aQDQGemmRunsAsOneInt8QGemmWithTheUnfusedResults(floatBias: Bool, quantizedOutput: Bool) throws {
        let b = GraphBuilder.qdqGemm(floatBias: floatBias, quantizedOutput: quantizedOutput)
        var rng = SplitMix64(seed: 17)
        let x = Tensor(shape: [20, 48], values: (0..<960).map { _ in rng.signedUnit() * 2 })
        let (reference, fused) = try asWrittenAndOptimized(b, x)
        #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "com.microsoft.QGemm"] + (quantizedOutput ? ["DequantizeLinear"] : []))
        #expect(fused.steps.contains { $0.kernel is Int8MatMulKernel }, "the oneDNN int8 kernel runs it")
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.shape == [20, 40])
        let (a, r) = (output.scalars(as: Float.self), reference.scalars(as: Float.self))
        #expect(Set(a).count > 20)
        if quantizedOutput {
            let steps = zip(a, r).map { abs($0 - $1) / 0.05 }
            #expect(steps.allSatisfy { $0 <= 1.001 })
            #expect(Double(steps.filter { $0 > 0.5 }.count) < 0.02 * Double(steps.count))
        } else {
            let largest = r.map(abs).max() ?? 0
            #expect(zip(a, r).allSatisfy { abs($0 - $1) <= 1e-5 * largest + 0.5 * 0.02 * 0.006 })
        }
    }

    /// The exact QGemm kernel (what runs the forms oneDNN does not take) and the int8
    /// kernel on one fused node: the same integers, up to a half-step tie.
    @Test func theExactQGemmKernelAgreesWithTheInt8One() throws {
        let (_, constants, ctx) = try fusedNode(GraphBuilder.qdqGemm(rows: 7, k: 33, n: 19), "QGemm")
        var rng = SplitMix64(seed: 23)
        let x = Tensor(.uint8, shape: [7, 33], values: (0..<231).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        func run(_ kernel: Kernel) throws -> [UInt8] {
            let outputs = OutputSlots(count: 1, maxBytes: 1 << 20)
            try kernel.run([x] + constants.dropFirst(), outputs)
            return try #require(outputs.results[0]).scalars(as: UInt8.self)
        }
        let fast = try run(try #require(try Int8MatMulKernel.makeGemm(ctx)))
        let exact = try run(try QGemmReferenceKernel(ctx))
        #expect(fast.count == 7 * 19)
        #expect(zip(fast, exact).allSatisfy { abs(Int($0) - Int($1)) <= 1 })
        #expect(zip(fast, exact).filter { $0 != $1 }.count <= 2)
        #expect(Set(exact).count > 20)
    }

    /// Reshape and Transpose moved onto the 8-bit values give exactly the graph's results:
    /// a quantized value dequantized and quantized again with the same parameters is itself.
    @Test func dataMovementOnQuantizedValuesGivesTheGraphsResultsExactly() throws {
        var rng = SplitMix64(seed: 19)
        // Values on and between the quantization steps, some beyond the 8-bit range.
        let x = Tensor(shape: [1, 6, 8], values: (0..<48).map { i in
            i % 3 == 0 ? (Float(Int(rng.next() % 200)) - 80.5) * 0.03 : rng.signedUnit() * 9
        })
        let (reference, fused) = try asWrittenAndOptimized(GraphBuilder.qdqDataMovement(), x)
        #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "Reshape", "Transpose", "DequantizeLinear"])
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.shape == [1, 2, 6, 4])
        #expect(output.scalars(as: Float.self) == reference.scalars(as: Float.self))
        #expect(Set(output.scalars(as: Float.self)).count > 20)
    }

    /// The forms only the exact QGemm kernel runs (transA, alpha, u8 weights with a zero
    /// point, a full [M, N] C; then no C and an fp32 result) against the definition
    /// written out element by element.
    @Test(arguments: [true, false])
    func theExactQGemmKernelComputesTheDefinition(requantized: Bool) throws {
        let (m, k, n) = (3, 5, 4)
        var rng = SplitMix64(seed: 31)
        let aValues = (0..<(k * m)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let bValues = (0..<(k * n)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let cValues = (0..<(m * n)).map { _ in Int32(rng.next() % 2001) - 1000 }
        let scalar = { (v: Float) in Tensor(shape: [], values: [v]) }
        let inputs: [Tensor?] = [
            Tensor(.uint8, shape: [k, m], values: aValues), scalar(0.1), Tensor(.uint8, shape: [], values: [UInt8(7)]),
            Tensor(.uint8, shape: [k, n], values: bValues), scalar(0.05), Tensor(.uint8, shape: [], values: [UInt8(3)]),
        ] + (requantized ? [Tensor(.int32, shape: [m, n], values: cValues), scalar(0.02), Tensor(.int8, shape: [], values: [Int8(-5)])]
                         : [])
        let (outputs, kernel) = try runFamilyKernel(CustomDomainKernels.all, "QGemm", inputs, ["transA": .int(1), "alpha": .float(0.5)],
                                                    constants: Set(1...(inputs.count - 1)))
        #expect(kernel is QGemmReferenceKernel)
        let y = try #require(outputs[0])
        #expect(y.shape == [m, n] && y.elementType == (requantized ? .int8 : .float))
        for i in 0..<m {
            for j in 0..<n {
                var sum = requantized ? Int(cValues[i * n + j]) : 0
                for p in 0..<k { sum += (Int(aValues[p * m + i]) - 7) * (Int(bValues[p * n + j]) - 3) }
                let real = Double(sum) * 0.5 * Double(Float(0.1)) * Double(Float(0.05))
                if requantized {
                    let q = min(127, max(-128, (real / Double(Float(0.02))).rounded(.toNearestOrEven) - 5))
                    #expect(y.scalars(as: Int8.self)[i * n + j] == Int8(q), "(\(i), \(j))")
                } else {
                    #expect(y.scalars(as: Float.self)[i * n + j] == Float(real), "(\(i), \(j))")
                }
            }
        }
    }

    /// QLinearAdd and QLinearMul give the QDQ graph's results bit for bit: same shapes,
    /// a broadcast row (a bias), a broadcast scalar, a value repeated along each row,
    /// uint8 and int8, results that saturate at both ends, rows of 37; a constant single
    /// value (the look-up form) as well.
    @Test func qlinearAddAndMulGiveTheGraphsResultsExactly() throws {
        var rng = SplitMix64(seed: 23)
        let x = Tensor(shape: [1, 6, 37], values: (0..<222).map { _ in rng.signedUnit() * 5 })
        for op in ["Add", "Mul"] {
            for type in [ElementType.uint8, .int8] {
                for bShape in [[1, 6, 37], [37], [], [1, 6, 1]] {
                    let b = GraphBuilder.qdqBinary(op, type: type, xShape: [1, 6, 37], bShape: bShape, outScale: op == "Mul" ? 0.04 : 0.03)
                    let (reference, fused) = try asWrittenAndOptimized(b, x)
                    #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "com.microsoft.QLinear" + op, "DequantizeLinear"])
                    // A constant single value makes the op a look-up over x's 256 values.
                    let kernel = try #require(fused.steps[1].kernel as? QLinearBinaryKernel)
                    #expect((kernel.constantOperand?.variable == 0) == bShape.isEmpty, "\(op) \(type) b \(bShape)")
                    let output = try #require(try fused.run(["x": x])["y"])
                    let (got, want) = (output.scalars(as: Float.self), reference.scalars(as: Float.self))
                    #expect(got == want, "\(op) \(type) b \(bShape)")
                    #expect(Set(want).count > 10, "\(op) \(type) b \(bShape)")
                }
            }
        }
    }

    /// QLinearSigmoid's lookup table gives the QDQ graph's results bit for bit, uint8 and
    /// int8, over inputs that reach both ends of the 8-bit range.
    @Test func qlinearSigmoidGivesTheGraphsResultsExactly() throws {
        var rng = SplitMix64(seed: 31)
        let x = Tensor(shape: [1, 6, 8], values: (0..<48).map { _ in rng.signedUnit() * 8 })
        for type in [ElementType.uint8, .int8] {
            let (reference, fused) = try asWrittenAndOptimized(GraphBuilder.qdqUnary("Sigmoid", type: type), x)
            #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "com.microsoft.QLinearSigmoid", "DequantizeLinear"])
            // The scales are constants, so the table was made at plan time.
            let lookup = try #require(fused.steps.lazy.compactMap { $0.kernel as? QLinearLookupKernel<SigmoidOp> }.first)
            #expect(lookup.planned?.type == type)
            let output = try #require(try fused.run(["x": x])["y"])
            let (got, want) = (output.scalars(as: Float.self), reference.scalars(as: Float.self))
            #expect(got == want, "\(type)")
            #expect(Set(want).count > 20, "\(type)")
        }
    }

    /// A quantized SiLU (Mul of x and its QLinearSigmoid) or HardSwish (of x and its
    /// quantized HardSigmoid, whose alpha and beta must reach the table) runs as one
    /// look-up with the graph's results bit for bit, over all 256 inputs, uint8 and int8, the gate as either
    /// operand, its zero point the same initializer or an equal copy; a Mul that reads the
    /// sigmoid's result with other parameters keeps both ops.
    @Test(arguments: [ElementType.uint8, .int8], ["Sigmoid", "HardSigmoid"])
    func aQuantizedSiLURunsAsOneLookupWithTheGraphsResults(_ type: ElementType, _ gateOp: String) throws {
        // x's steps of 0.05 around its zero point reach every 8-bit value.
        let zero: Float = type == .int8 ? -7 : 121
        let low: Float = type == .int8 ? -128 : 0
        let x = Tensor(shape: [1, 16, 16], values: (0..<256).map { (Float($0) + low - zero) * 0.05 })
        for (gateFirst, zeroPoint) in [(false, "sz"), (true, "sz"), (false, "sz2")] {
            let (reference, fused) = try asWrittenAndOptimized(GraphBuilder.qdqSiLU(type: type, gateFirst: gateFirst,
                                                                                    sigmoidZeroPointName: zeroPoint, gate: gateOp), x)
            #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "com.microsoft.QLinearMul", "DequantizeLinear"])
            let gate = try #require(fused.steps.lazy.compactMap { $0.kernel as? QLinearGateKernel }.first)
            #expect(gate.planned?.type == type)
            #expect(fused.steps[1].sourceNodes.count == 6, "Sigmoid, Mul and the Q/DQ pairs around them")
            let output = try #require(try fused.run(["x": x])["y"])
            let (got, want) = (output.scalars(as: Float.self), reference.scalars(as: Float.self))
            #expect(got == want, "\(type) gate first: \(gateFirst), \(zeroPoint)")
            #expect(Set(want).count > 100)
        }
        let (reference, unfused) = try asWrittenAndOptimized(GraphBuilder.qdqSiLU(type: type, sigmoidZeroPointName: "szOther", gate: gateOp), x)
        let lookup = gateOp == "Sigmoid" ? "com.microsoft.QLinearSigmoid" : "HardSigmoid"
        #expect(unfused.steps.map(\.opType) == ["QuantizeLinear", lookup, "com.microsoft.QLinearMul", "DequantizeLinear"])
        #expect(unfused.steps[1].kernel is QLinearLookupKernel<SigmoidOp> || unfused.steps[1].kernel is QLinearLookupKernel<HardSigmoidOp>)
        #expect(try unfused.run(["x": x])["y"]?.scalars(as: Float.self) == reference.scalars(as: Float.self))
    }

    /// A quantized conv whose result is not quantized again (TensorRT-style QDQ, with an
    /// fp32 bias and a residual Add) runs int8 and writes fp32: the same values as the
    /// graph as written, up to the bias's rounding into product steps (2e-5 here).
    @Test func aConvWhoseResultStaysFloatRunsInt8WithItsResidualAndRelu() throws {
        let c = Case(channels: 16, outputs: 16, floatBias: true, quantizedOutput: false, residual: true)
        let b = GraphBuilder.qdqConv(c)
        var rng = SplitMix64(seed: 17)
        let x = Tensor(shape: [1, 16, 9, 9], values: (0..<1296).map { _ in rng.signedUnit() * 2.5 })
        let (reference, fused) = try asWrittenAndOptimized(b, x)
        #expect(fused.steps.map(\.opType) == ["QuantizeLinear", "QLinearConv"])
        #expect(fused.steps.contains { $0.kernel is Int8ConvKernel })
        let output = try #require(try fused.run(["x": x])["y"])
        #expect(output.elementType == .float && output.shape == [1, 16, 9, 9])
        #expect(relativeError(output, reference) < 1e-4)
        #expect(output.scalars(as: Float.self).filter { $0 == 0 }.count > 50, "the relu clamps")

        // The exact reference kernel on the same fused node agrees.
        let (_, constants, ctx) = try fusedNode(b, "QLinearConv")
        let quantizedInput = Tensor(.uint8, shape: [1, 16, 9, 9], values: (0..<1296).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let inputs = [quantizedInput] + Array(constants.dropFirst().dropLast()) + [x]
        func run(_ kernel: Kernel) throws -> Tensor {
            let outputs = OutputSlots(count: 1, maxBytes: 1 << 20)
            try kernel.run(inputs, outputs)
            return try #require(outputs.results[0])
        }
        let fast = try run(try #require(try Int8ConvKernel.make(ctx)))
        let exact = try run(try IntegerConvKernel(ctx, qlinear: true))
        #expect(relativeError(fast, exact) < 1e-5)
    }

    /// Without VNNI and with a source zero point inside the range, a channel with weights
    /// beyond +-64 is halved and its scale doubled, so no u8 x s8 pair sum leaves int16;
    /// other channels stay as they are, and so does everything after a ReLU (zero point 0).
    @Test func fullRangeWeightChannelsAreNarrowedWithoutVNNI() {
        // [2 channels, 3]: channel 0 reaches -127, channel 1 stays within 64.
        let w = Tensor(.int8, shape: [2, 3, 1, 1], values: [Int8(-127), 3, 65, 64, -64, 1])
        let (narrowed, scales) = Int8Weights.narrowed(w, scales: [0.01], channelAxis: 0, sourceZeroPoint: 128)
        let (kept, keptScales) = Int8Weights.narrowed(w, scales: [0.01], channelAxis: 0, sourceZeroPoint: 0)
        #expect(kept.scalars(as: Int8.self) == w.scalars(as: Int8.self) && keptScales == [0.01])
        if Int8Weights.accumulateExactly {
            #expect(narrowed.scalars(as: Int8.self) == w.scalars(as: Int8.self) && scales == [0.01])
        } else {
            // -63.5 and 32.5 round to even: -64 and 32; 1.5 -> 2.
            #expect(narrowed.scalars(as: Int8.self) == [-64, 2, 32, 64, -64, 1])
            #expect(scales == [0.02, 0.01])
        }
        // Matmul weights [K, N]: the channel is the column.
        let m = Tensor(.int8, shape: [2, 2], values: [Int8(100), 1, 7, -9])
        let (mn, ms) = Int8Weights.narrowed(m, scales: [0.5, 0.25], channelAxis: 1, sourceZeroPoint: 3)
        if !Int8Weights.accumulateExactly {
            #expect(mn.scalars(as: Int8.self) == [50, 1, 4, -9])
            #expect(ms == [1.0, 0.25])
        }
        // Every int8 value halves to v / 2 rounded half to even, along either axis; the
        // other channel (all 1) stays.
        let all = (-128...127).map { Int8($0) }
        let halves = all.map { Int8((Float($0) / 2).rounded(.toNearestOrEven)) }
        let conv = Tensor(.int8, shape: [2, 256, 1, 1], values: all + Array(repeating: 1, count: 256))
        let matmul = Tensor(.int8, shape: [256, 2], values: all.flatMap { [$0, Int8(1)] })
        let (c, _) = Int8Weights.narrowed(conv, scales: [1], channelAxis: 0, sourceZeroPoint: 7)
        let (k, _) = Int8Weights.narrowed(matmul, scales: [1], channelAxis: 1, sourceZeroPoint: 7)
        if !Int8Weights.accumulateExactly {
            #expect(c.scalars(as: Int8.self) == halves + Array(repeating: 1, count: 256))
            #expect(k.scalars(as: Int8.self) == halves.flatMap { [$0, Int8(1)] })
        }
    }
}
