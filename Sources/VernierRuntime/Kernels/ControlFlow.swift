import VernierGraph

/// Kernels of the ControlFlow family: If, Loop and Scan run their subgraphs as plans of
/// their own (compiled once at plan time), reading enclosing values through the node's
/// implicit inputs.
enum ControlFlowKernels {
    static let all: [String: KernelFactory] = [
        "If": { try IfKernel($0) },
        "Loop": { try LoopKernel($0) },
        "Scan": { try ScanKernel($0) },
    ]
}

/// The enclosing values a node's subgraphs read, from its implicit inputs.
private func outerValues(_ inputs: [Tensor?], declared: Int, names: [String]) -> [String: Tensor] {
    var outer: [String: Tensor] = [:]
    for (i, name) in names.enumerated() where declared + i < inputs.count {
        if let t = inputs[declared + i] { outer[name] = t }
    }
    return outer
}

/// Copies a subgraph result into the node's output memory: a result may be a view of
/// an enclosing value, which the arena reuses once this node is done.
private func emit(_ tensor: Tensor, _ index: Int, _ outputs: OutputSlots) throws {
    guard outputs.isRequested(index) else { return }
    let out = try outputs.allocate(index, tensor.elementType, tensor.shape)
    if tensor.byteCount > 0 { out.rawPointer.copyMemory(from: tensor.rawPointer, byteCount: tensor.byteCount) }
}

/// The value of a boolean (or numeric) scalar condition input.
private func truth(_ tensor: Tensor, _ what: String) throws -> Bool {
    guard tensor.elementCount == 1, let value = tensor.doubles()?.first else {
        throw KernelError.invalid("\(what) must hold one element, got shape \(tensor.shape)")
    }
    return value != 0
}

final class IfKernel: Kernel {
    let thenBranch: ExecutionPlan
    let elseBranch: ExecutionPlan
    let declared: Int
    let implicit: [String]

    init(_ ctx: KernelContext) throws {
        guard let thenGraph = try ctx.node.graph("then_branch"), let elseGraph = try ctx.node.graph("else_branch") else {
            throw KernelError.invalid("If needs the then_branch and else_branch attributes")
        }
        thenBranch = try ctx.compileSubgraph(thenGraph)
        elseBranch = try ctx.compileSubgraph(elseGraph)
        declared = ctx.node.inputs.count
        implicit = ctx.implicitInputs
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let branch = try truth(try requiredInput(inputs, 0), "If's condition") ? thenBranch : elseBranch
        let results = try branch.run([:], outer: outerValues(inputs, declared: declared, names: implicit))
        for (k, name) in branch.outputNames.enumerated() where k < outputs.count {
            guard let value = results[name] else { throw KernelError.invalid("branch output '\(name)' missing") }
            try emit(value, k, outputs)
        }
    }
}

final class LoopKernel: Kernel {
    let body: ExecutionPlan
    let declared: Int
    let implicit: [String]
    /// Body inputs: iteration number, condition, carried values.
    let bodyInputs: [String]
    let outputTypes: [ElementType]
    /// Most iterations, whatever M says (`ExecutionOptions.maxLoopIterations`).
    let iterationLimit: Int

    init(_ ctx: KernelContext) throws {
        guard let graph = try ctx.node.graph("body") else { throw KernelError.invalid("Loop needs its body attribute") }
        iterationLimit = ctx.maxLoopIterations
        body = try ctx.compileSubgraph(graph)
        bodyInputs = graph.inputs.map(\.name)
        declared = ctx.node.inputs.count
        implicit = ctx.implicitInputs
        outputTypes = ctx.outputTypes.map { $0?.elementType ?? .float }
        guard bodyInputs.count >= 2, body.outputNames.count >= bodyInputs.count - 1 else {
            throw KernelError.invalid("Loop body has \(bodyInputs.count) inputs and \(body.outputNames.count) outputs; "
                                      + "it needs (iteration, condition, carried...) -> (condition, carried..., scan...)")
        }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let maxTrips = try inputs.first.flatMap { $0 }.map { t -> Int in
            guard let v = t.integers()?.first else { throw KernelError.invalid("Loop's M must be an integer scalar") }
            return v
        }
        var condition = try (inputs.count > 1 ? inputs[1] : nil).map { try truth($0, "Loop's cond") } ?? true
        let carriedCount = bodyInputs.count - 2
        var carried: [Tensor] = []
        for i in 0..<carriedCount { carried.append(try requiredInput(inputs, 2 + i)) }
        let outer = outerValues(inputs, declared: declared, names: implicit)
        let scanCount = body.outputNames.count - 1 - carriedCount
        var scans = [[Tensor]](repeating: [], count: scanCount)
        // Scan outputs are stacked at the end; their slices count against the output
        // limit as they accumulate, so a long loop fails before memory runs out.
        var scanBytes = 0
        var iteration = 0
        while condition && iteration < (maxTrips ?? Int.max) {
            guard iteration < iterationLimit else {
                let trips = maxTrips.map { "M = \($0)" } ?? "no M"
                throw KernelError.invalid("Loop ran \(iterationLimit) iterations (\(trips)) and its condition is still true; "
                                          + "refusing to run more (the limit is ExecutionOptions.maxLoopIterations)")
            }
            var feeds: [String: Tensor] = [
                bodyInputs[0]: Tensor(.int64, shape: [], values: [Int64(iteration)]),
                bodyInputs[1]: Tensor(.bool, shape: [], values: [UInt8(1)]),
            ]
            for (i, value) in carried.enumerated() { feeds[bodyInputs[2 + i]] = value }
            let results = try body.run(feeds, outer: outer)
            let names = body.outputNames
            func result(_ k: Int) throws -> Tensor {
                guard let t = results[names[k]] else { throw KernelError.invalid("Loop body output '\(names[k])' missing") }
                return t
            }
            condition = try truth(try result(0), "Loop body's condition output")
            for i in 0..<carriedCount { carried[i] = try result(1 + i) }
            for s in 0..<scanCount {
                let slice = try result(1 + carriedCount + s)
                scanBytes += slice.byteCount
                guard scanBytes <= outputs.maxBytes else {
                    throw KernelError.invalid("Loop's scan outputs reached \(scanBytes) bytes after \(iteration + 1) iterations, "
                                              + "over the limit of \(outputs.maxBytes)")
                }
                scans[s].append(slice)
            }
            iteration += 1
        }
        for i in 0..<carriedCount { try emit(carried[i], i, outputs) }
        for s in 0..<scanCount where outputs.isRequested(carriedCount + s) {
            try outputs.set(carriedCount + s, stack(scans[s], axis: 0, outputs: outputs, index: carriedCount + s,
                                                   emptyType: outputTypes[carriedCount + s]))
        }
    }
}

final class ScanKernel: Kernel {
    let body: ExecutionPlan
    let bodyInputs: [String]
    let stateCount: Int
    let scanInputCount: Int
    let inputAxes: [Int]
    let inputReversed: [Bool]
    let outputAxes: [Int]
    let outputReversed: [Bool]
    let declared: Int
    let implicit: [String]
    let outputTypes: [ElementType]

    init(_ ctx: KernelContext) throws {
        outputTypes = ctx.outputTypes.map { $0?.elementType ?? .float }
        guard ctx.opset >= 9 else {
            throw KernelError.unsupported("Scan before opset 9 (batch axis and sequence_lens); re-export at opset 9 or later")
        }
        guard let graph = try ctx.node.graph("body") else { throw KernelError.invalid("Scan needs its body attribute") }
        body = try ctx.compileSubgraph(graph)
        bodyInputs = graph.inputs.map(\.name)
        scanInputCount = try ctx.node.int("num_scan_inputs")
        stateCount = ctx.node.inputs.count - scanInputCount
        let scanOutputCount = body.outputNames.count - stateCount
        guard stateCount >= 0, scanOutputCount >= 0, bodyInputs.count == stateCount + scanInputCount else {
            throw KernelError.invalid("Scan body does not match its \(ctx.node.inputs.count) inputs and num_scan_inputs \(scanInputCount)")
        }
        inputAxes = try ctx.node.ints("scan_input_axes") ?? Array(repeating: 0, count: scanInputCount)
        inputReversed = (try ctx.node.ints("scan_input_directions") ?? Array(repeating: 0, count: scanInputCount)).map { $0 != 0 }
        outputAxes = try ctx.node.ints("scan_output_axes") ?? Array(repeating: 0, count: scanOutputCount)
        outputReversed = (try ctx.node.ints("scan_output_directions") ?? Array(repeating: 0, count: scanOutputCount)).map { $0 != 0 }
        guard inputAxes.count == scanInputCount, inputReversed.count == scanInputCount,
              outputAxes.count == scanOutputCount, outputReversed.count == scanOutputCount else {
            throw KernelError.invalid("Scan's axes/directions attributes do not match its scan inputs and outputs")
        }
        declared = ctx.node.inputs.count
        implicit = ctx.implicitInputs
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        var states: [Tensor] = []
        for i in 0..<stateCount { states.append(try requiredInput(inputs, i)) }
        var scanInputs: [Tensor] = []
        var axes: [Int] = []
        for j in 0..<scanInputCount {
            let t = try requiredInput(inputs, stateCount + j)
            let axis = inputAxes[j] < 0 ? inputAxes[j] + t.rank : inputAxes[j]
            guard axis >= 0 && axis < t.rank else { throw KernelError.invalid("scan_input_axes[\(j)] out of range for rank \(t.rank)") }
            scanInputs.append(t)
            axes.append(axis)
        }
        let length = scanInputs.first.map { $0.shape[axes[0]] } ?? 0
        for (j, t) in scanInputs.enumerated() where t.shape[axes[j]] != length {
            throw KernelError.invalid("scan inputs have different lengths along their scan axes")
        }
        let outer = outerValues(inputs, declared: declared, names: implicit)
        let names = body.outputNames
        var scans = [[Tensor]](repeating: [], count: names.count - stateCount)
        for step in 0..<length {
            var feeds: [String: Tensor] = [:]
            for i in 0..<stateCount { feeds[bodyInputs[i]] = states[i] }
            for j in 0..<scanInputCount {
                let index = inputReversed[j] ? length - 1 - step : step
                feeds[bodyInputs[stateCount + j]] = try slice(scanInputs[j], axis: axes[j], index: index)
            }
            let results = try body.run(feeds, outer: outer)
            for k in names.indices {
                guard let t = results[names[k]] else { throw KernelError.invalid("Scan body output '\(names[k])' missing") }
                if k < stateCount { states[k] = t } else { scans[k - stateCount].append(t) }
            }
        }
        for i in 0..<stateCount { try emit(states[i], i, outputs) }
        for s in scans.indices where outputs.isRequested(stateCount + s) {
            let parts = outputReversed[s] ? scans[s].reversed() : scans[s]
            let rank = (parts.first?.rank ?? 0) + 1
            let axis = outputAxes[s] < 0 ? outputAxes[s] + rank : outputAxes[s]
            guard axis >= 0 && axis < rank else { throw KernelError.invalid("scan_output_axes[\(s)] out of range") }
            try outputs.set(stateCount + s, stack(Array(parts), axis: axis, outputs: outputs, index: stateCount + s,
                                                  emptyType: outputTypes[stateCount + s]))
        }
    }
}

/// The sub-tensor at `index` along `axis` (that axis removed), copied.
func slice(_ t: Tensor, axis: Int, index: Int) throws -> Tensor {
    let outer = t.shape[..<axis].reduce(1, *)
    let inner = t.shape[(axis + 1)...].reduce(1, *)
    guard let elementBytes = t.elementType.byteCount(elements: 1) else { throw KernelError.unsupported("\(t.elementType)") }
    var shape = t.shape
    shape.remove(at: axis)
    let result = Tensor(elementType: t.elementType, shape: shape)
    let block = inner * elementBytes
    for o in 0..<outer {
        let source = t.rawPointer + ((o * t.shape[axis] + index) * inner) * elementBytes
        (result.rawPointer + o * block).copyMemory(from: source, byteCount: block)
    }
    return result
}

/// Equal-shaped tensors stacked along a new `axis`, in the node's output `index`.
/// With no parts (zero iterations) the result is empty, of the inferred element type.
func stack(_ parts: [Tensor], axis: Int, outputs: OutputSlots, index: Int, emptyType: ElementType) throws -> Tensor {
    guard let first = parts.first else {
        return try outputs.allocate(index, emptyType, [0])
    }
    guard parts.allSatisfy({ $0.shape == first.shape && $0.elementType == first.elementType }) else {
        throw KernelError.invalid("scan outputs change shape between iterations: \(parts.map(\.shape))")
    }
    guard let elementBytes = first.elementType.byteCount(elements: 1) else { throw KernelError.unsupported("\(first.elementType)") }
    var shape = first.shape
    shape.insert(parts.count, at: axis)
    let result = try outputs.allocate(index, first.elementType, shape)
    let outer = first.shape[..<axis].reduce(1, *)
    let block = first.shape[axis...].reduce(1, *) * elementBytes
    for o in 0..<outer {
        for (k, part) in parts.enumerated() {
            (result.rawPointer + (o * parts.count + k) * block).copyMemory(from: part.rawPointer + o * block, byteCount: block)
        }
    }
    return result
}
