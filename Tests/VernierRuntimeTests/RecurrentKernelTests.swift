import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

/// Runs one kernel of `table` as a node of `op` would run in a plan. `constants` marks
/// inputs the factory sees at plan time (as initializers).
func runFamilyKernel(_ table: [String: KernelFactory], _ op: String, _ inputs: [Tensor?],
                     _ attributes: [String: AttributeValue] = [:], opset: Int = 21, outputCount: Int = 1,
                     constants: Set<Int> = [], kernel existing: Kernel? = nil) throws -> (outputs: [Tensor?], kernel: Kernel) {
    let node = Node(name: op, opType: op, inputs: inputs.indices.map { inputs[$0] == nil ? "" : "x\($0)" },
                    outputs: (0..<outputCount).map { "y\($0)" },
                    attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
    let context = KernelContext(node: node, opset: opset, inputTypes: [], outputTypes: [],
                                constantInputs: inputs.indices.map { constants.contains($0) ? inputs[$0] : nil },
                                compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") })
    guard let factory = table[op] else { throw KernelError.unsupported("no kernel for \(op)") }
    let kernel = try existing ?? factory(context)
    let slots = OutputSlots(count: outputCount, maxBytes: 1 << 32)
    try kernel.run(inputs, slots)
    return (slots.results, kernel)
}

/// A float tensor with values uniform in `range`.
func uniformFloats(_ shape: [Int], _ range: ClosedRange<Float>, using rng: inout SeededGenerator) -> Tensor {
    Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: range, using: &rng) })
}

/// max |a - b| over the elements (infinity when the shapes differ).
func largestDifference(_ a: Tensor?, _ b: Tensor) -> Float {
    guard let a, a.shape == b.shape else { return .infinity }
    return zip(a.scalars(as: Float.self), b.scalars(as: Float.self)).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct RecurrentKernelTests {
    struct Case: CustomStringConvertible {
        var cell: RecurrentCell
        var direction = "forward"
        var layout = 0
        var sequence = 4, batch = 3, input = 5, hidden = 7
        var bias = true, lengths = false, initial = true, peepholes = false
        var activations: [String]? = nil
        var alphas: [Float] = [], betas: [Float] = []
        var clip: Float? = nil
        var linearBeforeReset = false
        var inputForget = false
        var description: String {
            "\(cell.opName) \(direction) layout \(layout) S\(sequence) B\(batch) I\(input) H\(hidden) "
                + "bias \(bias) lens \(lengths) init \(initial) peep \(peepholes) acts \(activations ?? []) clip \(clip ?? 0) lbr \(linearBeforeReset)"
        }
    }

    /// Runs `c` through the kernel (oneDNN projection or the Swift fallback, weights
    /// known at plan time or not) and through the reference; returns the largest difference.
    func compare(_ c: Case, useDNNL: Bool = true, constantWeights: Bool = true, seed: UInt64 = 1) throws -> Float {
        var rng = SeededGenerator(seed: seed)
        let dirs = c.direction == "bidirectional" ? 2 : 1
        let g = c.cell.gates, h = c.hidden
        let x = uniformFloats(c.layout == 0 ? [c.sequence, c.batch, c.input] : [c.batch, c.sequence, c.input], -1...1, using: &rng)
        let w = uniformFloats([dirs, g * h, c.input], -0.6...0.6, using: &rng)
        let r = uniformFloats([dirs, g * h, h], -0.6...0.6, using: &rng)
        let b: Tensor? = c.bias ? uniformFloats([dirs, 2 * g * h], -0.5...0.5, using: &rng) : nil
        let lens: Tensor? = c.lengths
            ? Tensor(.int32, shape: [c.batch], values: (0..<c.batch).map { Int32($0 == 0 ? c.sequence : Int.random(in: 0...c.sequence, using: &rng)) })
            : nil
        let state = c.layout == 0 ? [dirs, c.batch, h] : [c.batch, dirs, h]
        let h0: Tensor? = c.initial ? uniformFloats(state, -1...1, using: &rng) : nil
        let c0: Tensor? = c.initial && c.cell == .lstm ? uniformFloats(state, -1...1, using: &rng) : nil
        let p: Tensor? = c.peepholes ? uniformFloats([dirs, 3 * h], -0.5...0.5, using: &rng) : nil
        var inputs: [Tensor?] = [x, w, r, b, lens, h0]
        if c.cell == .lstm { inputs += [c0, p] }
        while let last = inputs.last, last == nil { inputs.removeLast() }

        var attributes: [String: AttributeValue] = ["hidden_size": .int(h), "direction": .string(c.direction), "layout": .int(c.layout)]
        if let acts = c.activations { attributes["activations"] = .strings(acts) }
        if !c.alphas.isEmpty { attributes["activation_alpha"] = .floats(c.alphas) }
        if !c.betas.isEmpty { attributes["activation_beta"] = .floats(c.betas) }
        if let clip = c.clip { attributes["clip"] = .float(clip) }
        if c.linearBeforeReset { attributes["linear_before_reset"] = .int(1) }
        if c.inputForget { attributes["input_forget"] = .int(1) }

        let outputCount = c.cell == .lstm ? 3 : 2
        let node = Node(name: "n", opType: c.cell.opName, inputs: [], outputs: [],
                        attributes: attributes.map { Attribute(name: $0.key, value: $0.value) })
        let expected = try ReferenceKernels.recurrent(try RecurrentAttributes(node, cell: c.cell), inputs)
        let kernel = try RecurrentKernel(
            KernelContext(node: Node(name: "n", opType: c.cell.opName, inputs: inputs.indices.map { inputs[$0] == nil ? "" : "x\($0)" },
                                     outputs: (0..<outputCount).map { "y\($0)" },
                                     attributes: attributes.map { Attribute(name: $0.key, value: $0.value) }),
                          opset: 14, inputTypes: [], outputTypes: [],
                          constantInputs: constantWeights ? [nil, w, r, b, nil, nil, nil, p] : [],
                          compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") }),
            cell: c.cell)
        kernel.useDNNL = useDNNL
        var worst: Float = 0
        // Twice: the second run reuses the kernel's scratch and oneDNN plan.
        for _ in 0..<2 {
            let slots = OutputSlots(count: outputCount, maxBytes: 1 << 30)
            try kernel.run(inputs, slots)
            for (got, want) in zip(slots.results, expected) { worst = max(worst, largestDifference(got, want)) }
        }
        return worst
    }

    @Test func everyCellDirectionAndLayoutMatchesTheReference() throws {
        for cell in [RecurrentCell.lstm, .gru, .rnn] {
            for direction in ["forward", "reverse", "bidirectional"] {
                for layout in [0, 1] {
                    let c = Case(cell: cell, direction: direction, layout: layout)
                    let error = try compare(c)
                    #expect(error < 2e-5, "\(c): \(error)")
                }
            }
        }
    }

    @Test func optionalInputsAndAttributesMatchTheReference() throws {
        let cases: [Case] = [
            Case(cell: .lstm, direction: "bidirectional", bias: false, lengths: true, initial: false, peepholes: true),
            Case(cell: .lstm, direction: "reverse", layout: 1, lengths: true, peepholes: true, clip: 0.3),
            Case(cell: .lstm, inputForget: true),
            Case(cell: .lstm, direction: "bidirectional", activations: ["HardSigmoid", "LeakyRelu", "Softsign", "Sigmoid", "Elu", "ScaledTanh"],
                 alphas: [0.3, 0.05, 0.9, 0.7], betas: [0.4, 1.3]),
            Case(cell: .gru, direction: "bidirectional", lengths: true, linearBeforeReset: true),
            Case(cell: .gru, direction: "reverse", layout: 1, lengths: true, clip: 0.5),
            Case(cell: .gru, activations: ["Sigmoid", "Relu"], linearBeforeReset: true),
            Case(cell: .gru, activations: ["Affine", "ThresholdedRelu"], alphas: [0.2, 0.1], betas: [0.5]),
            Case(cell: .rnn, direction: "bidirectional", lengths: true, activations: ["Relu", "Softplus"]),
            Case(cell: .rnn, layout: 1, initial: false, clip: 0.2),
            Case(cell: .lstm, sequence: 1, batch: 1, input: 1, hidden: 1),
            Case(cell: .gru, sequence: 3, batch: 2, input: 9, hidden: 16, lengths: true),
        ]
        for c in cases {
            let error = try compare(c)
            #expect(error < 2e-5, "\(c): \(error)")
        }
    }

    @Test func projectionFallbackAndRunTimeWeightsMatchTheReference() throws {
        for cell in [RecurrentCell.lstm, .gru, .rnn] {
            let c = Case(cell: cell, direction: "bidirectional", lengths: true, peepholes: cell == .lstm)
            #expect(try compare(c, useDNNL: false) < 2e-5, "\(c) without oneDNN")
            #expect(try compare(c, constantWeights: false) < 2e-5, "\(c) with run-time weights")
        }
    }

    @Test func bothThreadingSchemesMatchTheReference() throws {
        let saved = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(saved) }
        ThreadPool.setThreadCount(2)
        // Big enough per step for the per-step split over unit blocks (one direction), and
        // the one-thread-per-direction scheme (two directions).
        let cases = [
            Case(cell: .lstm, sequence: 3, batch: 4, input: 6, hidden: 100, lengths: true, peepholes: true),
            Case(cell: .gru, sequence: 3, batch: 4, input: 6, hidden: 110, lengths: true),
            Case(cell: .gru, sequence: 3, batch: 4, input: 6, hidden: 110, linearBeforeReset: true),
            Case(cell: .rnn, sequence: 3, batch: 8, input: 6, hidden: 130),
            Case(cell: .lstm, direction: "bidirectional", sequence: 3, batch: 2, input: 6, hidden: 20, lengths: true),
            Case(cell: .gru, direction: "bidirectional", sequence: 3, batch: 2, input: 6, hidden: 20),
        ]
        for c in cases {
            let error = try compare(c)
            #expect(error < 5e-5, "\(c): \(error)")
        }
    }

    @Test func oneUnitRNNByHand() throws {
        // h1 = tanh(0.5 * 1 + 0.1), h2 = tanh(0.5 * 2 + 0.25 * h1 + 0.1), bias 0.1 split as Wb 0.06 + Rb 0.04.
        let x = Tensor(shape: [2, 1, 1], values: [1, 2])
        let w = Tensor(shape: [1, 1, 1], values: [0.5]), r = Tensor(shape: [1, 1, 1], values: [0.25])
        let b = Tensor(shape: [1, 2], values: [0.06, 0.04])
        let result = try runFamilyKernel(RecurrentKernels.all, "RNN", [x, w, r, b], ["hidden_size": .int(1)], outputCount: 2).outputs
        let h1 = Foundation.tanh(0.6), h2 = Foundation.tanh(1.1 + 0.25 * h1)
        let y = try #require(result[0]).scalars(as: Float.self), yh = try #require(result[1]).scalars(as: Float.self)
        #expect(abs(Double(y[0]) - h1) < 1e-6 && abs(Double(y[1]) - h2) < 1e-6)
        #expect(yh == [y[1]])
    }

    @Test func gateMathIsAccurate() {
        var worstExp = 0.0, worstSigmoid = 0.0, worstTanh = 0.0
        var x: Float = -30
        while x < 30 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.000_7 })
            let (e, s, t) = (GateMath.exp(v), GateMath.sigmoid(v), GateMath.tanh(v))
            for lane in 0..<8 {
                let d = Double(v[lane])
                worstExp = max(worstExp, abs(Double(e[lane]) - Foundation.exp(d)) / Foundation.exp(d))
                worstSigmoid = max(worstSigmoid, abs(Double(s[lane]) - 1 / (1 + Foundation.exp(-d))) / (1 / (1 + Foundation.exp(-d))))
                let tanh = Foundation.tanh(d)
                worstTanh = max(worstTanh, abs(Double(t[lane]) - tanh) / max(abs(tanh), 1e-30))
            }
            x += 0.0137
        }
        #expect(worstExp < 3e-7)
        #expect(worstSigmoid < 3e-7)
        #expect(worstTanh < 1e-6)
        #expect(GateMath.tanh(SIMD8(repeating: 1e-4))[0] == Float(Foundation.tanh(1e-4)))
    }

    @Test func badShapesAndAttributesThrow() throws {
        let x = Tensor(elementType: .float, shape: [2, 1, 3])
        let w = Tensor(elementType: .float, shape: [1, 8, 3]), r = Tensor(elementType: .float, shape: [1, 8, 2])
        #expect(throws: KernelError.self) {
            _ = try runFamilyKernel(RecurrentKernels.all, "LSTM", [x, w, Tensor(elementType: .float, shape: [1, 8, 3])], outputCount: 3)
        }
        #expect(throws: KernelError.self) {
            _ = try runFamilyKernel(RecurrentKernels.all, "LSTM", [x, w, r, nil, Tensor(.int32, shape: [1], values: [Int32(5)])], outputCount: 3)
        }
        #expect(throws: KernelError.self) {
            _ = try runFamilyKernel(RecurrentKernels.all, "LSTM", [x, w, r], ["direction": .string("sideways")], outputCount: 3)
        }
        #expect(throws: KernelError.self) {
            _ = try runFamilyKernel(RecurrentKernels.all, "LSTM", [x, w, r], ["activations": .strings(["Sigmoid", "Cosh", "Tanh"])], outputCount: 3)
        }
        #expect(throws: KernelError.self) {
            _ = try runFamilyKernel(RecurrentKernels.all, "GRU", [x, Tensor(elementType: .float16, shape: [1, 6, 3]),
                                                                  Tensor(elementType: .float16, shape: [1, 6, 2])], outputCount: 2)
        }
    }

    @Test func nodeTestCasesPass() throws {
        let outcome = NodeSuiteExecutionTests.run(only: ["LSTM", "GRU", "RNN"])
        let expected: Set = ["test_lstm_batchwise", "test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_with_peepholes",
                             "test_gru_batchwise", "test_gru_defaults", "test_gru_seq_length", "test_gru_with_initial_bias",
                             "test_rnn_seq_length", "test_simple_rnn_batchwise", "test_simple_rnn_defaults",
                             "test_simple_rnn_with_initial_bias"]
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(expected.isSubset(of: Set(outcome.passed)), "missing: \(expected.subtracting(outcome.passed).sorted())")
    }

    @Test(.disabled(if: ProcessInfo.processInfo.environment["VERNIER_BENCH"] == nil, "set VERNIER_BENCH=1 (release build)"))
    func throughput() throws {
        var rng = SeededGenerator(seed: 3)
        let saved = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(saved) }
        // The CRNN OCR shape: bidirectional LSTM, sequence 40, batch 1, input 512, hidden 256.
        for (cell, g) in [(RecurrentCell.lstm, 4), (.gru, 3)] {
            let x = uniformFloats([40, 1, 512], -1...1, using: &rng)
            let w = uniformFloats([2, g * 256, 512], -0.1...0.1, using: &rng), r = uniformFloats([2, g * 256, 256], -0.1...0.1, using: &rng)
            let b = uniformFloats([2, 2 * g * 256], -0.1...0.1, using: &rng)
            let inputs: [Tensor?] = [x, w, r, b]
            let attributes: [String: AttributeValue] = ["hidden_size": .int(256), "direction": .string("bidirectional")]
            let outputs = cell == .lstm ? 3 : 2
            let (_, kernel) = try runFamilyKernel(RecurrentKernels.all, cell.opName, inputs, attributes, outputCount: outputs, constants: [1, 2, 3])
            for threads in [1, 2] {
                ThreadPool.setThreadCount(threads)
                let seconds = medianSeconds(runs: 30) {
                    _ = try? runFamilyKernel(RecurrentKernels.all, cell.opName, inputs, attributes, outputCount: outputs, kernel: kernel)
                }
                if let recurrent = kernel as? RecurrentKernel {
                    // The projection alone (one [40, 512] x [512, 2 * gates * 256] product).
                    let weights = try #require(recurrent.packedWeights)
                    let plan = try MatMulPlan(a: [40, 512], b: weights.wT.shape)
                    let product = Tensor(elementType: .float, shape: plan.outputShape)
                    let projection = medianSeconds(runs: 30) { try? plan.run(a: x.reshaped([40, 512]), b: weights.wT, output: product) }
                    print(String(format: "  of which the projection on oneDNN: %.3f ms (%@)", projection * 1e3, plan.implementation))
                }
                let flops = 2.0 * 2 * 40 * Double(g * 256) * (512 + 256)
                print(String(format: "%@ bidirectional S40 B1 I512 H256, %d thread(s): %.3f ms (%.1f GFLOP/s)", cell.opName, threads,
                             seconds * 1e3, flops / seconds / 1e9))
            }
        }
    }
}
