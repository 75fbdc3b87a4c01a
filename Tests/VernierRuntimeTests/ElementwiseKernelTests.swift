import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

/// Runs one Elementwise-family kernel on `inputs` as a node of `op` would.
/// `inPlace`: output 0 gets input `inPlace`'s memory, as the memory planner may arrange.
func runElementwise(_ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue] = [:],
                    opset: Int = 18, outputCount: Int = 1, inPlace: Int? = nil) throws -> [Tensor] {
    let node = Node(name: op, opType: op, inputs: inputs.indices.map { inputs[$0] == nil ? "" : "x\($0)" },
                    outputs: (0..<outputCount).map { "y\($0)" },
                    attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
    let context = KernelContext(node: node, opset: opset, inputTypes: [], outputTypes: [], constantInputs: [],
                                compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") })
    guard let factory = ElementwiseKernels.all[op] else { throw KernelError.unsupported("no kernel for \(op)") }
    let kernel = try factory(context)
    let slots = OutputSlots(count: outputCount, maxBytes: 1 << 32)
    if let inPlace, let source = inputs[inPlace] {
        slots.slots[0] = OutputSlots.Slot(buffer: source.buffer, offset: source.byteOffset, capacity: source.byteCount)
    }
    try kernel.run(inputs, slots)
    return try slots.results.map { tensor in
        guard let tensor else { throw KernelError.invalid("output not produced") }
        return tensor
    }
}

/// A float tensor with values uniform in `range`.
func uniformTensor(_ shape: [Int], _ range: Range<Float>, using rng: inout SeededGenerator) -> Tensor {
    Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: range, using: &rng) })
}

/// Largest |actual - expected| / (|expected| + floor) over the elements (NaNs must match).
func worstError(_ actual: Tensor, _ expected: Tensor, floor: Double = 1e-6) -> Double {
    let x = actual.doubles() ?? [], y = expected.doubles() ?? []
    guard x.count == y.count, actual.shape == expected.shape else { return .infinity }
    var worst = 0.0
    for (p, q) in zip(x, y) {
        if p.isNaN && q.isNaN || p == q { continue }
        worst = max(worst, abs(p - q) / (abs(q) + floor))
    }
    return worst
}

@Suite struct ElementwiseKernelTests {
    // MARK: broadcasting

    @Test func broadcastPlanMergesDimsIntoLongRows() throws {
        let cnn = try BroadcastPlan([[1, 64, 112, 112], [64, 1, 1]])
        #expect(cnn.dims == [64, 112 * 112])
        #expect(cnn.strides[1] == [1, 0])
        let transformer = try BroadcastPlan([[2, 5, 7], [7]])
        #expect(transformer.dims == [70 / 7, 7])
        #expect(transformer.innerStrides == [1, 1])
        let same = try BroadcastPlan([[3, 4, 5], [3, 4, 5]])
        #expect(same.dims == [60] && same.isElementwiseFlat)
        let scalar = try BroadcastPlan([[3, 4, 5], []])
        #expect(scalar.dims == [60] && scalar.innerStrides == [1, 0])
        let outer = try BroadcastPlan([[4, 1], [1, 3]])
        #expect(outer.outputShape == [4, 3] && outer.strides[0] == [1, 0] && outer.strides[1] == [0, 1])
        #expect(throws: KernelError.self) { try BroadcastPlan([[3, 4], [5]]) }
    }

    @Test func rowsVisitEveryElementOnceFromAnyStart() throws {
        let plan = try BroadcastPlan([[3, 1, 5], [1, 4, 1]])
        var seen: [Int] = []
        for split in [0, 7, 13, 60] {
            seen = []
            plan.forEachRow(in: 0..<split) { o, offsets, count in
                for i in 0..<count {
                    let index = ReferenceKernels.multiIndex(o + i, [3, 4, 5])
                    #expect(offsets[0] + i * plan.innerStrides[0] == ReferenceKernels.broadcastIndex(index, [3, 1, 5]))
                    #expect(offsets[1] + i * plan.innerStrides[1] == ReferenceKernels.broadcastIndex(index, [1, 4, 1]))
                    seen.append(o + i)
                }
            }
            plan.forEachRow(in: split..<60) { o, _, count in seen.append(contentsOf: o..<(o + count)) }
            #expect(seen == Array(0..<60))
        }
    }

    static let shapePairs: [([Int], [Int])] = [
        ([7], [7]), ([3, 5, 9], [1]), ([], [4, 3]), ([1, 64, 5, 7], [64, 1, 1]), ([2, 3, 17], [17]),
        ([4, 1, 5], [1, 3, 1]), ([13, 1, 3], [1, 11, 3]), ([3, 40_001], [3, 1]), ([5, 0, 3], [3]),
        ([2, 3, 70_000], [2, 3, 70_000]), ([1, 1], [6, 1, 1]),
    ]

    @Test(arguments: shapePairs)
    func binaryFloatOpsMatchTheReference(_ a: [Int], _ b: [Int]) throws {
        var rng = SeededGenerator(seed: UInt64(a.reduce(7, *) + b.count))
        let x = uniformTensor(a, -2..<2, using: &rng), y = uniformTensor(b, 0.5..<2, using: &rng)
        let ops: [(String, ([Double]) -> Double)] = [
            ("Add", { $0[0] + $0[1] }), ("Sub", { $0[0] - $0[1] }), ("Mul", { $0[0] * $0[1] }),
            ("Div", { $0[0] / $0[1] }), ("Max", { max($0[0], $0[1]) }), ("Min", { min($0[0], $0[1]) }),
            ("PRelu", { $0[0] < 0 ? $0[0] * $0[1] : $0[0] }), ("Pow", { Foundation.pow(abs($0[0]), $0[1]) }),
        ]
        for (op, f) in ops {
            let left = op == "Pow" ? ReferenceKernels.map(x) { abs($0) } : x
            let got = try runElementwise(op, [left, y])[0]
            let want = ReferenceKernels.broadcastMap([left, y], f)
            #expect(worstError(got, want) < 1e-6, "\(op) \(a) \(b)")
        }
    }

    @Test func variadicOpsBroadcastAllInputs() throws {
        var rng = SeededGenerator(seed: 3)
        let inputs = [uniformTensor([3, 1, 5], -1..<1, using: &rng), uniformTensor([4, 1], -1..<1, using: &rng),
                      uniformTensor([5], -1..<1, using: &rng)]
        let sum = try runElementwise("Sum", inputs)[0]
        #expect(sum.shape == [3, 4, 5])
        #expect(worstError(sum, ReferenceKernels.broadcastMap(inputs) { $0.reduce(0, +) }) < 1e-6)
        let mean = try runElementwise("Mean", inputs)[0]
        #expect(worstError(mean, ReferenceKernels.broadcastMap(inputs) { $0.reduce(0, +) / 3 }) < 1e-6)
        let maximum = try runElementwise("Max", inputs)[0]
        #expect(worstError(maximum, ReferenceKernels.broadcastMap(inputs) { $0.max() ?? 0 }) == 0)
        let single = try runElementwise("Min", [inputs[0]])[0]
        #expect(single.scalars(as: Float.self) == inputs[0].scalars(as: Float.self))
        let nan = try runElementwise("Max", [Tensor(shape: [2], values: [.nan, 1]), Tensor(shape: [2], values: [0, .nan])])[0]
        #expect(nan.scalars(as: Float.self).allSatisfy { $0.isNaN })
    }

    // MARK: unary

    /// Op, attributes, input range, reference, tolerance (relative, above a 1e-6 floor).
    static let unaryCases: [(String, [String: AttributeValue], Range<Float>, (Double) -> Double, Double)] = [
        ("Abs", [:], -3..<3, { abs($0) }, 0), ("Neg", [:], -3..<3, { -$0 }, 0),
        ("Exp", [:], -80..<80, Foundation.exp, 1e-6), ("Log", [:], 0.01..<50, Foundation.log, 1e-6),
        ("Sqrt", [:], 0..<50, Foundation.sqrt, 1e-6), ("Reciprocal", [:], 0.1..<5, { 1 / $0 }, 1e-6),
        ("Floor", [:], -9..<9, Foundation.floor, 0), ("Ceil", [:], -9..<9, Foundation.ceil, 0),
        ("Round", [:], -9..<9, { $0.rounded(.toNearestOrEven) }, 0), ("Sign", [:], -2..<2, { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }, 0),
        ("Sin", [:], -9..<9, Foundation.sin, 1e-6), ("Acosh", [:], 1..<9, Foundation.acosh, 1e-6),
        ("Atanh", [:], -0.9..<0.9, Foundation.atanh, 1e-6), ("Erf", [:], -5..<5, Foundation.erf, 1e-6),
        ("Relu", [:], -3..<3, { max($0, 0) }, 0),
        ("LeakyRelu", ["alpha": .float(0.1)], -3..<3, { $0 < 0 ? 0.1 * $0 : $0 }, 1e-6),
        ("Elu", ["alpha": .float(0.7)], -5..<3, { $0 < 0 ? 0.7 * Foundation.expm1($0) : $0 }, 1e-5),
        ("Selu", [:], -5..<3, { 1.0507009873554805 * ($0 > 0 ? $0 : 1.6732632423543772 * Foundation.expm1($0)) }, 1e-5),
        ("Celu", ["alpha": .float(2)], -5..<3, { max(0, $0) + min(0, 2 * Foundation.expm1($0 / 2)) }, 1e-5),
        ("Sigmoid", [:], -30..<30, ReferenceKernels.sigmoid, 1e-6),
        ("HardSigmoid", [:], -5..<5, { min(1, max(0, 0.2 * $0 + 0.5)) }, 1e-6),
        ("HardSwish", [:], -5..<5, { $0 * min(1, max(0, $0 / 6 + 0.5)) }, 1e-6),
        ("Softplus", [:], -30..<30, ReferenceKernels.softplus, 1e-6),
        ("Softsign", [:], -5..<5, { $0 / (1 + abs($0)) }, 1e-6),
        ("Tanh", [:], -12..<12, Foundation.tanh, 1e-6),
        ("Gelu", [:], -6..<6, ReferenceKernels.gelu, 1e-6),
        ("Gelu", ["approximate": .string("tanh")], -6..<6, ReferenceKernels.geluTanh, 1e-6),
        ("Mish", [:], -10..<30, { $0 * Foundation.tanh(ReferenceKernels.softplus($0)) }, 1e-6),
        ("ThresholdedRelu", ["alpha": .float(0.5)], -3..<3, { $0 > 0.5 ? $0 : 0 }, 0),
        ("Shrink", ["lambd": .float(0.6), "bias": .float(0.2)], -3..<3, { $0 < -0.6 ? $0 + 0.2 : ($0 > 0.6 ? $0 - 0.2 : 0) }, 1e-6),
    ]

    @Test func unaryFloatOpsMatchTheReference() throws {
        var rng = SeededGenerator(seed: 11)
        for (op, attributes, range, f, tolerance) in Self.unaryCases {
            for shape in [[1], [7], [3, 33], [5, 1001]] {
                let x = uniformTensor(shape, range, using: &rng)
                let got = try runElementwise(op, [x], attributes)[0]
                let want = ReferenceKernels.map(x, f)
                // Gelu's and Mish's negative tails are tiny differences of O(1) terms:
                // absolute accuracy there.
                // HardSigmoid/HardSwish: alpha is a float, the reference's Double.
                let absolute: Set = ["Gelu", "Mish", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish"]
                let floor = absolute.contains(op) ? 1.0 : 1e-6
                let error = worstError(got, want, floor: floor)
                #expect(error <= max(tolerance, 1e-7), "\(op) \(attributes) shape \(shape): error \(error)")
            }
        }
    }

    /// The vector approximations against Foundation on a dense grid, with the accuracy
    /// VectorMath promises.
    @Test func largeTensorsSplitAcrossThreadsLikeSmallOnes() throws {
        var rng = SeededGenerator(seed: 17)
        let saved = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(saved) }
        ThreadPool.setThreadCount(2)
        let x = uniformTensor([70_001], -9..<9, using: &rng)
        let got = try runElementwise("Tanh", [x])[0]
        #expect(worstError(got, ReferenceKernels.map(x, Foundation.tanh)) < 1e-6)
        let mask = Tensor(.bool, shape: [70_001], values: (0..<70_001).map { UInt8($0 % 3 == 0 ? 1 : 0) })
        let picked = try runElementwise("Where", [mask, x, Tensor(shape: [], values: [7])])[0]
        let values = x.scalars(as: Float.self)
        let expected = values.indices.map { $0 % 3 == 0 ? values[$0] : 7 }
        #expect(picked.scalars(as: Float.self) == expected)
    }

    @Test func vectorMathIsAccurateOnADenseGrid() {
        var worst: [String: Double] = [:]
        var x = -30.0
        while x < 30 {
            let lanes = SIMD8<Float>((0..<8).map { Float(x + Double($0) * 0.000_731) })
            let results: [(String, SIMD8<Float>, (Double) -> Double, Double)] = [
                ("exp", VectorMath.exp(lanes), Foundation.exp, 1e-30),
                ("sigmoid", VectorMath.sigmoid(lanes), ReferenceKernels.sigmoid, 1e-30),
                ("tanh", VectorMath.tanh(lanes), Foundation.tanh, 1e-30),
                ("erf", VectorMath.erf(lanes), Foundation.erf, 1e-30),
                ("gelu", VectorMath.gelu(lanes), ReferenceKernels.gelu, 1),
            ]
            for (name, got, f, floor) in results {
                for i in 0..<8 {
                    let want = f(Double(lanes[i]))
                    worst[name] = max(worst[name] ?? 0, abs(Double(got[i]) - want) / (abs(want) + floor))
                }
            }
            x += 0.0137
        }
        print("vectorMathIsAccurateOnADenseGrid: worst relative error \(worst.sorted { $0.key < $1.key })")
        #expect((worst["exp"] ?? 1) < 1e-6)
        #expect((worst["sigmoid"] ?? 1) < 1e-6)
        #expect((worst["tanh"] ?? 1) < 1e-6)
        #expect((worst["erf"] ?? 1) < 1e-6)
        #expect((worst["gelu"] ?? 1) < 1e-6)
        let edges = VectorMath.exp(SIMD8<Float>(-200, -104, -88, 0, 88.7, 89, .infinity, .nan))
        #expect(edges[0] == 0 && edges[1] == 0 && edges[2] > 0 && edges[3] == 1)
        #expect(edges[4].isFinite && edges[5] == .infinity && edges[6] == .infinity && edges[7].isNaN)
    }

    /// log over every binade, subnormals included, and through the Log kernel.
    @Test func vectorLogIsAccurateOverEveryBinade() throws {
        var worst = 0.0
        // Stepped in Double: a Float subnormal times 1.03 rounds back to itself.
        var x = Double(Float.leastNonzeroMagnitude)
        while x < Double(Float.greatestFiniteMagnitude) / 1.01 {
            let lanes = SIMD8<Float>((0..<8).map { Float(x * (1 + Double($0) * 0.0917)) })
            let got = VectorMath.log(lanes)
            for i in 0..<8 {
                let want = Foundation.log(Double(lanes[i]))
                // Near x = 1 the log is tiny: count error against at least one float step there.
                worst = max(worst, abs(Double(got[i]) - want) / max(abs(want), 1.2e-7))
            }
            x *= 1.0313
        }
        // Close to 1 from both sides, where log(m) for m ~ sqrt(1/2) and sqrt(2) meet.
        for k in -2000...2000 {
            let v = 1 + Float(k) * 3e-4
            let got = VectorMath.log(SIMD8<Float>(repeating: v))[0]
            worst = max(worst, abs(Double(got) - Foundation.log(Double(v))) / max(abs(Foundation.log(Double(v))), 1.2e-7))
        }
        #expect(worst < 1e-6, "worst relative error \(worst)")
        let edges = VectorMath.log(SIMD8<Float>(0, -0.0, -1, .infinity, -.infinity, .nan, 1, Float.leastNonzeroMagnitude))
        #expect(edges[0] == -.infinity && edges[1] == -.infinity && edges[2].isNaN && edges[3] == .infinity)
        #expect(edges[4].isNaN && edges[5].isNaN && edges[6] == 0)
        #expect(abs(Double(edges[7]) - Foundation.log(Double(Float.leastNonzeroMagnitude))) < 1e-4)
        // The kernel takes the vector path, and its tail, on a tensor of 6464 values (the
        // keyword-spotting model's log-mel features) plus 3.
        var rng = SeededGenerator(seed: 6467)
        let t = uniformTensor([6467], 1e-6..<50, using: &rng)
        let out = try runElementwise("Log", [t])[0]
        #expect(worstError(out, ReferenceKernels.map(t, Foundation.log)) < 1e-5)
    }

    @Test func outputMayBeTheInputsMemory() throws {
        var rng = SeededGenerator(seed: 5)
        let x = uniformTensor([3, 1001], -4..<4, using: &rng)
        let want = ReferenceKernels.map(x, ReferenceKernels.sigmoid)
        let got = try runElementwise("Sigmoid", [x.copy()].map { $0 }, inPlace: 0)[0]
        #expect(worstError(got, want) < 1e-6)

        let a = uniformTensor([4, 7, 9], -1..<1, using: &rng), b = uniformTensor([7, 1], -1..<1, using: &rng)
        let sum = ReferenceKernels.broadcastMap([a, b]) { $0[0] + $0[1] }
        let target = a.copy()
        let added = try runElementwise("Add", [target, b], inPlace: 0)[0]
        #expect(added.buffer === target.buffer)
        #expect(worstError(added, sum) < 1e-6)

        let c = uniformTensor([5, 6], -1..<1, using: &rng)
        let cumulative = ReferenceKernels.cumSum(c, axis: 1, exclusive: true, reverse: true)
        let inPlace = try runElementwise("CumSum", [c.copy(), Tensor(.int64, shape: [], values: [Int64(1)])],
                                         ["exclusive": .int(1), "reverse": .int(1)], inPlace: 0)[0]
        #expect(worstError(inPlace, cumulative) < 1e-5)

        let sequences = uniformTensor([4, 3, 2], -1..<1, using: &rng)
        let reversed = ReferenceKernels.reverseSequence(sequences, lengths: [4, 1, 3], timeAxis: 0)
        let swapped = try runElementwise("ReverseSequence", [sequences.copy(), Tensor(.int64, shape: [3], values: [Int64(4), 1, 3])],
                                         inPlace: 0)[0]
        #expect(swapped.scalars(as: Float.self) == reversed.scalars(as: Float.self))
    }

    // MARK: other element types and hand-computed cases

    @Test func integerArithmeticWrapsAndTruncates() throws {
        let a = Tensor(.int8, shape: [4], values: [Int8(127), -128, -7, 7])
        let b = Tensor(.int8, shape: [4], values: [Int8(1), -1, 2, -2])
        #expect(try runElementwise("Add", [a, b])[0].scalars(as: Int8.self) == [-128, 127, -5, 5])
        #expect(try runElementwise("Div", [a, b])[0].scalars(as: Int8.self) == [127, -128, -3, -3])
        #expect(try runElementwise("Mod", [a, b])[0].scalars(as: Int8.self) == [0, 0, 1, -1])
        #expect(try runElementwise("Mod", [a, b], ["fmod": .int(1)])[0].scalars(as: Int8.self) == [0, 0, -1, 1])
        #expect(try runElementwise("Abs", [a])[0].scalars(as: Int8.self) == [127, -128, 7, 7])
        let zero = Tensor(.int32, shape: [2], values: [Int32(0), 0])
        #expect(try runElementwise("Div", [Tensor(.int32, shape: [2], values: [Int32(5), -5]), zero])[0].scalars(as: Int32.self) == [0, 0])
        let u = Tensor(.uint8, shape: [3], values: [UInt8(1), 255, 16])
        let shift = Tensor(.uint8, shape: [3], values: [UInt8(7), 1, 9])
        #expect(try runElementwise("BitShift", [u, shift], ["direction": .string("LEFT")])[0].scalars(as: UInt8.self) == [128, 254, 0])
        #expect(try runElementwise("BitShift", [u, shift], ["direction": .string("RIGHT")])[0].scalars(as: UInt8.self) == [0, 127, 0])
        let big = Tensor(.int64, shape: [2, 1], values: [Int64(3), -4])
        let row = Tensor(.int64, shape: [3], values: [Int64(1), 2, 3])
        #expect(try runElementwise("Mul", [big, row])[0].scalars(as: Int64.self) == [3, 6, 9, -4, -8, -12])
        #expect(try runElementwise("Pow", [row, Tensor(shape: [1], values: [2])])[0].scalars(as: Int64.self) == [1, 4, 9])
        #expect(throws: KernelError.self) { try runElementwise("Add", [a, row]) }
        #expect(throws: KernelError.self) { try runElementwise("Exp", [a]) }
    }

    @Test func doubleAndHalfFollowTheFloatPath() throws {
        let d = Tensor(.double, shape: [3], values: [-1.5, 0, 2.25])
        #expect(try runElementwise("Relu", [d])[0].scalars(as: Double.self) == [0, 0, 2.25])
        #expect(try runElementwise("Sub", [d, Tensor(.double, shape: [], values: [0.25])])[0].scalars(as: Double.self) == [-1.75, -0.25, 2])
        let h = Tensor(.float16, shape: [3], values: [Float16(-2), 0.5, 4])
        let sigmoid = try runElementwise("Sigmoid", [h])[0].scalars(as: Float16.self)
        #expect(abs(Double(sigmoid[0]) - ReferenceKernels.sigmoid(-2)) < 1e-3)
        #expect(try runElementwise("Max", [h, Tensor(.float16, shape: [1], values: [Float16(1)])])[0].scalars(as: Float16.self) == [1, 1, 4])
    }

    @Test func comparisonsAndLogicProduceBools() throws {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, .nan])
        let b = Tensor(shape: [3], values: [2, 2, 2])
        #expect(try runElementwise("Less", [a, b])[0].scalars(as: UInt8.self) == [1, 0, 0, 0, 0, 0])
        #expect(try runElementwise("GreaterOrEqual", [a, b])[0].scalars(as: UInt8.self) == [0, 1, 1, 1, 1, 0])
        #expect(try runElementwise("Equal", [a, b])[0].elementType == .bool)
        let p = Tensor(.bool, shape: [4], values: [UInt8(0), 0, 1, 1]), q = Tensor(.bool, shape: [4], values: [UInt8(0), 1, 0, 1])
        #expect(try runElementwise("And", [p, q])[0].scalars(as: UInt8.self) == [0, 0, 0, 1])
        #expect(try runElementwise("Or", [p, q])[0].scalars(as: UInt8.self) == [0, 1, 1, 1])
        #expect(try runElementwise("Xor", [p, q])[0].scalars(as: UInt8.self) == [0, 1, 1, 0])
        #expect(try runElementwise("Not", [p])[0].scalars(as: UInt8.self) == [1, 1, 0, 0])
        let special = Tensor(shape: [4], values: [.nan, .infinity, -.infinity, 1])
        #expect(try runElementwise("IsNaN", [special])[0].scalars(as: UInt8.self) == [1, 0, 0, 0])
        #expect(try runElementwise("IsInf", [special], ["detect_positive": .int(0)])[0].scalars(as: UInt8.self) == [0, 0, 1, 0])
    }

    @Test func whereSelectsWithBroadcasting() throws {
        var rng = SeededGenerator(seed: 9)
        let c = Tensor(.bool, shape: [3, 1, 4], values: (0..<12).map { _ in UInt8(rng.below(2)) })
        let x = uniformTensor([5, 1], -1..<1, using: &rng), y = uniformTensor([4], -1..<1, using: &rng)
        let got = try runElementwise("Where", [c, x, y])[0]
        #expect(got.shape == [3, 5, 4])
        #expect(got.scalars(as: Float.self) == ReferenceKernels.select(c, x, y).scalars(as: Float.self))
        #expect(throws: KernelError.self) { try runElementwise("Where", [x, x, y]) }
    }

    @Test func triluCumSumAndReverseSequenceMatchTheReference() throws {
        var rng = SeededGenerator(seed: 21)
        let x = uniformTensor([2, 5, 7], -1..<1, using: &rng)
        for k in [-9, -2, 0, 1, 3, 100] {
            for upper in [0, 1] {
                let got = try runElementwise("Trilu", [x, Tensor(.int64, shape: [], values: [Int64(k)])], ["upper": .int(upper)])[0]
                #expect(got.scalars(as: Float.self) == ReferenceKernels.trilu(x, k: k, upper: upper == 1).scalars(as: Float.self))
            }
        }
        for axis in [0, 1, -1] {
            for (exclusive, reverse) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let got = try runElementwise("CumSum", [x, Tensor(.int32, shape: [1], values: [Int32(axis)])],
                                             ["exclusive": .int(exclusive), "reverse": .int(reverse)])[0]
                let want = ReferenceKernels.cumSum(x, axis: axis < 0 ? axis + 3 : axis, exclusive: exclusive == 1, reverse: reverse == 1)
                #expect(worstError(got, want) < 1e-5, "axis \(axis) exclusive \(exclusive) reverse \(reverse)")
            }
        }
        #expect(throws: KernelError.self) { try runElementwise("CumSum", [x, Tensor(.int64, shape: [], values: [Int64(3)])]) }
        let sequences = uniformTensor([3, 4, 2], -1..<1, using: &rng)
        let got = try runElementwise("ReverseSequence", [sequences, Tensor(.int64, shape: [3], values: [Int64(4), 0, 2])],
                                     ["batch_axis": .int(0), "time_axis": .int(1)])[0]
        #expect(got.scalars(as: Float.self) == ReferenceKernels.reverseSequence(sequences, lengths: [4, 0, 2], timeAxis: 1).scalars(as: Float.self))
        #expect(throws: KernelError.self) {
            try runElementwise("ReverseSequence", [sequences, Tensor(.int64, shape: [3], values: [Int64(5), 0, 2])],
                               ["batch_axis": .int(0), "time_axis": .int(1)])
        }
    }

    @Test func clipTakesAttributesOrInputsByOpset() throws {
        let x = Tensor(shape: [5], values: [-3, -1, 0, 1, 3])
        #expect(try runElementwise("Clip", [x], ["min": .float(-1.5), "max": .float(2)], opset: 6)[0].scalars(as: Float.self) == [-1.5, -1, 0, 1, 2])
        #expect(try runElementwise("Clip", [x, nil, Tensor(shape: [], values: [0.5])])[0].scalars(as: Float.self) == [-3, -1, 0, 0.5, 0.5])
        let i = Tensor(.int8, shape: [3], values: [Int8(-128), 0, 127])
        #expect(try runElementwise("Clip", [i, Tensor(.int8, shape: [], values: [Int8(-5)])])[0].scalars(as: Int8.self) == [-5, 0, 127])
        #expect(throws: KernelError.self) { try runElementwise("Clip", [x, Tensor(shape: [2], values: [0, 1])]) }
    }

    @Test func identityAndDropoutPassTheInputThrough() throws {
        let x = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let identity = try runElementwise("Identity", [x])[0]
        #expect(identity.buffer === x.buffer)
        let dropout = try runElementwise("Dropout", [x, Tensor(shape: [], values: [0.3])], outputCount: 2)
        #expect(dropout[0].buffer === x.buffer)
        #expect(dropout[1].elementType == .bool && dropout[1].scalars(as: UInt8.self) == [1, 1, 1, 1])
        #expect(throws: KernelError.self) {
            try runElementwise("Dropout", [x, Tensor(shape: [], values: [0.3]), Tensor(.bool, shape: [], values: [UInt8(1)])])
        }
    }

    @Test func castConvertsLikeNumPy() throws {
        let x = Tensor(shape: [6], values: [-1.7, 2.9, .nan, 300, -1e20, 1.00390625])
        let toInt8 = try runElementwise("Cast", [x], ["to": .int(ElementType.int8.rawValue)])[0]
        #expect(toInt8.scalars(as: Int8.self)[0...1] == [-1, 2])
        #expect(toInt8.scalars(as: Int8.self)[2] == 0)
        let toInt64 = try runElementwise("Cast", [x], ["to": .int(ElementType.int64.rawValue)])[0]
        #expect(toInt64.scalars(as: Int64.self)[3...4] == [300, Int64.min])
        let toBool = try runElementwise("Cast", [x], ["to": .int(ElementType.bool.rawValue)])[0]
        #expect(toBool.scalars(as: UInt8.self) == [1, 1, 1, 1, 1, 1])
        let toHalf = try runElementwise("Cast", [x], ["to": .int(ElementType.float16.rawValue)])[0]
        #expect(toHalf.scalars(as: Float16.self)[0] == Float16(-1.7))
        let toBF16 = try runElementwise("Cast", [x], ["to": .int(ElementType.bfloat16.rawValue)])[0]
        // Truncated, as ONNX's backend tests expect: 2.9 = 0x4039999A -> 0x4039 (2.890625).
        #expect(toBF16.scalars(as: UInt16.self)[1] == 0x4039)
        let back = try runElementwise("Cast", [toBF16], ["to": .int(ElementType.float.rawValue)])[0]
        #expect(back.scalars(as: Float.self)[1] == 2.890625)
        let like = try runElementwise("CastLike", [Tensor(.int32, shape: [2], values: [Int32(-3), 70_000]), Tensor(elementType: .uint16, shape: [0])])[0]
        #expect(like.elementType == .uint16 && like.scalars(as: UInt16.self) == [65533, 4464])
        #expect(throws: KernelError.self) { try runElementwise("Cast", [x], ["to": .int(ElementType.string.rawValue)]) }
    }

    // MARK: throughput

    /// Not a speed test: prints GB/s (bytes read + written) of fp32 Add on
    /// [1,64,112,112] + [1,64,112,112] and Sigmoid on 1M floats at 1 and 2 threads.
    @Test func throughputIsReported() throws {
        var rng = SeededGenerator(seed: 1)
        let a = uniformTensor([1, 64, 112, 112], -1..<1, using: &rng), b = uniformTensor([1, 64, 112, 112], -1..<1, using: &rng)
        let bias = uniformTensor([64, 1, 1], -1..<1, using: &rng)
        let s = uniformTensor([1 << 20], -8..<8, using: &rng)
        let saved = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(saved) }
        func measure(_ op: String, _ inputs: [Tensor], bytes: Int) throws -> Double {
            let node = Node(name: op, opType: op, inputs: inputs.indices.map { "x\($0)" }, outputs: ["y"])
            let context = KernelContext(node: node, opset: 18, inputTypes: [], outputTypes: [], constantInputs: [],
                                        compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") })
            let kernel = try ElementwiseKernels.all[op].map { try $0(context) }
            let output = Tensor(shape: inputs[0].shape)
            let slots = OutputSlots(count: 1, maxBytes: 1 << 32)
            slots.slots[0] = OutputSlots.Slot(buffer: output.buffer, offset: 0, capacity: output.byteCount)
            var times: [Double] = []
            // Debug builds are 50-100x slower: a few runs only there.
            let (warmUp, runs) = _isDebugAssertConfiguration() ? (1, 3) : (5, 20)
            for run in 0..<(warmUp + runs) {
                let start = DispatchTime.now().uptimeNanoseconds
                try kernel?.run(inputs, slots)
                if run >= warmUp { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            times.sort()
            return Double(bytes) / times[times.count / 2] / 1e9
        }
        for threads in [1, 2] {
            ThreadPool.setThreadCount(threads)
            let add = try measure("Add", [a, b], bytes: a.byteCount * 3)
            let addBias = try measure("Add", [a, bias], bytes: a.byteCount * 2)
            let sigmoid = try measure("Sigmoid", [s], bytes: s.byteCount * 2)
            print(String(format: "throughputIsReported: %d thread(s): Add [1,64,112,112]+[1,64,112,112] %.1f GB/s, "
                         + "Add [1,64,112,112]+[64,1,1] %.1f GB/s, Sigmoid 1M %.1f GB/s (median)",
                         threads, add, addBias, sigmoid))
        }
    }
}

extension ElementwiseKernelTests {
    /// A broadcast input in the output's memory (as an arena may lay it out) is read
    /// before it is overwritten; a variadic op whose output is its third input's memory
    /// still sums every input.
    @Test func broadcastInputSharingTheOutputsMemoryIsRead() throws {
        let arena = TensorBuffer(byteCount: 256)
        let scalar = Tensor(elementType: .float, shape: [], buffer: arena, byteOffset: 0)
        scalar.rawPointer.storeBytes(of: Float(5), as: Float.self)
        let x = Tensor(shape: [4], values: [1, 2, 3, 4])
        let node = Node(name: "a", opType: "Add", inputs: ["s", "x"], outputs: ["y"])
        let context = KernelContext(node: node, opset: 18, inputTypes: [], outputTypes: [], constantInputs: [],
                                    compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") })
        for op in ["Add", "Max"] {
            scalar.rawPointer.storeBytes(of: Float(5), as: Float.self)
            let factory = try #require(ElementwiseKernels.all[op])
            let kernel = try factory(context)
            let slots = OutputSlots(count: 1, maxBytes: 1 << 20)
            slots.slots[0] = OutputSlots.Slot(buffer: arena, offset: 0, capacity: 64)
            try kernel.run([scalar, x], slots)
            let want: [Float] = op == "Add" ? [6, 7, 8, 9] : [5, 5, 5, 5]
            #expect(slots.results[0]?.scalars(as: Float.self) == want, "\(op)")
        }
        let c = Tensor(shape: [4], values: [10, 20, 30, 40])
        let sum = try runElementwise("Sum", [x, x, c], inPlace: 2)[0]
        #expect(sum.scalars(as: Float.self) == [12, 24, 36, 48])
        let again = Tensor(shape: [4], values: [1, 2, 3, 4])
        let triple = try runElementwise("Sum", [again, again, again], inPlace: 0)[0]
        #expect(triple.scalars(as: Float.self) == [3, 6, 9, 12])
    }
}
