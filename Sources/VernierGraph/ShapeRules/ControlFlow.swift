/// Shape rules of control flow: If (both branches inferred), Loop and Scan (the body
/// inferred once). Iteration counts that are not known become symbols.
enum ControlFlowRules {
    static var all: [String: ShapeRule] {
        ["If": ifRule, "Loop": loop, "Scan": scan]
    }

    /// Where both branches agree the output is exact; dims that differ become a symbol.
    static func merge(_ a: ValueFacts, _ b: ValueFacts, name: String) -> ValueFacts {
        guard let ta = a.type, let tb = b.type else { return ValueFacts(type: a.type ?? b.type) }
        guard let sa = ta.shape, let sb = tb.shape, sa.count == sb.count else { return ValueFacts(type: TensorType(ta.elementType, nil)) }
        let dims = zip(sa, sb).enumerated().map { i, pair in pair.0 == pair.1 ? pair.0 : Dim.symbol("\(name)[\(i)]") }
        return .tensor(ta.elementType, dims, constant: a.constant == b.constant ? a.constant : nil)
    }

    static func ifRule(_ ctx: RuleContext) throws -> [ValueFacts] {
        let thenOut = try ctx.runSubgraph("then_branch", inputs: [])
        let elseOut = try ctx.runSubgraph("else_branch", inputs: [])
        guard thenOut.count == elseOut.count else {
            throw ShapeError("then_branch has \(thenOut.count) outputs, else_branch \(elseOut.count)")
        }
        // A known condition selects its branch.
        if let c = ctx.constant(0)?.knownInts, c.count == 1 { return c[0] != 0 ? thenOut : elseOut }
        return zip(thenOut, elseOut).enumerated().map { i, pair in
            merge(pair.0, pair.1, name: "\(ctx.node.displayName).out\(i)")
        }
    }

    static func loop(_ ctx: RuleContext) throws -> [ValueFacts] {
        // Inputs: M (optional), cond (optional), carried values...
        let carried = Array(ctx.inputs.dropFirst(2))
        // The iteration number is a symbol, so that bounds computed from it
        // (Slice from i to i + 1) keep their exact length.
        let iteration = ValueFacts.tensor(.int64, [], constant: .ints([.symbol("iter(\(ctx.node.displayName))")]))
        let bodyInputs = [iteration, ValueFacts.tensor(.bool, [])] + carried.map { ValueFacts(type: $0.type) }
        let bodyOut = try ctx.runSubgraph("body", inputs: bodyInputs)
        guard bodyOut.count >= 1 + carried.count else {
            throw ShapeError("the body returns \(bodyOut.count) values for condition plus \(carried.count) carried")
        }
        // M is the trip count only when nothing can stop the loop earlier: no condition,
        // or one that starts true and that the body keeps true. A while loop (PyTorch
        // exports M = INT64_MAX with a computed condition) runs an unknown number.
        let trips: Dim
        if let m = ctx.constant(0)?.knownInts?.first,
           try !ctx.hasInput(1) || (ctx.constant(1)?.knownInts == [1] && bodyKeepsCondition(ctx, bodyOut[0])) {
            trips = .value(m)
        } else {
            trips = .symbol("trips(\(ctx.node.displayName))")
        }
        let finals = zip(carried, bodyOut[1...]).map { c, b in ValueFacts(type: c.type ?? b.type) }
        let scans = bodyOut[(1 + carried.count)...].map { f -> ValueFacts in
            guard let t = f.type, let s = t.shape else { return .unknown }
            return .tensor(t.elementType, [trips] + s)
        }
        return finals + scans
    }

    /// True when a Loop body's condition output is constant true, or its condition
    /// input passed through (directly or by Identity).
    static func bodyKeepsCondition(_ ctx: RuleContext, _ condition: ValueFacts) throws -> Bool {
        if condition.constant?.knownInts == [1] { return true }
        guard let body = try ctx.node.graph("body"), body.inputs.count > 1, let output = body.outputs.first else { return false }
        var name = output.name
        var hops = 0
        while name != body.inputs[1].name {
            guard hops < body.nodes.count,
                  let producer = body.nodes.first(where: { $0.outputs.contains(name) }),
                  producer.opType == "Identity", producer.isDefaultDomain, let source = producer.inputs.first else { return false }
            name = source
            hops += 1
        }
        return true
    }

    static func scan(_ ctx: RuleContext) throws -> [ValueFacts] {
        if ctx.opset < 9 { return try scanVersion8(ctx) }
        let scanCount = try ctx.node.int("num_scan_inputs")
        let stateCount = ctx.inputCount - scanCount
        guard scanCount > 0, stateCount >= 0 else { throw ShapeError("num_scan_inputs \(scanCount) does not fit \(ctx.inputCount) inputs") }
        let inputAxes = try ctx.node.ints("scan_input_axes") ?? Array(repeating: 0, count: scanCount)
        guard inputAxes.count == scanCount else { throw ShapeError("scan_input_axes has \(inputAxes.count) values for \(scanCount) scan inputs") }
        var length: Dim?
        var slices: [ValueFacts] = []
        for j in 0..<scanCount {
            let s = try ctx.shape(stateCount + j)
            let axis = try ctx.axis(inputAxes[j], rank: s.count)
            length = length ?? s[axis]
            var slice = s
            slice.remove(at: axis)
            slices.append(.tensor(try ctx.elementType(stateCount + j), slice))
        }
        let states = Array(ctx.inputs[0..<stateCount])
        let bodyOut = try ctx.runSubgraph("body", inputs: states + slices)
        guard bodyOut.count >= stateCount else { throw ShapeError("the body returns fewer values than the \(stateCount) states") }
        let scanOutputs = Array(bodyOut[stateCount...])
        let outputAxes = try ctx.node.ints("scan_output_axes") ?? Array(repeating: 0, count: scanOutputs.count)
        let n = length ?? .symbol("scan(\(ctx.node.displayName))")
        var result = zip(states, bodyOut).map { s, b in ValueFacts(type: s.type ?? b.type) }
        for (j, f) in scanOutputs.enumerated() {
            guard let t = f.type, var s = t.shape else { result.append(.unknown); continue }
            let axis = try ctx.axis(j < outputAxes.count ? outputAxes[j] : 0, rank: s.count + 1)
            s.insert(n, at: axis)
            result.append(.tensor(t.elementType, s))
        }
        return result
    }

    /// Opset 8's Scan: input 0 is the optional sequence_lens, every tensor has a leading
    /// batch axis, and the scan axis is 1.
    static func scanVersion8(_ ctx: RuleContext) throws -> [ValueFacts] {
        let scanCount = try ctx.node.int("num_scan_inputs")
        let stateCount = ctx.inputCount - 1 - scanCount
        guard scanCount > 0, stateCount >= 0 else { throw ShapeError("num_scan_inputs \(scanCount) does not fit \(ctx.inputCount) inputs") }
        var batch: Dim?
        var length: Dim?
        var slices: [ValueFacts] = []
        for j in 0..<scanCount {
            let s = try ctx.shape(1 + stateCount + j)
            guard s.count >= 2 else { throw ShapeError("scan input \(j) needs batch and sequence axes") }
            batch = batch ?? s[0]
            length = length ?? s[1]
            slices.append(.tensor(try ctx.elementType(1 + stateCount + j), Array(s[2...])))
        }
        let states = Array(ctx.inputs[1..<(1 + stateCount)])
        let stateSlices = states.map { f -> ValueFacts in
            guard let t = f.type, let s = t.shape, !s.isEmpty else { return .unknown }
            return .tensor(t.elementType, Array(s.dropFirst()))
        }
        let bodyOut = try ctx.runSubgraph("body", inputs: stateSlices + slices)
        guard bodyOut.count >= stateCount else { throw ShapeError("the body returns fewer values than the \(stateCount) states") }
        let b = batch ?? .symbol("batch(\(ctx.node.displayName))")
        let n = length ?? .symbol("scan(\(ctx.node.displayName))")
        var result = zip(states, bodyOut).map { s, o in ValueFacts(type: s.type ?? o.type.map { TensorType($0.elementType, $0.shape.map { [b] + $0 }) }) }
        for f in bodyOut[stateCount...] {
            guard let t = f.type, let s = t.shape else { result.append(.unknown); continue }
            result.append(.tensor(t.elementType, [b, n] + s))
        }
        return result
    }
}
