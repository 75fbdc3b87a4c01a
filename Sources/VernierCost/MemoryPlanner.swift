import VernierGraph

/// One arena buffer: a span of bytes shared by values whose lifetimes chain (in-place
/// ops and aliases).
public struct PlannedBuffer: Sendable, Equatable {
    public var size: Int
    public var offset: Int
    /// First and last execution step at which the buffer holds live data.
    public var firstStep: Int
    public var lastStep: Int
    /// Values stored in it, in order of definition.
    public var values: [String]
}

/// Where every activation lives in one arena, and how much memory that takes.
public struct MemoryPlan: Sendable {
    public var buffers: [PlannedBuffer]
    /// Buffer index of each planned value.
    public var bufferOf: [String: Int]
    /// The arena size: planned peak activation bytes.
    public var arenaBytes: Int
    /// Bytes if every activation had a buffer of its own.
    public var naiveBytes: Int
    /// Live activation bytes after each execution step (one entry per node).
    public var liveBytes: [Int]
    /// Values that sit inside their buffer rather than at its start (a Concat's inputs
    /// written in place in its output): their byte offset in the buffer and their size.
    public var innerSpans: [String: (offset: Int, size: Int)] = [:]
    /// The largest live set: a lower bound on any arena.
    public var maxLiveBytes: Int { liveBytes.max() ?? 0 }

    /// Where `name` lives in the arena: its first byte and the bytes it may use.
    public func span(of name: String) -> (offset: Int, size: Int)? {
        guard let b = bufferOf[name] else { return nil }
        if let inner = innerSpans[name] { return (buffers[b].offset + inner.offset, inner.size) }
        return (buffers[b].offset, buffers[b].size)
    }
}

/// Why a graph could not be planned.
public enum MemoryPlanError: Error, CustomStringConvertible, Sendable {
    case symbolicSize(value: String, size: String)
    case unknownSize(value: String)

    public var description: String {
        switch self {
        case .symbolicSize(let v, let s): return "value '\(v)' has symbolic size \(s); bind the dims (--dim, --input) to plan memory"
        case .unknownSize(let v): return "the size of value '\(v)' is unknown"
        }
    }
}

/// Plans activation memory: lifetimes over the execution order, in-place reuse where
/// the op allows, aliases for ops that only reinterpret, and offsets in one arena
/// assigned greedily by size with best fit.
public enum MemoryPlanner {
    /// Ops whose output is the input's bytes reinterpreted (no copy).
    public static let aliasOps: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"]
    /// Element-wise ops that may write their output over a dead input of the same size.
    public static let inPlaceOps: Set<String> = Set(ElementwiseCosts.flopsPerElement.keys).union(["Max", "Min", "Sum", "Mean"])

    /// Buffers are aligned to this many bytes (a cache line).
    public static let alignment = 64

    /// Values computed from weights and constants alone (a QDQ model's dequantized
    /// weights, a transposed weight): folded at plan time, they live with the weights.
    public static func foldedValues(_ inferred: InferredGraph) -> Set<String> {
        var folded = Set(inferred.graph.initializers.map(\.name))
        for node in inferred.graph.nodes where node.subgraphs.isEmpty && !node.opType.hasPrefix("Random") {
            let inputs = node.inputs.filter { !$0.isEmpty }
            if inputs.allSatisfy({ folded.contains($0) || inferred.facts[$0]?.constant != nil }) {
                for o in node.outputs where !o.isEmpty { folded.insert(o) }
            }
        }
        return folded
    }

    /// True for values the arena holds: not weights, not folded, not known constants.
    static func isActivation(_ name: String, folded: Set<String>, inferred: InferredGraph) -> Bool {
        !name.isEmpty && !folded.contains(name) && inferred.facts[name]?.constant == nil
    }

    /// The arena layout for `inferred`. `storageShapes` gives values an executor stores
    /// larger than their shape (channel-blocked activations with padding channels).
    /// `contiguousConcat` says which Concat nodes store each input as one contiguous
    /// block of the output, in order (batch 1 along the channels, in the executor's
    /// layouts); those inputs that only the Concat reads are then planned inside its
    /// output, so their producers write them in place and the Concat copies nothing
    /// for them. Without it (static analysis) every value has a buffer of its own.
    public static func plan(_ inferred: InferredGraph, storageShapes: [String: [Int]] = [:],
                            contiguousConcat: ((Node) -> Bool)? = nil) throws -> MemoryPlan {
        let graph = inferred.graph
        let folded = foldedValues(inferred)
        func isActivation(_ name: String) -> Bool { Self.isActivation(name, folded: folded, inferred: inferred) }
        func bytes(_ name: String) throws -> Int {
            guard let t = inferred.type(of: name), let shape = t.shape else { throw MemoryPlanError.unknownSize(value: name) }
            guard let count = storageShapes[name]?.reduce(1, *) ?? shape.knownElementCount else {
                throw MemoryPlanError.symbolicSize(value: name, size: shape.shapeDescription)
            }
            guard let b = t.elementType.byteCount(elements: count) else { return 0 }
            return (b + alignment - 1) / alignment * alignment
        }

        let steps = graph.nodes.count
        let graphOutputs = Set(graph.outputs.map(\.name))
        var lastUse: [String: Int] = [:]
        for (step, node) in graph.nodes.enumerated() {
            for i in node.inputs where isActivation(i) { lastUse[i] = step }
            for (_, sub) in node.subgraphs {
                for name in GraphValidator.outerReads(of: sub) where isActivation(name) { lastUse[name] = max(lastUse[name] ?? step, step) }
            }
        }
        for o in graphOutputs where isActivation(o) { lastUse[o] = steps }

        let parts = contiguousConcat.map {
            concatParts(inferred, isActivation: isActivation, stored: Set(storageShapes.keys), contiguous: $0)
        } ?? [:]

        var buffers: [PlannedBuffer] = []
        var bufferOf: [String: Int] = [:]
        var innerSpans: [String: (offset: Int, size: Int)] = [:]
        var naive = 0
        func newBuffer(_ name: String, step: Int) throws {
            let size = try bytes(name)
            naive += size
            bufferOf[name] = buffers.count
            buffers.append(PlannedBuffer(size: size, offset: 0, firstStep: step, lastStep: max(step, lastUse[name] ?? step), values: [name]))
        }
        /// Puts `name` in buffer `b` at `inner` bytes from its start (nil: at the start).
        func join(_ name: String, buffer b: Int, inner: (offset: Int, size: Int)?, step: Int) throws {
            naive += try bytes(name)
            bufferOf[name] = b
            if let inner, inner.offset > 0 || inner.size < buffers[b].size { innerSpans[name] = inner }
            buffers[b].values.append(name)
            buffers[b].lastStep = max(buffers[b].lastStep, lastUse[name] ?? step)
        }
        /// The buffer holding the Concat output `name` and `name`'s span in it, made at
        /// `step` (its first input's production) when it has none yet; inside the
        /// output of a further Concat when `name` is an input planned in place there too.
        func container(_ name: String, step: Int) throws -> (buffer: Int, inner: (offset: Int, size: Int)) {
            let size = try bytes(name)
            if let b = bufferOf[name] { return (b, innerSpans[name] ?? (0, buffers[b].size)) }
            if let outer = parts[name] {
                let (b, span) = try container(outer.concat, step: step)
                let inner = (offset: span.offset + outer.offset, size: size)
                try join(name, buffer: b, inner: inner, step: step)
                return (b, inner)
            }
            try newBuffer(name, step: step)
            return (buffers.count - 1, (0, size))
        }
        for input in graph.runtimeInputs where isActivation(input.name) { try newBuffer(input.name, step: 0) }
        for (step, node) in graph.nodes.enumerated() {
            for (index, output) in node.outputs.enumerated() where isActivation(output) {
                if let b = bufferOf[output] {
                    // A Concat output whose buffer its inputs opened.
                    buffers[b].lastStep = max(buffers[b].lastStep, lastUse[output] ?? step)
                } else if let part = parts[output] {
                    // Written in place inside the Concat's output.
                    let (b, span) = try container(part.concat, step: step)
                    try join(output, buffer: b, inner: (span.offset + part.offset, try bytes(output)), step: step)
                } else if index == 0, let (b, input) = reusableBuffer(
                    of: node, step: step, output: output, bufferOf: bufferOf, buffers: buffers,
                    lastUse: lastUse, graphOutputs: graphOutputs, inferred: inferred) {
                    // Reuse the input's buffer when this op allows it and the input dies
                    // here, at the input's place in it.
                    try join(output, buffer: b, inner: innerSpans[input].map { ($0.offset, try bytes(output)) }, step: step)
                } else {
                    try newBuffer(output, step: step)
                }
            }
        }
        assignOffsets(&buffers)
        let arena = buffers.map { $0.offset + $0.size }.max() ?? 0
        var live = [Int](repeating: 0, count: max(steps, 1))
        for b in buffers {
            for s in b.firstStep...min(b.lastStep, live.count - 1) { live[s] += b.size }
        }
        return MemoryPlan(buffers: buffers, bufferOf: bufferOf, arenaBytes: arena, naiveBytes: naive, liveBytes: live,
                          innerSpans: innerSpans)
    }

    /// The Concat inputs planned in place: for each, the Concat's output and the input's
    /// byte offset in it. An input qualifies when the Concat is contiguous, the input is
    /// an activation some node computes, the Concat reads it once and nothing else reads
    /// it, it is no graph output, and it starts on an `alignment` boundary of the output.
    /// An input that aliases another value (a Reshape) qualifies with that value when
    /// the same holds for it. Concats over values `stored` larger than
    /// their shape (padding channels) keep every input apart.
    static func concatParts(_ inferred: InferredGraph, isActivation: (String) -> Bool, stored: Set<String>,
                            contiguous: (Node) -> Bool) -> [String: (concat: String, offset: Int)] {
        let graph = inferred.graph
        let uses = ValueUses(graph)
        var producer: [String: Node] = [:]
        for node in graph.nodes {
            for o in node.outputs where !o.isEmpty { producer[o] = node }
        }
        var parts: [String: (concat: String, offset: Int)] = [:]
        for node in graph.nodes where node.isDefaultDomain && node.opType == "Concat" && node.outputs.count == 1 {
            guard let output = node.outputs.first, isActivation(output), !(node.inputs + [output]).contains(where: stored.contains),
                  contiguous(node) else { continue }
            var offset = 0
            for input in node.inputs {
                guard let type = inferred.type(of: input), let count = type.shape?.knownElementCount,
                      let size = type.elementType.byteCount(elements: count) else { break }
                /// Read once, by `reader` alone, and no graph output.
                func movable(_ value: String, readBy reader: Node) -> Bool {
                    isActivation(value) && uses.soleReader(of: value) != nil && parts[value] == nil
                        && reader.inputs.filter({ $0 == value }).count == 1
                }
                func isAlias(_ node: Node) -> Bool { node.isDefaultDomain && aliasOps.contains(node.opType) }
                if movable(input, readBy: node), offset % alignment == 0, let source = producer[input] {
                    if !isAlias(source) {
                        parts[input] = (output, offset)
                    } else if let origin = source.inputs.first, movable(origin, readBy: source), let originSource = producer[origin],
                              !isAlias(originSource) {
                        // A reshape of a value only it reads (a detector head's [1, 3, h, w, 85]
                        // as [1, 3hw, 85]): the value itself is written in place, and the
                        // reshape, a view of it, lands there too.
                        parts[origin] = (output, offset)
                        parts[input] = (output, offset)
                    }
                }
                offset += size
            }
        }
        return parts
    }

    /// The buffer of an input that `output` may take over, if any.
    static func reusableBuffer(of node: Node, step: Int, output: String, bufferOf: [String: Int], buffers: [PlannedBuffer],
                              lastUse: [String: Int],
                              graphOutputs: Set<String>, inferred: InferredGraph) -> (buffer: Int, input: String)? {
        guard node.isDefaultDomain else { return nil }
        let alias = aliasOps.contains(node.opType)
        let sum = node.hasFusedSum
        guard alias || sum || inPlaceOps.contains(node.opType) else { return nil }
        var candidates = alias ? Array(node.inputs.prefix(1)) : node.inputs
        if sum, let addend = node.inputs.last {
            // A fused residual sum accumulates into its addend: with the output in the
            // addend's buffer the kernel skips copying the addend in first (ResNet-50
            // copied 22 MB a run). Not when the product itself reads the addend too.
            candidates = node.inputs.dropLast().contains(addend) ? [] : [addend]
        }
        for input in candidates where !input.isEmpty {
            guard let b = bufferOf[input] else { continue }
            // An alias keeps the buffer alive as long as either name is used; an in-place
            // write needs the input dead after this step and the same element type and
            // element count (not just the same rounded size: a broadcast scalar input must
            // not take a 3-element output, which would overwrite it while it is read).
            if alias { return (b, input) }
            guard lastUse[input] == step, !graphOutputs.contains(input),
                  let inType = inferred.type(of: input), let outType = inferred.type(of: output),
                  inType.elementType == outType.elementType,
                  let inCount = inType.shape?.knownElementCount, let outCount = outType.shape?.knownElementCount,
                  inCount == outCount else { continue }
            // Every other value in that buffer (aliases) must be dead too.
            if buffers[b].lastStep <= step { return (b, input) }
        }
        return nil
    }

    /// Greedy by size, best fit: largest buffers first, each at the lowest offset that
    /// does not overlap a placed buffer whose lifetime intersects its own.
    static func assignOffsets(_ buffers: inout [PlannedBuffer]) {
        // Plain spans, so the quadratic scan touches no reference-counted storage.
        struct Span { var offset: Int; var size: Int; var first: Int; var last: Int }
        var spans = buffers.map { Span(offset: 0, size: $0.size, first: $0.firstStep, last: $0.lastStep) }
        let order = spans.indices.sorted { spans[$0].size != spans[$1].size ? spans[$0].size > spans[$1].size : $0 < $1 }
        var placed: [Int] = []
        var conflicts: [Span] = []
        for i in order {
            let b = spans[i]
            conflicts.removeAll(keepingCapacity: true)
            for p in placed where spans[p].first <= b.last && b.first <= spans[p].last { conflicts.append(spans[p]) }
            conflicts.sort { $0.offset < $1.offset }
            var best: (offset: Int, gap: Int)?
            var cursor = 0
            for c in conflicts {
                let gap = c.offset - cursor
                if gap >= b.size, best.map({ gap < $0.gap }) ?? true { best = (cursor, gap) }
                cursor = max(cursor, c.offset + c.size)
            }
            spans[i].offset = best?.offset ?? cursor
            placed.append(i)
        }
        for i in buffers.indices { buffers[i].offset = spans[i].offset }
    }
}
