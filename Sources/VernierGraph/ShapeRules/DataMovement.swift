/// Shape rules of data-movement ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
/// Concat, Split, Slice, Gather*, Scatter*, Expand, Tile, Pad, Resize, Upsample,
/// DepthToSpace/SpaceToDepth and the detection helpers. Small integer constants pass
/// through Reshape, Squeeze, Unsqueeze, Concat, Gather and Slice unchanged.
enum DataMovementRules {
    static var all: [String: ShapeRule] {
        [
            "Reshape": reshape,
            "Flatten": flatten,
            "Squeeze": squeeze,
            "Unsqueeze": unsqueeze,
            "Transpose": transpose,
            "Concat": concat,
            "Split": split,
            "Slice": slice,
            "Gather": gather,
            "GatherElements": { ctx in [.tensor(try ctx.elementType(0), try ctx.shape(1))] },
            "GatherND": gatherND,
            "ScatterND": sameAsInput,
            "ScatterElements": sameAsInput,
            "Scatter": sameAsInput,
            "Expand": expand,
            "Tile": tile,
            "Pad": pad,
            "Resize": resize,
            "Upsample": upsample,
            "DepthToSpace": { ctx in try blockRearrange(ctx, toSpace: true) },
            "SpaceToDepth": { ctx in try blockRearrange(ctx, toSpace: false) },
            "Compress": { ctx in
                let x = try ctx.shape(0)
                let selected = Dim.symbol("compress(\(ctx.node.displayName))")
                guard let axisAttr = try ctx.node.attribute("axis").map({ _ in try ctx.node.int("axis") }) else {
                    return [.tensor(try ctx.elementType(0), [selected])]
                }
                var out = x
                out[try ctx.axis(axisAttr, rank: x.count)] = selected
                return [.tensor(try ctx.elementType(0), out)]
            },
            "NonMaxSuppression": { ctx in [.tensor(.int64, [.symbol("selected(\(ctx.node.displayName))"), .value(3)])] },
            "RoiAlign": { ctx in
                let x = try ctx.shape(0), rois = try ctx.shape(1)
                guard x.count == 4, rois.count == 2 else { throw ShapeError("RoiAlign needs 4-D input and 2-D rois") }
                let h = try ctx.node.int("output_height", default: 1), w = try ctx.node.int("output_width", default: 1)
                return [.tensor(try ctx.elementType(0), [rois[0], x[1], .value(h), .value(w)])]
            },
            "GridSample": { ctx in
                let x = try ctx.shape(0), grid = try ctx.shape(1)
                guard x.count >= 3, grid.count == x.count else { throw ShapeError("grid rank must equal input rank") }
                return [.tensor(try ctx.elementType(0), [x[0], x[1]] + Array(grid[1..<(grid.count - 1)]))]
            },
        ]
    }

    static func reshape(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let target: [Dim]
        if ctx.opset >= 5 {
            target = try ctx.requireDims(1)
        } else {
            guard let s = try ctx.node.ints("shape") else { throw ShapeError("attribute 'shape' is required before opset 5") }
            target = s.map(Dim.value)
        }
        let allowZero = try ctx.node.int("allowzero", default: 0) != 0
        var out: [Dim] = []
        var inferred: Int?
        for (i, d) in target.enumerated() {
            if d == .value(0) && !allowZero {
                guard i < x.count else { throw ShapeError("shape \(target.shapeDescription) copies dim \(i) of \(x.shapeDescription), which has none") }
                out.append(x[i])
            } else if d == .value(-1) {
                guard inferred == nil else { throw ShapeError("shape \(target.shapeDescription) has more than one -1") }
                inferred = i
                out.append(d)
            } else {
                if let v = d.intValue, v < 0 { throw ShapeError("shape \(target.shapeDescription) has a negative dim \(v)") }
                out.append(d)
            }
        }
        let total = x.product
        if let i = inferred {
            var rest = out
            rest.remove(at: i)
            let known = rest.product
            if let q = total.exactlyDivided(by: known) {
                out[i] = q
            } else if let t = total.intValue, let k = known.intValue {
                throw ShapeError("cannot reshape \(x.shapeDescription) (\(t) elements) into \(target.shapeDescription): \(k) does not divide it")
            } else {
                out[i] = total.floorDivided(by: known)
            }
        } else if let t = total.intValue, let o = out.product.intValue, t != o {
            throw ShapeError("cannot reshape \(x.shapeDescription) (\(t) elements) into \(out.shapeDescription) (\(o) elements)")
        }
        return [.tensor(try ctx.elementType(0), out, constant: ctx.constant(0))]
    }

    static func flatten(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let axis = try ctx.axis(try ctx.node.int("axis", default: 1), rank: x.count, allowEnd: true)
        return [.tensor(try ctx.elementType(0), [Array(x[0..<axis]).product, Array(x[axis...]).product], constant: ctx.constant(0))]
    }

    static func squeeze(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let out: [Dim]
        if let axes = try ctx.axesAttributeOrInput(inputIndex: 1, sinceOpset: 13) {
            let normalized = Set(try axes.map { try ctx.axis($0, rank: x.count) })
            for a in normalized where x[a].intValue.map({ $0 != 1 }) ?? false {
                throw ShapeError("cannot squeeze axis \(a) of \(x.shapeDescription): its size is not 1")
            }
            out = x.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        } else {
            out = x.filter { $0 != .value(1) }
        }
        return [.tensor(try ctx.elementType(0), out, constant: ctx.constant(0))]
    }

    static func unsqueeze(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        guard let axes = try ctx.axesAttributeOrInput(inputIndex: 1, sinceOpset: 13) else {
            throw ShapeError("axes are required")
        }
        let rank = x.count + axes.count
        let normalized = Set(try axes.map { try ctx.axis($0, rank: rank) })
        guard normalized.count == axes.count else { throw ShapeError("axes \(axes) repeat an axis") }
        var out: [Dim] = []
        var next = x.makeIterator()
        for i in 0..<rank {
            if normalized.contains(i) { out.append(.value(1)) } else if let d = next.next() { out.append(d) }
        }
        return [.tensor(try ctx.elementType(0), out, constant: ctx.constant(0))]
    }

    static func transpose(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let perm = try ctx.node.ints("perm") ?? Array((0..<x.count).reversed())
        guard perm.count == x.count, Set(perm) == Set(0..<x.count) else {
            throw ShapeError("perm \(perm) is not a permutation of the \(x.count) axes")
        }
        let out = perm.map { x[$0] }
        return [.tensor(try ctx.elementType(0), out, constant: x.count <= 1 ? ctx.constant(0) : nil)]
    }

    static func concat(_ ctx: RuleContext) throws -> [ValueFacts] {
        let present = (0..<ctx.inputCount).filter(ctx.hasInput)
        guard let first = present.first else { throw ShapeError("needs at least one input") }
        let shapes = try present.map(ctx.shape)
        let rank = shapes[0].count
        let axis = try ctx.axis(try ctx.node.int("axis"), rank: rank)
        var out = shapes[0]
        out[axis] = .value(0)
        for s in shapes {
            guard s.count == rank else { throw ShapeError("inputs of ranks \(shapes.map(\.count)) cannot be concatenated") }
            for i in 0..<rank where i != axis {
                if let a = out[i].intValue, let b = s[i].intValue, a != b {
                    throw ShapeError("inputs \(shapes.map(\.shapeDescription)) differ off the concat axis \(axis)")
                }
                if !out[i].isConstant && s[i].isConstant { out[i] = s[i] }
            }
            out[axis] = out[axis] + s[axis]
        }
        var constant: ConstantValue?
        if axis == 0 || shapes.allSatisfy({ $0[0..<axis].allSatisfy { $0 == .value(1) } }) {
            let values = present.compactMap { ctx.constant($0) }
            if values.count == present.count {
                if values.allSatisfy({ if case .ints = $0 { return true } else { return false } }) {
                    constant = .ints(values.flatMap(\.dims))
                } else if let d = values.map(\.doubles).reduce([Double]?([]), { acc, v in acc.flatMap { a in v.map { a + $0 } } }) {
                    constant = .floats(d)
                }
            }
        }
        return [.tensor(try ctx.elementType(first), out, constant: constant)]
    }

    static func split(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let axis = try ctx.axis(try ctx.node.int("axis", default: 0), rank: x.count)
        let outputs = ctx.node.outputs.count
        var sizes: [Dim]
        if ctx.opset >= 13, ctx.hasInput(1) {
            sizes = try ctx.requireDims(1)
        } else if ctx.opset < 13, let s = try ctx.node.ints("split") {
            sizes = s.map(Dim.value)
        } else {
            let parts = try ctx.node.int("num_outputs", default: outputs)
            guard parts > 0 else { throw ShapeError("num_outputs must be positive") }
            if let d = x[axis].intValue {
                // Opset 18: the last chunk may be smaller.
                let chunk = (d + parts - 1) / parts
                sizes = (0..<parts).map { .value(max(0, min(chunk, d - $0 * chunk))) }
            } else {
                sizes = Array(repeating: x[axis].ceilDivided(by: .value(parts)), count: parts)
            }
        }
        guard sizes.count == outputs else {
            throw ShapeError("\(sizes.count) split sizes for \(outputs) outputs")
        }
        if let d = x[axis].intValue, let total = sizes.product == .zero ? nil : sizes.reduce(Dim.zero, +).intValue, total != d {
            throw ShapeError("split sizes \(sizes.shapeDescription) do not add up to \(d), the size of axis \(axis)")
        }
        let element = try ctx.elementType(0)
        // A 1-D shape vector split into pieces keeps its contents.
        var pieces: [ConstantValue?] = Array(repeating: nil, count: sizes.count)
        if x.count == 1, case .ints(let values)? = ctx.constant(0), let lengths = sizes.map(\.intValue) as? [Int],
           lengths.reduce(0, +) == values.count {
            var start = 0
            for (i, n) in lengths.enumerated() {
                pieces[i] = .ints(Array(values[start..<(start + n)]))
                start += n
            }
        }
        return zip(sizes, pieces).map { s, piece in
            var out = x
            out[axis] = s
            return .tensor(element, out, constant: piece)
        }
    }

    /// One axis of a Slice, following the ONNX clamping rules for known sizes.
    static func sliceLength(dim: Dim, start: Dim, end: Dim, step: Int) -> Dim {
        let big = Int(Int32.max)
        if let d = dim.intValue, let s0 = start.intValue, let e0 = end.intValue {
            var s = s0 < 0 ? s0 + d : s0
            var e = e0 < 0 ? e0 + d : e0
            if step > 0 {
                s = min(max(s, 0), d)
                e = min(max(e, 0), d)
                return .value(max(0, (e - s + step - 1) / step))
            }
            s = min(max(s, -1), d - 1)
            e = min(max(e, -1), d - 1)
            return .value(max(0, (s - e + (-step) - 1) / (-step)))
        }
        guard step == 1 else {
            return .symbol("slice(\(dim), \(start), \(end), \(step))")
        }
        // Symbolic: values taken from shapes are assumed to lie within the axis.
        let s = start.intValue.map { $0 < 0 ? dim + .value($0) : .value($0) } ?? start
        let e: Dim
        if let ev = end.intValue {
            e = ev >= big ? dim : (ev < 0 ? dim + .value(ev) : .value(ev))
        } else {
            e = end
        }
        if let d = dim.intValue, let ev = e.intValue, ev > d { return (Dim.value(d) - s) }
        return e - s
    }

    static func slice(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        var starts: [Dim], ends: [Dim], axes: [Int]?, steps: [Int]?
        if ctx.opset >= 10 {
            axes = ctx.hasInput(3) ? try ctx.requireInts(3) : nil
            guard let s = ctx.constant(1)?.dims, let e = ctx.constant(2)?.dims else {
                // Bounds known only at run time: the sliced axes get fresh symbols.
                guard let n = try ctx.shape(1).first?.intValue else { throw Incomplete(input: 1, needsValue: true) }
                var out = x
                for a in try (axes ?? Array(0..<n)).map({ try ctx.axis($0, rank: x.count) }) {
                    out[a] = .symbol("slice(\(ctx.node.displayName))[\(a)]")
                }
                return [.tensor(try ctx.elementType(0), out)]
            }
            starts = s
            ends = e
            steps = ctx.hasInput(4) ? try ctx.requireInts(4) : nil
        } else {
            starts = (try ctx.node.ints("starts") ?? []).map(Dim.value)
            ends = (try ctx.node.ints("ends") ?? []).map(Dim.value)
            axes = try ctx.node.ints("axes")
            steps = nil
        }
        let axisList = try (axes ?? Array(0..<starts.count)).map { try ctx.axis($0, rank: x.count) }
        let stepList = steps ?? Array(repeating: 1, count: starts.count)
        guard starts.count == ends.count, axisList.count == starts.count, stepList.count == starts.count else {
            throw ShapeError("starts, ends, axes and steps have different lengths")
        }
        guard !stepList.contains(0) else { throw ShapeError("a slice step is 0") }
        var out = x
        for (i, axis) in axisList.enumerated() {
            out[axis] = sliceLength(dim: x[axis], start: starts[i], end: ends[i], step: stepList[i])
        }
        var constant: ConstantValue?
        if x.count == 1, let d = x[0].intValue, axisList == [0], let s0 = starts[0].intValue, let e0 = ends[0].intValue,
           let n = out[0].intValue, case .ints(let v)? = ctx.constant(0), v.count == d {
            let step = stepList[0]
            var s = s0 < 0 ? s0 + d : s0
            s = step > 0 ? min(max(s, 0), d) : min(max(s, -1), d - 1)
            _ = e0
            constant = .ints((0..<n).map { v[s + $0 * step] })
        }
        return [.tensor(try ctx.elementType(0), out, constant: constant)]
    }

    static func gather(_ ctx: RuleContext) throws -> [ValueFacts] {
        let data = try ctx.shape(0), indices = try ctx.shape(1)
        guard !data.isEmpty else { throw ShapeError("cannot gather from a scalar") }
        let axis = try ctx.axis(try ctx.node.int("axis", default: 0), rank: data.count)
        let out = Array(data[0..<axis]) + indices + Array(data[(axis + 1)...])
        var constant: ConstantValue?
        if data.count == 1, let d = data[0].intValue, case .ints(let values)? = ctx.constant(0), values.count == d,
           let idx = ctx.constant(1)?.knownInts {
            var picked: [Dim] = []
            for i in idx {
                let j = i < 0 ? i + d : i
                guard j >= 0, j < d else { throw ShapeError("index \(i) is out of range for \(d) elements") }
                picked.append(values[j])
            }
            constant = .ints(picked)
        }
        return [.tensor(try ctx.elementType(0), out, constant: constant)]
    }

    static func gatherND(_ ctx: RuleContext) throws -> [ValueFacts] {
        let data = try ctx.shape(0), indices = try ctx.shape(1)
        let batch = try ctx.node.int("batch_dims", default: 0)
        guard let last = indices.last?.intValue else { throw Incomplete(input: 1) }
        guard batch >= 0, batch + last <= data.count, !indices.isEmpty else {
            throw ShapeError("indices \(indices.shapeDescription) with batch_dims \(batch) do not fit data \(data.shapeDescription)")
        }
        let out = Array(indices.dropLast()) + Array(data[(batch + last)...])
        return [.tensor(try ctx.elementType(0), out)]
    }

    static func expand(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let target = try ctx.requireDims(1)
        return [.tensor(try ctx.elementType(0), try broadcast([x, target]))]
    }

    static func tile(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let repeats = try ctx.requireDims(1)
        guard repeats.count == x.count else { throw ShapeError("repeats has \(repeats.count) values for rank \(x.count)") }
        return [.tensor(try ctx.elementType(0), zip(x, repeats).map { $0 * $1 })]
    }

    static func pad(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let pads: [Dim]
        if ctx.opset >= 11 {
            pads = try ctx.requireDims(1)
        } else {
            pads = (try ctx.node.ints("pads") ?? []).map(Dim.value)
        }
        let axes = ctx.opset >= 18 && ctx.hasInput(3) ? try ctx.requireInts(3).map { try ctx.axis($0, rank: x.count) } : Array(0..<x.count)
        guard pads.count == 2 * axes.count else { throw ShapeError("pads has \(pads.count) values for \(axes.count) axes") }
        var out = x
        for (i, a) in axes.enumerated() {
            out[a] = x[a] + pads[i] + pads[axes.count + i]
            if let v = out[a].intValue, v < 0 { throw ShapeError("padding makes axis \(a) negative (\(v))") }
        }
        return [.tensor(try ctx.elementType(0), out)]
    }

    /// floor(dim * scale), exact when the scale is a whole number.
    static func scaled(_ d: Dim, by scale: Double) throws -> Dim {
        guard scale.isFinite, scale > 0 else { throw ShapeError("scale \(scale) is not a positive number") }
        if let v = d.intValue {
            guard let size = Int(ifRepresentable: (Double(v) * scale).rounded(.down)) else {
                throw ShapeError("scale \(scale) makes a dimension of \(v) too large")
            }
            return .value(size)
        }
        if scale == scale.rounded(), scale >= 1, let factor = Int(ifRepresentable: scale) { return d * .value(factor) }
        if scale < 1, (1 / scale) == (1 / scale).rounded(), let divisor = Int(ifRepresentable: 1 / scale) {
            return d.floorDivided(by: .value(divisor))
        }
        return .symbol("floor(\(d)*\(scale))")
    }

    static func resize(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let element = try ctx.elementType(0)
        if ctx.opset < 11 {
            guard let scales = try ctx.requireDims(1).isEmpty ? nil : ctx.constant(1)?.doubles, scales.count == x.count else {
                throw ShapeError("scales must give one value per axis")
            }
            return [.tensor(element, try zip(x, scales).map { try scaled($0, by: $1) })]
        }
        let axes = try (ctx.node.ints("axes") ?? Array(0..<x.count)).map { try ctx.axis($0, rank: x.count) }
        var out = x
        if ctx.hasInput(3), let sizes = ctx.constant(3), sizes.count > 0 {
            let s = sizes.dims
            guard s.count == axes.count else { throw ShapeError("sizes has \(s.count) values for \(axes.count) axes") }
            let policy = try ctx.node.string("keep_aspect_ratio_policy", default: "stretch")
            if policy == "stretch" {
                for (i, a) in axes.enumerated() { out[a] = s[i] }
            } else {
                let ratios = try zip(axes, s).map { a, size -> Double in
                    guard let v = size.intValue, let d = x[a].intValue, d > 0 else { throw Incomplete(input: 0) }
                    return Double(v) / Double(d)
                }
                let scale = policy == "not_larger" ? ratios.min() ?? 1 : ratios.max() ?? 1
                for a in axes {
                    guard let d = x[a].intValue else { continue }
                    guard let size = Int(ifRepresentable: (Double(d) * scale).rounded()) else {
                        throw ShapeError("sizes make axis \(a) too large")
                    }
                    out[a] = .value(size)
                }
            }
            return [.tensor(element, out)]
        }
        if ctx.hasInput(3), ctx.constant(3) == nil { throw Incomplete(input: 3, needsValue: true) }
        guard ctx.hasInput(2) else { throw ShapeError("neither scales nor sizes is given") }
        guard let scales = ctx.constant(2)?.doubles else { throw Incomplete(input: 2, needsValue: true) }
        guard scales.count == axes.count else { throw ShapeError("scales has \(scales.count) values for \(axes.count) axes") }
        for (i, a) in axes.enumerated() { out[a] = try scaled(x[a], by: scales[i]) }
        return [.tensor(element, out)]
    }

    static func upsample(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        let scales: [Double]
        if ctx.opset >= 9 {
            guard let s = ctx.constant(1)?.doubles else { throw Incomplete(input: 1, needsValue: true) }
            scales = s
        } else {
            scales = (try ctx.node.floats("scales") ?? []).map(Double.init)
        }
        guard scales.count == x.count else { throw ShapeError("scales has \(scales.count) values for rank \(x.count)") }
        return [.tensor(try ctx.elementType(0), try zip(x, scales).map { try scaled($0, by: $1) })]
    }

    static func blockRearrange(_ ctx: RuleContext, toSpace: Bool) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        guard x.count == 4 else { throw ShapeError("input must be 4-D, got \(x.shapeDescription)") }
        let b = try ctx.node.int("blocksize")
        guard b > 0 else { throw ShapeError("blocksize must be positive") }
        let bb = Dim.value(Int.multiplying(b, b))
        let out: [Dim] = toSpace
            ? [x[0], x[1].floorDivided(by: bb), x[2] * .value(b), x[3] * .value(b)]
            : [x[0], x[1] * bb, x[2].floorDivided(by: .value(b)), x[3].floorDivided(by: .value(b))]
        return [.tensor(try ctx.elementType(0), out)]
    }
}
