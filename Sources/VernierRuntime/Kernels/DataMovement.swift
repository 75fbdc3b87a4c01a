import VernierGraph

/// Kernels of the DataMovement family (same file name as the shape rules and cost formulas).
/// They move bytes and never look at values (except Resize's interpolation and the
/// scatter reductions), so one kernel serves every fixed-size element type. Reshape,
/// Flatten, Squeeze and Unsqueeze return views of their input (the memory planner treats
/// them as aliases). The copying machinery is in `Kernels/DataMovement/`.
enum DataMovementKernels {
    static let all: [String: KernelFactory] = [
        "Reshape": makeReshape,
        "Flatten": makeFlatten,
        "Squeeze": makeSqueeze,
        "Unsqueeze": makeUnsqueeze,
        "Transpose": makeTranspose,
        "Concat": makeConcat,
        "Split": makeSplit,
        "Slice": makeSlice,
        "Expand": makeExpand,
        "Tile": makeTile,
        "DepthToSpace": { ctx in try makeBlockRearrange(ctx, toSpace: true) },
        "SpaceToDepth": { ctx in try makeBlockRearrange(ctx, toSpace: false) },
        "Compress": makeCompress,
        "Gather": makeGather,
        "GatherElements": makeGatherElements,
        "GatherND": makeGatherND,
        "ScatterND": makeScatterND,
        "ScatterElements": makeScatterElements,
        "Scatter": makeScatterElements,
        "Pad": makePad,
        "Resize": makeResize,
        "Upsample": makeUpsample,
    ]

    // MARK: Views

    /// Reshape's target with 0 (copy the input dim, unless `allowZero`) and -1 (inferred)
    /// resolved.
    static func reshapeTarget(_ input: [Int], _ target: [Int], allowZero: Bool) throws -> [Int] {
        var out = target
        var inferred: Int?
        for (i, d) in target.enumerated() {
            if d == 0 && !allowZero {
                guard i < input.count else { throw KernelError.invalid("shape \(target) copies dim \(i) of \(input), which has none") }
                out[i] = input[i]
            } else if d == -1 {
                guard inferred == nil else { throw KernelError.invalid("shape \(target) has more than one -1") }
                inferred = i
            } else if d < 0 {
                throw KernelError.invalid("shape \(target) has a negative dim \(d)")
            }
        }
        let total = try checkedElementCount(input)
        if let i = inferred {
            out[i] = 1
            let known = try checkedElementCount(out)
            guard known > 0, total % known == 0 else {
                throw KernelError.invalid("cannot reshape \(input) into \(target): \(known) does not divide \(total) elements")
            }
            out[i] = total / known
        }
        guard try checkedElementCount(out) == total else {
            throw KernelError.invalid("cannot reshape \(input) (\(total) elements) into \(out)")
        }
        return out
    }

    static func makeReshape(_ ctx: KernelContext) throws -> Kernel {
        let allowZero = try ctx.node.int("allowzero", default: 0) != 0
        var attributeShape: [Int]?
        if ctx.opset < 5 {
            guard let shape = try ctx.node.ints("shape") else {
                throw KernelError.invalid("attribute 'shape' is required before opset 5")
            }
            attributeShape = shape
        }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let target = try attributeShape ?? integerValues(try requiredInput(inputs, 1), "shape")
            outputs.set(0, x.reshaped(try reshapeTarget(x.shape, target, allowZero: allowZero)))
        }
    }

    static func makeFlatten(_ ctx: KernelContext) throws -> Kernel {
        let axis = try ctx.node.int("axis", default: 1)
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let a = try normalizedAxis(axis, rank: x.rank, allowEnd: true)
            outputs.set(0, x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)]))
        }
    }

    /// Axes given as an attribute before `sinceOpset` and as input `index` from it on.
    static func axesAttributeOrInput(_ ctx: KernelContext, sinceOpset: Int) throws -> (attribute: [Int]?, fromInput: Bool) {
        ctx.opset >= sinceOpset ? (nil, true) : (try ctx.node.ints("axes"), false)
    }

    static func makeSqueeze(_ ctx: KernelContext) throws -> Kernel {
        let (attributeAxes, fromInput) = try axesAttributeOrInput(ctx, sinceOpset: 13)
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            var axes = attributeAxes
            if fromInput, inputs.count > 1, let a = inputs[1] { axes = try integerValues(a, "axes") }
            let out: [Int]
            if let axes {
                let normalized = Set(try axes.map { try normalizedAxis($0, rank: x.rank) })
                for a in normalized where x.shape[a] != 1 {
                    throw KernelError.invalid("cannot squeeze axis \(a) of \(x.shape): its size is not 1")
                }
                out = x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
            } else {
                out = x.shape.filter { $0 != 1 }
            }
            outputs.set(0, x.reshaped(out))
        }
    }

    static func makeUnsqueeze(_ ctx: KernelContext) throws -> Kernel {
        let (attributeAxes, fromInput) = try axesAttributeOrInput(ctx, sinceOpset: 13)
        if !fromInput && attributeAxes == nil { throw KernelError.invalid("attribute 'axes' is required before opset 13") }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let axes = try attributeAxes ?? integerValues(try requiredInput(inputs, 1), "axes")
            let rank = x.rank + axes.count
            let normalized = Set(try axes.map { try normalizedAxis($0, rank: rank) })
            guard normalized.count == axes.count else { throw KernelError.invalid("axes \(axes) repeat an axis") }
            var out: [Int] = []
            var next = x.shape.makeIterator()
            for i in 0..<rank {
                if normalized.contains(i) { out.append(1) } else if let d = next.next() { out.append(d) }
            }
            outputs.set(0, x.reshaped(out))
        }
    }

    // MARK: Strided copies

    static func makeTranspose(_ ctx: KernelContext) throws -> Kernel {
        let permAttribute = try ctx.node.ints("perm")
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let perm = permAttribute ?? Array((0..<x.rank).reversed())
            guard perm.count == x.rank, Set(perm) == Set(0..<x.rank) else {
                throw KernelError.invalid("perm \(perm) is not a permutation of the \(x.rank) axes of \(x.shape)")
            }
            let size = try copyableElementSize(x.elementType)
            let y = try outputs.allocate(0, x.elementType, perm.map { x.shape[$0] })
            let strides = contiguousStrides(x.shape)
            StridedCopy(dims: y.shape, inStrides: perm.map { strides[$0] })
                .run(elementSize: size, from: x.rawPointer, to: y.rawPointer)
        }
    }

    /// Clamped start and length of one sliced axis (ONNX Slice rules, as NumPy slices).
    static func sliceRange(dim d: Int, start: Int, end: Int, step: Int) -> (start: Int, count: Int) {
        var s = start < 0 ? start &+ d : start
        var e = end < 0 ? end &+ d : end
        if step > 0 {
            s = min(max(s, 0), d)
            e = min(max(e, 0), d)
            return (s, e > s ? (e - s - 1) / step + 1 : 0)
        }
        // A start before the first element selects nothing (NumPy, and the shape rule).
        s = min(max(s, -1), d - 1)
        e = min(max(e, -1), d - 1)
        return (s, s > e ? (s - e - 1) / Int(clamping: step.magnitude) + 1 : 0)
    }

    static func makeSlice(_ ctx: KernelContext) throws -> Kernel {
        var attributes: (starts: [Int], ends: [Int], axes: [Int]?)?
        if ctx.opset < 10 {
            guard let starts = try ctx.node.ints("starts"), let ends = try ctx.node.ints("ends") else {
                throw KernelError.invalid("attributes 'starts' and 'ends' are required before opset 10")
            }
            attributes = (starts, ends, try ctx.node.ints("axes"))
        }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let starts: [Int], ends: [Int], axesGiven: [Int]?, stepsGiven: [Int]?
            if let attributes {
                (starts, ends, axesGiven, stepsGiven) = (attributes.starts, attributes.ends, attributes.axes, nil)
            } else {
                starts = try indexValues(try requiredInput(inputs, 1), "starts")
                ends = try indexValues(try requiredInput(inputs, 2), "ends")
                axesGiven = try (inputs.count > 3 ? inputs[3] : nil).map { try indexValues($0, "axes") }
                stepsGiven = try (inputs.count > 4 ? inputs[4] : nil).map { try indexValues($0, "steps") }
            }
            let axes = try (axesGiven ?? Array(0..<starts.count)).map { try normalizedAxis($0, rank: x.rank) }
            let steps = stepsGiven ?? Array(repeating: 1, count: starts.count)
            guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
                throw KernelError.invalid("starts, ends, axes and steps have lengths \(starts.count), \(ends.count), \(axes.count), \(steps.count)")
            }
            guard Set(axes).count == axes.count else { throw KernelError.invalid("axes \(axes) repeat an axis") }
            guard !steps.contains(0) else { throw KernelError.invalid("a slice step is 0") }
            let size = try copyableElementSize(x.elementType)
            let strides = contiguousStrides(x.shape)
            var outShape = x.shape, inStrides = strides, offset = 0
            for (i, axis) in axes.enumerated() {
                let (start, count) = sliceRange(dim: x.shape[axis], start: starts[i], end: ends[i], step: steps[i])
                outShape[axis] = count
                inStrides[axis] = count > 1 ? strides[axis] * steps[i] : strides[axis]
                if count > 0 { offset += start * strides[axis] }
            }
            let y = try outputs.allocate(0, x.elementType, outShape)
            StridedCopy(dims: outShape, inStrides: inStrides).run(elementSize: size, from: x.rawPointer + offset * size, to: y.rawPointer)
        }
    }

    static func makeExpand(_ ctx: KernelContext) throws -> Kernel {
        FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let target = try integerValues(try requiredInput(inputs, 1), "shape")
            let rank = max(x.rank, target.count)
            let xs = Array(repeating: 1, count: rank - x.rank) + x.shape
            let ts = Array(repeating: 1, count: rank - target.count) + target
            var out: [Int] = []
            for (p, q) in zip(xs, ts) {
                if p == q || q == 1 { out.append(p) } else if p == 1 { out.append(q) } else {
                    throw KernelError.invalid("shape \(x.shape) cannot be expanded to \(target)")
                }
            }
            let size = try copyableElementSize(x.elementType)
            let strides = Array(repeating: 0, count: rank - x.rank) + contiguousStrides(x.shape)
            let inStrides = (0..<rank).map { xs[$0] == 1 ? 0 : strides[$0] }
            let y = try outputs.allocate(0, x.elementType, out)
            StridedCopy(dims: out, inStrides: inStrides).run(elementSize: size, from: x.rawPointer, to: y.rawPointer)
        }
    }

    static func makeTile(_ ctx: KernelContext) throws -> Kernel {
        FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let repeats = try indexValues(try requiredInput(inputs, 1), "repeats")
            guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
                throw KernelError.invalid("repeats \(repeats) must hold \(x.rank) non-negative values")
            }
            let size = try copyableElementSize(x.elementType)
            let strides = contiguousStrides(x.shape)
            // Output index (r_k, i_k) per axis reads input index i_k: the repeat axis has stride 0.
            var dims: [Int] = [], inStrides: [Int] = []
            for k in 0..<x.rank {
                dims += [repeats[k], x.shape[k]]
                inStrides += [0, strides[k]]
            }
            let y = try outputs.allocate(0, x.elementType, zip(x.shape, repeats).map { $0 * $1 })
            StridedCopy(dims: dims, inStrides: inStrides).run(elementSize: size, from: x.rawPointer, to: y.rawPointer)
        }
    }

    /// DepthToSpace (DCR or CRD) and SpaceToDepth: a 6-D transpose of a view of the input.
    static func makeBlockRearrange(_ ctx: KernelContext, toSpace: Bool) throws -> Kernel {
        let b = try ctx.node.int("blocksize")
        guard b > 0 else { throw KernelError.invalid("blocksize must be positive, got \(b)") }
        let mode = try ctx.node.string("mode", default: "DCR")
        guard !toSpace || mode == "DCR" || mode == "CRD" else { throw KernelError.unsupported("mode '\(mode)'") }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            guard x.rank == 4 else { throw KernelError.invalid("input must be 4-D, got \(x.shape)") }
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let size = try copyableElementSize(x.elementType)
            let dims: [Int], inStrides: [Int], outShape: [Int]
            if toSpace {
                guard c % (b * b) == 0 else { throw KernelError.invalid("channels \(c) are not a multiple of blocksize² \(b * b)") }
                let cc = c / (b * b)
                if mode == "DCR" {
                    let v = contiguousStrides([n, b, b, cc, h, w])
                    inStrides = [v[0], v[3], v[4], v[1], v[5], v[2]]
                } else {
                    let v = contiguousStrides([n, cc, b, b, h, w])
                    inStrides = [v[0], v[1], v[4], v[2], v[5], v[3]]
                }
                dims = [n, cc, h, b, w, b]
                outShape = [n, cc, h * b, w * b]
            } else {
                guard h % b == 0, w % b == 0 else { throw KernelError.invalid("spatial size \(h)x\(w) is not a multiple of blocksize \(b)") }
                let v = contiguousStrides([n, c, h / b, b, w / b, b])
                inStrides = [v[0], v[3], v[5], v[1], v[2], v[4]]
                dims = [n, b, b, c, h / b, w / b]
                outShape = [n, c * b * b, h / b, w / b]
            }
            let y = try outputs.allocate(0, x.elementType, outShape)
            StridedCopy(dims: dims, inStrides: inStrides).run(elementSize: size, from: x.rawPointer, to: y.rawPointer)
        }
    }

    // MARK: Concat, Split, Compress

    static func makeConcat(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = try ctx.node.int("axis")
        let declared = ctx.node.inputs.count
        return FunctionKernel { inputs, outputs in
            let parts = inputs.prefix(declared).compactMap { $0 }
            guard let first = parts.first else { throw KernelError.invalid("Concat needs at least one input") }
            let rank = first.rank
            guard rank > 0 else { throw KernelError.invalid("cannot concatenate scalars") }
            let axis = try normalizedAxis(axisAttribute, rank: rank)
            var outShape = first.shape
            outShape[axis] = 0
            for p in parts {
                guard p.elementType == first.elementType else {
                    throw KernelError.invalid("inputs of types \(first.elementType) and \(p.elementType) cannot be concatenated")
                }
                guard p.rank == rank, (0..<rank).allSatisfy({ $0 == axis || p.shape[$0] == first.shape[$0] }) else {
                    throw KernelError.invalid("inputs \(parts.map(\.shape)) differ off the concat axis \(axis)")
                }
                outShape[axis] += p.shape[axis]
            }
            let size = try copyableElementSize(first.elementType)
            let y = try outputs.allocate(0, first.elementType, outShape)
            let outer = outShape[..<axis].reduce(1, *), inner = outShape[(axis + 1)...].reduce(1, *)
            let rowBytes = outShape[axis] * inner * size
            if outer < 4 * ThreadPool.threadCount {
                // A few large blocks (e.g. channels of a batch-1 image): one parallel region.
                var jobs: [CopyJob] = []
                var offset = 0
                for p in parts {
                    let block = p.shape[axis] * inner * size
                    for o in 0..<outer {
                        let source = p.rawPointer + o * block, destination = y.rawPointer + o * rowBytes + offset
                        // An input its producer wrote in place in the output (`MemoryPlanner`).
                        if source == UnsafeRawPointer(destination) { continue }
                        jobs.append(CopyJob(source: source, destination: destination, bytes: block))
                    }
                    offset += block
                }
                copyBlocks(jobs)
                return
            }
            var offset = 0
            var rows: [RowPart] = []
            for p in parts {
                let block = p.shape[axis] * inner * size
                rows.append(RowPart(from: p.rawPointer, sourceStride: block, to: y.rawPointer + offset, destinationStride: rowBytes,
                                    bytes: block))
                offset += block
            }
            copyRows(rows, rows: outer)
        }
    }

    static func makeSplit(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = try ctx.node.int("axis", default: 0)
        let splitAttribute = ctx.opset < 13 ? try ctx.node.ints("split") : nil
        let parts = ctx.opset >= 18 ? try ctx.node.int("num_outputs", default: ctx.node.outputs.count) : ctx.node.outputs.count
        guard parts > 0 else { throw KernelError.invalid("num_outputs must be positive") }
        guard parts == ctx.node.outputs.count else {
            throw KernelError.invalid("num_outputs \(parts) differs from the \(ctx.node.outputs.count) outputs")
        }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            guard x.rank > 0 else { throw KernelError.invalid("cannot split a scalar") }
            let axis = try normalizedAxis(axisAttribute, rank: x.rank)
            let d = x.shape[axis]
            var sizes: [Int]
            if let splitAttribute {
                sizes = splitAttribute
            } else if ctx.opset >= 13, inputs.count > 1, let s = inputs[1] {
                sizes = try indexValues(s, "split")
            } else {
                // Equal parts; from opset 18 the last one may be smaller.
                let chunk = (d + parts - 1) / parts
                sizes = (0..<parts).map { max(0, min(chunk, d - $0 * chunk)) }
            }
            guard sizes.count == outputs.count, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == d else {
                throw KernelError.invalid("split sizes \(sizes) do not cut axis \(axis) of \(x.shape) into \(outputs.count) parts")
            }
            let size = try copyableElementSize(x.elementType)
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)...].reduce(1, *)
            let rowBytes = d * inner * size
            var offset = 0
            var rows: [RowPart] = []
            for (i, s) in sizes.enumerated() {
                let block = s * inner * size
                defer { offset += block }
                guard outputs.isRequested(i) else { continue }
                var shape = x.shape
                shape[axis] = s
                let y = try outputs.allocate(i, x.elementType, shape)
                rows.append(RowPart(from: x.rawPointer + offset, sourceStride: rowBytes, to: y.rawPointer, destinationStride: block,
                                    bytes: block))
            }
            copyRows(rows, rows: outer)
        }
    }

    static func makeCompress(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = ctx.node.hasAttribute("axis") ? try ctx.node.int("axis") : nil
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let condition = try requiredInput(inputs, 1)
            guard condition.rank == 1, let flags = condition.integers() else {
                throw KernelError.invalid("condition must be a 1-D bool tensor, got \(condition.elementType) \(condition.shape)")
            }
            let size = try copyableElementSize(x.elementType)
            let axis = try axisAttribute.map { try normalizedAxis($0, rank: x.rank) }
            let length = axis.map { x.shape[$0] } ?? x.elementCount
            if flags.count > length, flags[length...].contains(where: { $0 != 0 }) {
                throw KernelError.invalid("condition selects index \(flags.count - 1), past the \(length) slices")
            }
            let selected = flags.prefix(length).indices.filter { flags[$0] != 0 }
            var outShape = [selected.count]
            var outer = 1, inner = 1
            if let axis {
                outShape = x.shape
                outShape[axis] = selected.count
                outer = x.shape[..<axis].reduce(1, *)
                inner = x.shape[(axis + 1)...].reduce(1, *)
            }
            let y = try outputs.allocate(0, x.elementType, outShape)
            let block = inner * size
            var destination = y.rawPointer
            for o in 0..<outer {
                let row = x.rawPointer + o * length * block
                for i in selected {
                    destination.copyMemory(from: row + i * block, byteCount: block)
                    destination += block
                }
            }
        }
    }
}
