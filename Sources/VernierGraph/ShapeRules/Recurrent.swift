/// Shape rules of recurrent layers: LSTM, GRU, RNN.
enum RecurrentRules {
    static var all: [String: ShapeRule] {
        ["LSTM": { ctx in try recurrent(ctx, gates: 4, cellState: true) },
         "GRU": { ctx in try recurrent(ctx, gates: 3, cellState: false) },
         "RNN": { ctx in try recurrent(ctx, gates: 1, cellState: false) }]
    }

    /// Y is [seq, directions, batch, hidden] (layout 0) or [batch, seq, directions, hidden];
    /// Y_h (and LSTM's Y_c) are [directions, batch, hidden] or [batch, directions, hidden].
    static func recurrent(_ ctx: RuleContext, gates: Int, cellState: Bool) throws -> [ValueFacts] {
        let x = try ctx.shape(0), w = try ctx.shape(1)
        guard x.count == 3, w.count == 3 else {
            throw ShapeError("X \(x.shapeDescription) and W \(w.shapeDescription) must be 3-D")
        }
        let layout = try ctx.node.int("layout", default: 0)
        let direction = try ctx.node.string("direction", default: "forward")
        let directions: Dim = .value(direction == "bidirectional" ? 2 : 1)
        let hidden: Dim
        if ctx.node.hasAttribute("hidden_size") {
            hidden = .value(try ctx.node.int("hidden_size"))
        } else {
            hidden = w[1].floorDivided(by: .value(gates))
        }
        let (seq, batch) = layout == 0 ? (x[0], x[1]) : (x[1], x[0])
        let element = try ctx.elementType(0)
        let y: [Dim] = layout == 0 ? [seq, directions, batch, hidden] : [batch, seq, directions, hidden]
        let state: [Dim] = layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]
        var out: [ValueFacts] = [.tensor(element, y), .tensor(element, state)]
        if cellState { out.append(.tensor(element, state)) }
        return out
    }
}
