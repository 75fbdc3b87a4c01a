import Foundation
import VernierGraph

/// Kernels of the Recurrent family (same file name as the shape rules and cost formulas):
/// LSTM, GRU and RNN, forward, reverse and bidirectional, layouts 0 and 1.
///
/// How it runs: the input projection X·W^T of every time step and both directions is one
/// matrix product on oneDNN (`MatMulPlan`, the fastest sgemm we have; a Swift panel loop
/// when oneDNN is unavailable), biases added once. Each step then only multiplies the
/// previous hidden state by R^T and applies the gates. R is packed per direction in
/// "unit blocks": 8 hidden units x all gates side by side, so one block's gate values sit
/// in registers together and a thread owning a range of blocks needs no other thread's
/// gates (one barrier per step; GRU's reset-before-linear form needs two).
enum RecurrentKernels {
    static let all: [String: KernelFactory] = [
        "LSTM": { try RecurrentKernel($0, cell: .lstm) },
        "GRU": { try RecurrentKernel($0, cell: .gru) },
        "RNN": { try RecurrentKernel($0, cell: .rnn) },
    ]
}

/// The three recurrent cells ONNX defines.
enum RecurrentCell: Sendable {
    case lstm, gru, rnn

    /// Gates per hidden unit, in ONNX's weight order: LSTM i, o, f, c; GRU z, r, h; RNN one.
    var gates: Int {
        switch self {
        case .lstm: return 4
        case .gru: return 3
        case .rnn: return 1
        }
    }

    var opName: String {
        switch self {
        case .lstm: return "LSTM"
        case .gru: return "GRU"
        case .rnn: return "RNN"
        }
    }

    /// Activations per direction and their defaults.
    var defaultActivations: [String] {
        switch self {
        case .lstm: return ["Sigmoid", "Tanh", "Tanh"]
        case .gru: return ["Sigmoid", "Tanh"]
        case .rnn: return ["Tanh"]
        }
    }
}

/// One activation function of a recurrent op (the `activations` attribute), with its
/// alpha and beta.
struct RecurrentActivation: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        case relu, tanh, sigmoid, affine, leakyrelu, thresholdedrelu, scaledtanh, hardsigmoid, elu, softsign, softplus
    }

    var kind: Kind
    var alpha: Float
    var beta: Float

    /// Parses the activation names (case-insensitive), consuming `alphas` and `betas` in
    /// order for the functions that take them; a missing value takes the default of the
    /// ONNX operator of the same name (LeakyRelu 0.01, HardSigmoid 0.2 and 0.5, ...).
    static func parse(_ names: [String], alphas: [Float], betas: [Float]) throws -> [RecurrentActivation] {
        var alphaIndex = 0, betaIndex = 0
        func nextAlpha(_ fallback: Float) -> Float {
            defer { alphaIndex += 1 }
            return alphaIndex < alphas.count ? alphas[alphaIndex] : fallback
        }
        func nextBeta(_ fallback: Float) -> Float {
            defer { betaIndex += 1 }
            return betaIndex < betas.count ? betas[betaIndex] : fallback
        }
        return try names.map { name in
            guard let kind = Kind(rawValue: name.lowercased()) else {
                throw KernelError.unsupported("recurrent activation '\(name)' (known: Relu, Tanh, Sigmoid, Affine, LeakyRelu, "
                                              + "ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus)")
            }
            switch kind {
            case .affine: return RecurrentActivation(kind: kind, alpha: nextAlpha(1), beta: nextBeta(0))
            case .leakyrelu: return RecurrentActivation(kind: kind, alpha: nextAlpha(0.01), beta: 0)
            case .thresholdedrelu: return RecurrentActivation(kind: kind, alpha: nextAlpha(1), beta: 0)
            case .scaledtanh: return RecurrentActivation(kind: kind, alpha: nextAlpha(1), beta: nextBeta(1))
            case .hardsigmoid: return RecurrentActivation(kind: kind, alpha: nextAlpha(0.2), beta: nextBeta(0.5))
            case .elu: return RecurrentActivation(kind: kind, alpha: nextAlpha(1), beta: 0)
            default: return RecurrentActivation(kind: kind, alpha: 0, beta: 0)
            }
        }
    }

    /// The function on one value, in Double (the reference kernel's form).
    func apply(_ x: Double) -> Double {
        let a = Double(alpha), b = Double(beta)
        switch kind {
        case .relu: return max(x, 0)
        case .tanh: return Foundation.tanh(x)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .affine: return a * x + b
        case .leakyrelu: return x >= 0 ? x : a * x
        case .thresholdedrelu: return x > a ? x : 0
        case .scaledtanh: return a * Foundation.tanh(b * x)
        case .hardsigmoid: return min(1, max(0, a * x + b))
        case .elu: return x >= 0 ? x : a * (Foundation.exp(x) - 1)
        case .softsign: return x / (1 + abs(x))
        case .softplus: return Foundation.log(1 + Foundation.exp(x))
        }
    }

    /// The function on eight lanes.
    @inline(__always)
    func apply(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        switch kind {
        case .sigmoid: return GateMath.sigmoid(x)
        case .tanh: return GateMath.tanh(x)
        case .relu: return x.replacing(with: 0, where: x .< 0)
        case .affine: return V(repeating: alpha) * x + V(repeating: beta)
        case .leakyrelu: return x.replacing(with: V(repeating: alpha) * x, where: x .< 0)
        case .thresholdedrelu: return x.replacing(with: 0, where: x .<= V(repeating: alpha))
        case .scaledtanh: return V(repeating: alpha) * GateMath.tanh(V(repeating: beta) * x)
        case .hardsigmoid:
            return (V(repeating: alpha) * x + V(repeating: beta)).clamped(lowerBound: V(repeating: 0), upperBound: V(repeating: 1))
        case .elu: return x.replacing(with: V(repeating: alpha) * (GateMath.exp(x) - 1), where: x .< 0)
        case .softsign:
            let magnitude = x.replacing(with: -x, where: x .< 0)
            return x / (V(repeating: 1) + magnitude)
        case .softplus:
            var out = V()
            for lane in 0..<8 { out[lane] = Float(Foundation.log1p(Foundation.exp(Double(x[lane])))) }
            return out
        }
    }
}

/// Attributes of a recurrent node, read and checked once at plan time.
struct RecurrentAttributes: Sendable {
    var cell: RecurrentCell
    var hiddenSize: Int?
    var directions: Int
    /// Only meaningful for one direction: true for `direction = "reverse"`.
    var reverse: Bool
    /// Per direction: LSTM [f, g, h], GRU [f, g], RNN [f].
    var activations: [[RecurrentActivation]]
    /// Pre-activation clip threshold (`clip`), applied to the gate inputs.
    var clip: Float?
    var layout: Int
    /// GRU `linear_before_reset`.
    var linearBeforeReset: Bool
    /// LSTM `input_forget`: the forget gate is 1 - input gate.
    var inputForget: Bool

    init(cell: RecurrentCell, hiddenSize: Int? = nil, direction: String = "forward", activations: [String]? = nil,
         alphas: [Float] = [], betas: [Float] = [], clip: Float? = nil, layout: Int = 0,
         linearBeforeReset: Bool = false, inputForget: Bool = false) throws {
        self.cell = cell
        self.hiddenSize = hiddenSize
        switch direction {
        case "forward": directions = 1; reverse = false
        case "reverse": directions = 1; reverse = true
        case "bidirectional": directions = 2; reverse = false
        default: throw KernelError.invalid("\(cell.opName) direction '\(direction)' must be forward, reverse or bidirectional")
        }
        let perDirection = cell.defaultActivations.count
        let names = activations ?? Array(repeating: cell.defaultActivations, count: directions).flatMap { $0 }
        let parsed = try RecurrentActivation.parse(names, alphas: alphas, betas: betas)
        if parsed.count == perDirection * directions {
            self.activations = (0..<directions).map { Array(parsed[($0 * perDirection)..<(($0 + 1) * perDirection)]) }
        } else if parsed.count == perDirection {
            self.activations = Array(repeating: parsed, count: directions)
        } else {
            throw KernelError.invalid("\(cell.opName) needs \(perDirection) activations per direction, got \(names)")
        }
        if let clip, !(clip > 0) { throw KernelError.invalid("\(cell.opName) clip \(clip) must be positive") }
        self.clip = clip
        guard layout == 0 || layout == 1 else { throw KernelError.invalid("\(cell.opName) layout \(layout) must be 0 or 1") }
        self.layout = layout
        self.linearBeforeReset = linearBeforeReset
        self.inputForget = inputForget
        if let hiddenSize, hiddenSize <= 0 { throw KernelError.invalid("\(cell.opName) hidden_size \(hiddenSize) must be positive") }
    }

    init(_ node: Node, cell: RecurrentCell) throws {
        try self.init(
            cell: cell,
            hiddenSize: node.hasAttribute("hidden_size") ? try node.int("hidden_size") : nil,
            direction: try node.string("direction", default: "forward"),
            activations: try node.strings("activations"),
            alphas: try node.floats("activation_alpha") ?? [],
            betas: try node.floats("activation_beta") ?? [],
            clip: node.hasAttribute("clip") ? try node.float("clip") : nil,
            layout: try node.int("layout", default: 0),
            linearBeforeReset: try node.int("linear_before_reset", default: 0) != 0,
            inputForget: try node.int("input_forget", default: 0) != 0)
    }
}

/// The checked sizes of one run, from the input shapes.
struct RecurrentShapes: Equatable {
    var sequence: Int, batch: Int, input: Int, hidden: Int, directions: Int

    /// Checks X, W, R and the optional inputs against each other.
    init(_ attributes: RecurrentAttributes, _ inputs: [Tensor?]) throws {
        let name = attributes.cell.opName
        let x = try requiredInput(inputs, 0), w = try requiredInput(inputs, 1), r = try requiredInput(inputs, 2)
        guard x.rank == 3, w.rank == 3, r.rank == 3 else {
            throw KernelError.invalid("\(name) X \(x.shape), W \(w.shape) and R \(r.shape) must be 3-D")
        }
        for (i, t) in inputs.enumerated() where i != 4 {
            if let t, t.elementType != .float {
                throw KernelError.unsupported("\(name) input \(i) of type \(t.elementType) (float only)")
            }
        }
        let g = attributes.cell.gates
        directions = attributes.directions
        (sequence, batch) = attributes.layout == 0 ? (x.shape[0], x.shape[1]) : (x.shape[1], x.shape[0])
        input = x.shape[2]
        hidden = attributes.hiddenSize ?? (w.shape[1] / g)
        let (d, h) = (directions, hidden)
        guard h > 0, w.shape == [d, g * h, input] else {
            throw KernelError.invalid("\(name) W \(w.shape) must be [\(d), \(g * h), \(input)] for X \(x.shape)")
        }
        guard r.shape == [d, g * h, h] else { throw KernelError.invalid("\(name) R \(r.shape) must be [\(d), \(g * h), \(h)]") }
        if inputs.count > 3, let b = inputs[3], b.shape != [d, 2 * g * h] {
            throw KernelError.invalid("\(name) B \(b.shape) must be [\(d), \(2 * g * h)]")
        }
        if inputs.count > 4, let lens = inputs[4] {
            guard lens.shape == [batch], lens.elementType.isInteger else {
                throw KernelError.invalid("\(name) sequence_lens \(lens.shape) of \(lens.elementType) must be [\(batch)] integers")
            }
        }
        let state = attributes.layout == 0 ? [d, batch, h] : [batch, d, h]
        for (i, what) in [(5, "initial_h"), (6, "initial_c")] where inputs.count > i {
            if let t = inputs[i], t.shape != state { throw KernelError.invalid("\(name) \(what) \(t.shape) must be \(state)") }
        }
        if inputs.count > 7, let p = inputs[7], p.shape != [d, 3 * h] {
            throw KernelError.invalid("\(name) P \(p.shape) must be [\(d), \(3 * h)]")
        }
    }

    /// Sequence length of every batch entry (all `sequence` without the input).
    func lengths(_ tensor: Tensor?) throws -> [Int] {
        guard let tensor else { return Array(repeating: sequence, count: batch) }
        let values = tensor.integers() ?? []
        for v in values where v < 0 || v > sequence {
            throw KernelError.invalid("sequence_lens value \(v) is outside [0, \(sequence)]")
        }
        return values
    }
}

/// Weights of one recurrent node in the kernel's layout. Hidden units are padded to
/// `paddedHidden` (a multiple of 8) with zero weights; a unit block holds 8 units of every
/// gate: column `block * gates * 8 + gate * 8 + lane`.
final class RecurrentWeights {
    let gates: Int, input: Int, hidden: Int, directions: Int
    let paddedHidden: Int
    /// Unit blocks per direction.
    var blocks: Int { paddedHidden / 8 }
    /// Columns per direction.
    var width: Int { gates * paddedHidden }
    /// W^T, `[input, directions * width]`: the projection's right operand.
    let wT: Tensor
    /// Per direction, per block: `[hidden rows][gates * 8]`, R^T of the block's columns.
    let r: [Float]
    /// Biases added to the projection, `[directions * width]` (Wb + Rb; GRU with
    /// linear_before_reset leaves Rb of the h gate out, it goes in `recurrentBias`).
    let bias: [Float]
    /// GRU linear_before_reset: Rb of the h gate, `[directions][paddedHidden]`.
    let recurrentBias: [Float]
    /// Peepholes `[directions][3][paddedHidden]` (i, o, f), empty without P.
    let peepholes: [Float]

    init(cell: RecurrentCell, linearBeforeReset: Bool, shapes: RecurrentShapes,
         w: Tensor, r rTensor: Tensor, b: Tensor?, p: Tensor?) {
        let g = cell.gates, h = shapes.hidden, d = shapes.directions, i = shapes.input
        let hp = (h + 7) / 8 * 8
        (gates, input, hidden, directions, paddedHidden) = (g, i, h, d, hp)
        let width = g * hp
        func column(_ gate: Int, _ unit: Int) -> Int { (unit / 8) * g * 8 + gate * 8 + unit % 8 }

        wT = Tensor(elementType: .float, shape: [i, d * width])
        let ws = w.scalars(as: Float.self)
        wT.withUnsafeMutableBufferPointer(as: Float.self) { out in
            for dir in 0..<d {
                for gate in 0..<g {
                    for unit in 0..<h {
                        let row = (dir * g + gate) * h + unit
                        let col = dir * width + column(gate, unit)
                        for k in 0..<i { out[k * d * width + col] = ws[row * i + k] }
                    }
                }
            }
        }

        let rs = rTensor.scalars(as: Float.self)
        var packed = [Float](repeating: 0, count: d * (hp / 8) * h * g * 8)
        for dir in 0..<d {
            for gate in 0..<g {
                for unit in 0..<h {
                    let row = (dir * g + gate) * h + unit
                    let block = unit / 8
                    let base = (dir * (hp / 8) + block) * h * g * 8 + gate * 8 + unit % 8
                    for k in 0..<h { packed[base + k * g * 8] = rs[row * h + k] }
                }
            }
        }
        r = packed

        var biasOut = [Float](repeating: 0, count: d * width)
        var recurrent = [Float](repeating: 0, count: linearBeforeReset ? d * hp : 0)
        if let b {
            let bs = b.scalars(as: Float.self)
            for dir in 0..<d {
                for gate in 0..<g {
                    for unit in 0..<h {
                        let wb = bs[dir * 2 * g * h + gate * h + unit]
                        let rb = bs[dir * 2 * g * h + (g + gate) * h + unit]
                        if linearBeforeReset && gate == 2 {
                            biasOut[dir * width + column(gate, unit)] = wb
                            recurrent[dir * hp + unit] = rb
                        } else {
                            biasOut[dir * width + column(gate, unit)] = wb + rb
                        }
                    }
                }
            }
        }
        bias = biasOut
        recurrentBias = recurrent

        var peep = [Float]()
        if let p {
            let ps = p.scalars(as: Float.self)
            peep = [Float](repeating: 0, count: d * 3 * hp)
            for dir in 0..<d {
                for k in 0..<3 {
                    for unit in 0..<h { peep[(dir * 3 + k) * hp + unit] = ps[(dir * 3 + k) * h + unit] }
                }
            }
        }
        peepholes = peep
    }

    func matches(_ shapes: RecurrentShapes) -> Bool {
        shapes.input == input && shapes.hidden == hidden && shapes.directions == directions
    }
}

final class RecurrentKernel: Kernel {
    let attributes: RecurrentAttributes
    /// Weights packed at plan time when W, R, B and P are all initializers.
    private var constantWeights: RecurrentWeights?
    /// The weights packed at plan time, if any (benchmarks).
    var packedWeights: RecurrentWeights? { constantWeights }
    /// The projection's oneDNN plan, kept while the number of rows stays the same.
    private var projectionPlan: MatMulPlan?
    /// Whether to use oneDNN for the projection (tests turn it off to check the fallback).
    var useDNNL = true
    /// Scratch of the last run (projection, states, gates), reused while big enough.
    private var scratch = Tensor(elementType: .float, shape: [0])

    init(_ ctx: KernelContext, cell: RecurrentCell) throws {
        attributes = try RecurrentAttributes(ctx.node, cell: cell)
        // Pack now when the weights are initializers; X's sizes come at run time, so the
        // plan-time check uses a stand-in X of sequence 1, batch 1.
        let present = { (i: Int) in i < ctx.node.inputs.count && !ctx.node.inputs[i].isEmpty }
        if let w = ctx.constant(1), let r = ctx.constant(2), w.rank == 3,
           !present(3) || ctx.constant(3) != nil, !present(7) || ctx.constant(7) != nil {
            let standIn = Tensor(elementType: .float, shape: [1, 1, w.shape[2]])
            let inputs: [Tensor?] = [standIn, w, r, ctx.constant(3), nil, nil, nil, ctx.constant(7)]
            if let shapes = try? RecurrentShapes(attributes, inputs) {
                constantWeights = RecurrentWeights(cell: cell, linearBeforeReset: attributes.linearBeforeReset, shapes: shapes,
                                                   w: w, r: r, b: ctx.constant(3), p: ctx.constant(7))
                // Packed copies from here on: the file's pages need not stay resident.
                for i in [1, 2, 3, 7] { ctx.constant(i)?.releaseResidentPages() }
            }
        }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let a = attributes
        let shapes = try RecurrentShapes(a, inputs)
        let (seq, batch, hidden, dirs) = (shapes.sequence, shapes.batch, shapes.hidden, shapes.directions)
        let lengths = try shapes.lengths(inputs.count > 4 ? inputs[4] : nil)
        let weights: RecurrentWeights
        if let constantWeights, constantWeights.matches(shapes) {
            weights = constantWeights
        } else {
            weights = RecurrentWeights(cell: a.cell, linearBeforeReset: a.linearBeforeReset, shapes: shapes,
                                       w: try requiredInput(inputs, 1), r: try requiredInput(inputs, 2),
                                       b: inputs.count > 3 ? inputs[3] : nil, p: inputs.count > 7 ? inputs[7] : nil)
        }
        let hp = weights.paddedHidden, width = weights.width

        let yShape = a.layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]
        let stateShape = a.layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden]
        let y = outputs.isRequested(0) ? try outputs.allocate(0, .float, yShape) : nil
        let yh = outputs.isRequested(1) && outputs.count > 1 ? try outputs.allocate(1, .float, stateShape) : nil
        let yc = a.cell == .lstm && outputs.isRequested(2) && outputs.count > 2 ? try outputs.allocate(2, .float, stateShape) : nil

        // Scratch: projection [rows][dirs * width], h double buffer, c, GRU r*h, gates.
        let rows = seq * batch
        let state = dirs * batch * hp
        let projectionCount = rows * dirs * width
        let total = projectionCount + 4 * state + dirs * batch * width
        if scratch.elementCount < total { scratch = Tensor(elementType: .float, shape: [total]) }

        let x = try requiredInput(inputs, 0)
        try scratch.withUnsafeMutableBufferPointer(as: Float.self) { buffer in
            guard let base = buffer.baseAddress else { return }
            let projection = base
            let h0 = base + projectionCount, h1 = h0 + state, c = h1 + state, resetH = c + state
            let gateScratch = resetH + state
            try project(x, weights, rows: rows, into: projection, scratch: scratch)
            // Initial states (padded lanes zero).
            h0.update(repeating: 0, count: 4 * state)
            for (index, target) in [(5, h0), (6, c)] {
                guard inputs.count > index, let initial = inputs[index] else { continue }
                initial.withUnsafeBufferPointer(as: Float.self) { src in
                    for d in 0..<dirs {
                        for b in 0..<batch {
                            let from = a.layout == 0 ? (d * batch + b) * hidden : (b * dirs + d) * hidden
                            for j in 0..<hidden { target[(d * batch + b) * hp + j] = src[from + j] }
                        }
                    }
                }
            }
            // Y is zero past each sequence's length.
            if let y {
                y.withUnsafeMutableBufferPointer(as: Float.self) { out in
                    for b in 0..<batch where lengths[b] < seq {
                        for t in lengths[b]..<seq {
                            for d in 0..<dirs {
                                let o = a.layout == 0 ? ((t * dirs + d) * batch + b) * hidden : ((b * seq + t) * dirs + d) * hidden
                                for j in 0..<hidden { out[o + j] = 0 }
                            }
                        }
                    }
                }
            }
            let yPointer = y.map { $0.rawPointer.assumingMemoryBound(to: Float.self) }
            let job = RecurrentSteps(
                attributes: a, weights: weights, sequence: seq, batch: batch, lengths: lengths,
                projection: projection, hBuffers: (h0, h1), c: c, resetH: resetH, gates: gateScratch, y: yPointer)

            let threads = ThreadPool.threadCount
            let blocks = weights.blocks
            let macsPerStep = dirs * batch * width * hidden
            let twoPhase = a.cell == .gru && !a.linearBeforeReset
            if dirs == 2 && threads >= 2 {
                // One thread per direction, each running its whole sequence: no barrier per step.
                ThreadPool.parallelFor(2) { range in
                    for d in range {
                        for s in 0..<seq {
                            if twoPhase { job.step(direction: d, step: s, blocks: 0..<blocks, phase: 1) }
                            job.step(direction: d, step: s, blocks: 0..<blocks, phase: twoPhase ? 2 : 0)
                        }
                    }
                }
            } else if threads >= 2 && macsPerStep >= 1 << 17 {
                for s in 0..<seq {
                    for phase in twoPhase ? [1, 2] : [0] {
                        ThreadPool.parallelFor(dirs * blocks) { range in
                            for index in range {
                                let d = index / blocks, block = index % blocks
                                job.step(direction: d, step: s, blocks: block..<(block + 1), phase: phase)
                            }
                        }
                    }
                }
            } else {
                for d in 0..<dirs {
                    for s in 0..<seq {
                        if twoPhase { job.step(direction: d, step: s, blocks: 0..<blocks, phase: 1) }
                        job.step(direction: d, step: s, blocks: 0..<blocks, phase: twoPhase ? 2 : 0)
                    }
                }
            }

            let final = seq % 2 == 0 ? h0 : h1
            for (tensor, source) in [(yh, final), (yc, c)] {
                guard let tensor else { continue }
                tensor.withUnsafeMutableBufferPointer(as: Float.self) { out in
                    for d in 0..<dirs {
                        for b in 0..<batch {
                            let to = a.layout == 0 ? (d * batch + b) * hidden : (b * dirs + d) * hidden
                            for j in 0..<hidden { out[to + j] = source[(d * batch + b) * hp + j] }
                        }
                    }
                }
            }
        }
    }

    /// projection[row] = x[row] · W^T + bias for every row of X (time-major for layout 0,
    /// batch-major for layout 1), both directions side by side.
    private func project(_ x: Tensor, _ weights: RecurrentWeights, rows: Int, into projection: UnsafeMutablePointer<Float>,
                         scratch: Tensor) throws {
        let columns = weights.directions * weights.width, k = weights.input
        guard rows > 0 else { return }
        var done = false
        if useDNNL && k > 0 {
            do {
                if projectionPlan?.aShape != [rows, k] || projectionPlan?.bShape != [k, columns] {
                    projectionPlan = try MatMulPlan(a: [rows, k], b: [k, columns])
                }
                if let plan = projectionPlan {
                    // The projection is the scratch's first part.
                    let output = Tensor(elementType: .float, shape: [rows, columns], buffer: scratch.buffer,
                                        byteOffset: scratch.byteOffset)
                    try plan.run(a: x.reshaped([rows, k]), b: weights.wT, output: output)
                    done = true
                }
            } catch {
                projectionPlan = nil
            }
        }
        let xPointer = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
        let wPointer = UnsafePointer(weights.wT.rawPointer.assumingMemoryBound(to: Float.self))
        let wasDone = done
        weights.bias.withUnsafeBufferPointer { bias in
            guard let biasBase = bias.baseAddress else { return }
            ThreadPool.parallelFor(rows, minimumPerThread: max(1, (1 << 16) / max(1, columns * max(k, 1)))) { range in
                for row in range {
                    let out = projection + row * columns
                    if wasDone {
                        GateMath.add(biasBase, into: out, count: columns)
                    } else {
                        out.update(from: biasBase, count: columns)
                        GateMath.addProducts(into: out, x: xPointer + row * k, depth: k, weights: wPointer,
                                             rowStride: columns, width: columns)
                    }
                }
            }
        }
    }
}

/// The per-step work of one run: pointers into the run's scratch and outputs. A step of
/// direction `d` over a range of unit blocks touches only those blocks' state, so ranges
/// of blocks run on different threads between two barriers.
struct RecurrentSteps {
    typealias V = SIMD8<Float>
    let attributes: RecurrentAttributes
    let weights: RecurrentWeights
    let sequence: Int, batch: Int
    let lengths: [Int]
    let projection: UnsafeMutablePointer<Float>
    /// h before step s is `hBuffers.0` for even s, `.1` for odd s; the step writes the other.
    let hBuffers: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    let c: UnsafeMutablePointer<Float>
    let resetH: UnsafeMutablePointer<Float>
    let gates: UnsafeMutablePointer<Float>
    let y: UnsafeMutablePointer<Float>?

    @inline(__always)
    private func clip(_ v: V) -> V {
        guard let clip = attributes.clip else { return v }
        return v.clamped(lowerBound: V(repeating: -clip), upperBound: V(repeating: clip))
    }

    @inline(__always)
    private func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    private func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// Runs step `s` (in the direction's own order) of direction `d` for `blocks`.
    /// Phase 0 is a whole step; GRU without linear_before_reset splits it into phase 1
    /// (z, r and r*h for the blocks) and phase 2 (the h gate, which reads r*h of every unit).
    func step(direction d: Int, step s: Int, blocks: Range<Int>, phase: Int) {
        let a = attributes, w = weights
        let g = w.gates, hidden = w.hidden, hp = w.paddedHidden, dirs = w.directions
        let columns = dirs * w.width
        let hPrev = s % 2 == 0 ? hBuffers.0 : hBuffers.1
        let hNext = s % 2 == 0 ? hBuffers.1 : hBuffers.0
        let reverse = dirs == 2 ? d == 1 : a.reverse
        let acts = a.activations[d]
        let hasPeepholes = !w.peepholes.isEmpty
        w.r.withUnsafeBufferPointer { rBuffer in
        w.peepholes.withUnsafeBufferPointer { peepBuffer in
        w.recurrentBias.withUnsafeBufferPointer { rbBuffer in
            guard let rBase = rBuffer.baseAddress else { return }
            for b in 0..<batch {
                let state = (d * batch + b) * hp
                let length = lengths[b]
                if s >= length {
                    // Past this sequence's end the state carries over unchanged.
                    if phase != 1 {
                        for block in blocks { (hNext + state + block * 8).update(from: hPrev + state + block * 8, count: 8) }
                    }
                    continue
                }
                let t = reverse ? length - 1 - s : s
                let row = a.layout == 0 ? t * batch + b : b * sequence + t
                let projectionRow = projection + row * columns + d * w.width
                let yRow: UnsafeMutablePointer<Float>? = y.map {
                    $0 + (a.layout == 0 ? ((t * dirs + d) * batch + b) * hidden : ((b * sequence + t) * dirs + d) * hidden)
                }
                let h = UnsafePointer(hPrev + state)
                for block in blocks {
                    let unit = block * 8
                    let gs = gates + ((d * batch + b) * w.blocks + block) * g * 8
                    let pr = projectionRow + block * g * 8
                    let panel = rBase + (d * w.blocks + block) * hidden * g * 8
                    let hOld = load(h + unit)
                    var hNew = V()
                    switch a.cell {
                    case .lstm:
                        gs.update(from: pr, count: 32)
                        GateMath.addProducts(into: gs, x: h, depth: hidden, weights: panel, rowStride: 32, width: 32)
                        let cOld = load(c + state + unit)
                        var iGate = load(gs), fGate = load(gs + 16), oGate = load(gs + 8)
                        var pO = V()
                        if hasPeepholes, let peep = peepBuffer.baseAddress {
                            iGate += load(peep + (d * 3) * hp + unit) * cOld
                            pO = load(peep + (d * 3 + 1) * hp + unit)
                            fGate += load(peep + (d * 3 + 2) * hp + unit) * cOld
                        }
                        let i = acts[0].apply(clip(iGate))
                        let f = a.inputForget ? V(repeating: 1) - i : acts[0].apply(clip(fGate))
                        let candidate = acts[1].apply(clip(load(gs + 24)))
                        let cNew = f * cOld + i * candidate
                        store(cNew, c + state + unit)
                        if hasPeepholes { oGate += pO * cNew }
                        hNew = acts[0].apply(clip(oGate)) * acts[2].apply(cNew)
                    case .gru where a.linearBeforeReset:
                        gs.update(from: pr, count: 16)
                        if let rb = rbBuffer.baseAddress {
                            (gs + 16).update(from: rb + d * hp + unit, count: 8)
                        }
                        GateMath.addProducts(into: gs, x: h, depth: hidden, weights: panel, rowStride: 24, width: 24)
                        let z = acts[0].apply(clip(load(gs)))
                        let r = acts[0].apply(clip(load(gs + 8)))
                        let candidate = acts[1].apply(clip(load(pr + 16) + r * load(gs + 16)))
                        hNew = (V(repeating: 1) - z) * candidate + z * hOld
                    case .gru:
                        if phase == 1 {
                            gs.update(from: pr, count: 16)
                            GateMath.addProducts(into: gs, x: h, depth: hidden, weights: panel, rowStride: 24, width: 16)
                            let z = acts[0].apply(clip(load(gs)))
                            let r = acts[0].apply(clip(load(gs + 8)))
                            store(z, gs)
                            store(r * hOld, resetH + state + unit)
                            continue
                        }
                        (gs + 16).update(from: pr + 16, count: 8)
                        GateMath.addProducts(into: gs + 16, x: UnsafePointer(resetH + state), depth: hidden,
                                             weights: panel + 16, rowStride: 24, width: 8)
                        let z = load(gs)
                        let candidate = acts[1].apply(clip(load(gs + 16)))
                        hNew = (V(repeating: 1) - z) * candidate + z * hOld
                    case .rnn:
                        gs.update(from: pr, count: 8)
                        GateMath.addProducts(into: gs, x: h, depth: hidden, weights: panel, rowStride: 8, width: 8)
                        hNew = acts[0].apply(clip(load(gs)))
                    }
                    store(hNew, hNext + state + unit)
                    if let yRow {
                        let count = min(8, hidden - unit)
                        if count == 8 { store(hNew, yRow + unit) } else {
                            for lane in 0..<count { yRow[unit + lane] = hNew[lane] }
                        }
                    }
                }
            }
        }
        }
        }
    }
}

/// Vector helpers of the recurrent kernels: exp, sigmoid and tanh on eight lanes, and
/// the row-times-panel product used by the projection fallback and every step.
enum GateMath {
    typealias V = SIMD8<Float>

    /// exp, sigmoid and tanh are the element-wise kernels' (one implementation, with
    /// its accuracy tests in ElementwiseKernelTests).
    @inline(__always)
    static func exp(_ x: V) -> V { VectorMath.exp(x) }

    @inline(__always)
    static func sigmoid(_ x: V) -> V { VectorMath.sigmoid(x) }

    @inline(__always)
    static func tanh(_ x: V) -> V { VectorMath.tanh(x) }

    /// out[0..<count] += values[0..<count].
    static func add(_ values: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let sum = UnsafeRawPointer(out + i).loadUnaligned(as: V.self) + UnsafeRawPointer(values + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: sum, as: V.self)
            i += 8
        }
        while i < count { out[i] += values[i]; i += 1 }
    }

    /// out[c] += sum over k < depth of x[k] * weights[k * rowStride + c], for c < width
    /// (a multiple of 8). Column chunks of 32 keep four accumulators in registers.
    @inline(__always)
    static func addProducts(into out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, depth: Int,
                            weights: UnsafePointer<Float>, rowStride: Int, width: Int) {
        var column = 0
        while column + 32 <= width {
            let o = UnsafeMutableRawPointer(out + column)
            var a0 = o.loadUnaligned(as: V.self), a1 = o.loadUnaligned(fromByteOffset: 32, as: V.self)
            var a2 = o.loadUnaligned(fromByteOffset: 64, as: V.self), a3 = o.loadUnaligned(fromByteOffset: 96, as: V.self)
            var row = UnsafeRawPointer(weights + column)
            for k in 0..<depth {
                let xk = V(repeating: x[k])
                a0 += xk * row.loadUnaligned(as: V.self)
                a1 += xk * row.loadUnaligned(fromByteOffset: 32, as: V.self)
                a2 += xk * row.loadUnaligned(fromByteOffset: 64, as: V.self)
                a3 += xk * row.loadUnaligned(fromByteOffset: 96, as: V.self)
                row += rowStride * 4
            }
            o.storeBytes(of: a0, as: V.self)
            o.storeBytes(of: a1, toByteOffset: 32, as: V.self)
            o.storeBytes(of: a2, toByteOffset: 64, as: V.self)
            o.storeBytes(of: a3, toByteOffset: 96, as: V.self)
            column += 32
        }
        while column + 16 <= width {
            let o = UnsafeMutableRawPointer(out + column)
            var a0 = o.loadUnaligned(as: V.self), a1 = o.loadUnaligned(fromByteOffset: 32, as: V.self)
            var b0 = V(), b1 = V()
            var row = UnsafeRawPointer(weights + column)
            var k = 0
            // Two rows per iteration: four independent sums hide the add latency.
            while k + 2 <= depth {
                let x0 = V(repeating: x[k]), x1 = V(repeating: x[k + 1])
                let next = row + rowStride * 4
                a0 += x0 * row.loadUnaligned(as: V.self)
                a1 += x0 * row.loadUnaligned(fromByteOffset: 32, as: V.self)
                b0 += x1 * next.loadUnaligned(as: V.self)
                b1 += x1 * next.loadUnaligned(fromByteOffset: 32, as: V.self)
                row += rowStride * 8
                k += 2
            }
            if k < depth {
                let xk = V(repeating: x[k])
                a0 += xk * row.loadUnaligned(as: V.self)
                a1 += xk * row.loadUnaligned(fromByteOffset: 32, as: V.self)
            }
            o.storeBytes(of: a0 + b0, as: V.self)
            o.storeBytes(of: a1 + b1, toByteOffset: 32, as: V.self)
            column += 16
        }
        while column + 8 <= width {
            let o = UnsafeMutableRawPointer(out + column)
            var a0 = o.loadUnaligned(as: V.self), a1 = V(), a2 = V(), a3 = V()
            var row = UnsafeRawPointer(weights + column)
            var k = 0
            while k + 4 <= depth {
                let step = rowStride * 4
                a0 += V(repeating: x[k]) * row.loadUnaligned(as: V.self)
                a1 += V(repeating: x[k + 1]) * (row + step).loadUnaligned(as: V.self)
                a2 += V(repeating: x[k + 2]) * (row + 2 * step).loadUnaligned(as: V.self)
                a3 += V(repeating: x[k + 3]) * (row + 3 * step).loadUnaligned(as: V.self)
                row += 4 * step
                k += 4
            }
            while k < depth {
                a0 += V(repeating: x[k]) * row.loadUnaligned(as: V.self)
                row += rowStride * 4
                k += 1
            }
            o.storeBytes(of: (a0 + a1) + (a2 + a3), as: V.self)
            column += 8
        }
    }
}
