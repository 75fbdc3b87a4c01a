import VernierGraph

/// Recurrent layers, over every time step and both directions:
/// MACs = seq x directions x batch x gates x hidden x (input + hidden);
/// FLOPs = 2 x MACs + seq x directions x batch x hidden x the per-unit gate work in
/// `gateFlops` (LSTM 23, GRU 18, RNN 3).
enum RecurrentCosts {
    /// Element-wise FLOPs per hidden unit per step, term by term.
    static let gateFlops: [String: Double] = [
        // 8 bias adds + 3 sigmoid x 3 + 2 tanh + (f*c, i*g, add) 3 + o*tanh(c) 1
        "LSTM": 8 + 9 + 2 + 3 + 1,
        // 6 bias adds + 2 sigmoid x 3 + 1 tanh + r*(Rh) 1 + (1-z)*h~ + z*h 4
        "GRU": 6 + 6 + 1 + 1 + 4,
        // 2 bias adds + tanh
        "RNN": 2 + 1,
    ]
    static let gates: [String: Int] = ["LSTM": 4, "GRU": 3, "RNN": 1]

    static var all: [String: CostFormula] {
        var formulas: [String: CostFormula] = [:]
        for (op, g) in gates {
            formulas[op] = { ctx in
                guard let x = ctx.shape(input: 0), x.count == 3, let w = ctx.shape(input: 1), w.count == 3,
                      let r = ctx.shape(input: 2), r.count == 3 else { return nil }
                let layout = (try? ctx.node.int("layout", default: 0)) ?? 0
                let (seq, batch) = layout == 0 ? (x[0], x[1]) : (x[1], x[0])
                let directions = w[0]
                let hidden = r[2]
                let input = w[2]
                let steps = Cost(seq) * Cost(directions) * Cost(batch)
                let macs = steps * Cost(Double(g)) * Cost(hidden) * (Cost(input) + Cost(hidden))
                return .multiplyAdd(macs, extraFlops: steps * Cost(hidden) * Cost(gateFlops[op] ?? 0))
            }
        }
        return formulas
    }
}
