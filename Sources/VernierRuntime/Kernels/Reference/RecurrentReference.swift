extension ReferenceKernels {
    /// LSTM, GRU or RNN written from ONNX's equations, one time step, batch entry and
    /// unit at a time, in Double. Inputs in the op's order (X, W, R, B, sequence_lens,
    /// initial_h, initial_c, P; nil when omitted); returns Y, Y_h and (LSTM) Y_c in the
    /// attributes' layout. Shapes must already be valid (tests only).
    static func recurrent(_ attributes: RecurrentAttributes, _ inputs: [Tensor?]) throws -> [Tensor] {
        let a = attributes
        let shapes = try RecurrentShapes(a, inputs)
        let (seq, batch, inputSize, hidden, dirs) = (shapes.sequence, shapes.batch, shapes.input, shapes.hidden, shapes.directions)
        let g = a.cell.gates
        func values(_ i: Int) -> [Double]? { i < inputs.count ? inputs[i]?.doubles() : nil }
        let x = values(0) ?? [], w = values(1) ?? [], r = values(2) ?? []
        let bias = values(3), h0 = values(5), c0 = values(6), peep = values(7)
        let lengths = try shapes.lengths(inputs.count > 4 ? inputs[4] : nil)
        func xAt(_ t: Int, _ b: Int, _ k: Int) -> Double {
            x[(a.layout == 0 ? t * batch + b : b * seq + t) * inputSize + k]
        }
        func stateIndex(_ d: Int, _ b: Int) -> Int { a.layout == 0 ? (d * batch + b) * hidden : (b * dirs + d) * hidden }
        func yIndex(_ t: Int, _ d: Int, _ b: Int) -> Int {
            a.layout == 0 ? ((t * dirs + d) * batch + b) * hidden : ((b * seq + t) * dirs + d) * hidden
        }
        var y = [Double](repeating: 0, count: seq * dirs * batch * hidden)
        var yh = [Double](repeating: 0, count: dirs * batch * hidden)
        var yc = yh
        for d in 0..<dirs {
            let reverse = dirs == 2 ? d == 1 : a.reverse
            let acts = a.activations[d]
            func clip(_ v: Double) -> Double {
                guard let c = a.clip else { return v }
                return min(max(v, -Double(c)), Double(c))
            }
            /// Wb + Rb of (gate, unit) split in its two halves.
            func wb(_ gate: Int, _ j: Int) -> Double { bias?[d * 2 * g * hidden + gate * hidden + j] ?? 0 }
            func rb(_ gate: Int, _ j: Int) -> Double { bias?[d * 2 * g * hidden + (g + gate) * hidden + j] ?? 0 }
            /// Row (gate, unit) of W times x_t, and of R times a state vector.
            func wx(_ gate: Int, _ j: Int, _ t: Int, _ b: Int) -> Double {
                var sum = 0.0
                for k in 0..<inputSize { sum += w[((d * g + gate) * hidden + j) * inputSize + k] * xAt(t, b, k) }
                return sum
            }
            func rh(_ gate: Int, _ j: Int, _ state: [Double]) -> Double {
                var sum = 0.0
                for k in 0..<hidden { sum += r[((d * g + gate) * hidden + j) * hidden + k] * state[k] }
                return sum
            }
            for b in 0..<batch {
                var h = (0..<hidden).map { h0?[stateIndex(d, b) + $0] ?? 0 }
                var c = (0..<hidden).map { c0?[stateIndex(d, b) + $0] ?? 0 }
                for s in 0..<lengths[b] {
                    let t = reverse ? lengths[b] - 1 - s : s
                    var newH = h, newC = c
                    switch a.cell {
                    case .lstm:
                        for j in 0..<hidden {
                            func p(_ k: Int) -> Double { peep?[(d * 3 + k) * hidden + j] ?? 0 }
                            func pre(_ gate: Int) -> Double { wx(gate, j, t, b) + rh(gate, j, h) + wb(gate, j) + rb(gate, j) }
                            let i = acts[0].apply(clip(pre(0) + p(0) * c[j]))
                            let f = a.inputForget ? 1 - i : acts[0].apply(clip(pre(2) + p(2) * c[j]))
                            let candidate = acts[1].apply(clip(pre(3)))
                            newC[j] = f * c[j] + i * candidate
                            let o = acts[0].apply(clip(pre(1) + p(1) * newC[j]))
                            newH[j] = o * acts[2].apply(newC[j])
                        }
                    case .gru:
                        var z = [Double](repeating: 0, count: hidden), reset = z
                        for j in 0..<hidden {
                            z[j] = acts[0].apply(clip(wx(0, j, t, b) + rh(0, j, h) + wb(0, j) + rb(0, j)))
                            reset[j] = acts[0].apply(clip(wx(1, j, t, b) + rh(1, j, h) + wb(1, j) + rb(1, j)))
                        }
                        let resetH = (0..<hidden).map { reset[$0] * h[$0] }
                        for j in 0..<hidden {
                            let candidate: Double
                            if a.linearBeforeReset {
                                candidate = acts[1].apply(clip(wx(2, j, t, b) + reset[j] * (rh(2, j, h) + rb(2, j)) + wb(2, j)))
                            } else {
                                candidate = acts[1].apply(clip(wx(2, j, t, b) + rh(2, j, resetH) + rb(2, j) + wb(2, j)))
                            }
                            newH[j] = (1 - z[j]) * candidate + z[j] * h[j]
                        }
                    case .rnn:
                        for j in 0..<hidden {
                            newH[j] = acts[0].apply(clip(wx(0, j, t, b) + rh(0, j, h) + wb(0, j) + rb(0, j)))
                        }
                    }
                    h = newH
                    c = newC
                    for j in 0..<hidden { y[yIndex(t, d, b) + j] = h[j] }
                }
                for j in 0..<hidden {
                    yh[stateIndex(d, b) + j] = h[j]
                    yc[stateIndex(d, b) + j] = c[j]
                }
            }
        }
        let yShape = a.layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]
        let stateShape = a.layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden]
        var outputs = [Tensor(shape: yShape, values: y.map { Float($0) }), Tensor(shape: stateShape, values: yh.map { Float($0) })]
        if a.cell == .lstm { outputs.append(Tensor(shape: stateShape, values: yc.map { Float($0) })) }
        return outputs
    }
}
