import VernierGraph

/// A copy where each output axis reads the input through an index table:
/// `out[i_0, ..., i_n] = in[maps[0][i_0], ..., maps[n][i_n]]`, or the fill value where
/// any table holds -1. Pad (every mode) and nearest-neighbour Resize are this.
struct IndexMapCopy {
    var outShape: [Int]
    var maps: [[Int]]
    var inStrides: [Int]

    /// One run of the last axis: `count` outputs from consecutive inputs starting at
    /// `source`, or filled when `source` is -1.
    private struct Segment {
        var start: Int
        var count: Int
        var source: Int
    }

    func run(elementSize size: Int, from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer,
             fill: ElementBytes) {
        let rank = outShape.count
        if rank == 0 {
            destination.copyMemory(from: source, byteCount: size)
            return
        }
        guard !outShape.contains(0) else { return }
        let width = outShape[rank - 1]
        let lastMap = maps[rank - 1], lastStride = inStrides[rank - 1]
        var segments: [Segment] = []
        for (j, m) in lastMap.enumerated() {
            if var last = segments.last,
               (m < 0 && last.source < 0) || (m >= 0 && last.source >= 0 && m == last.source + last.count) {
                last.count += 1
                segments[segments.count - 1] = last
            } else {
                segments.append(Segment(start: j, count: 1, source: m))
            }
        }
        // Mostly single elements (nearest upsampling): a gather loop beats per-segment calls.
        let gather = segments.count * 4 > width
        let rows = outShape.reduce(1, *) / width
        let rowBytes = width * size
        // Plain copies of the tables for the threads (see `plainCopy`).
        var starts: [Int] = [], flat: [Int] = []
        for m in maps {
            starts.append(flat.count)
            flat += m
        }
        let table = plainCopy(flat), tableStart = plainCopy(starts), shape = plainCopy(outShape), strides = plainCopy(inStrides)
        let runs = plainCopy(segments), runCount = segments.count
        defer { table.deallocate(); tableStart.deallocate(); shape.deallocate(); strides.deallocate(); runs.deallocate() }
        let last = UnsafePointer(table + starts[rank - 1])
        ThreadPool.parallelFor(rows, minimumPerThread: max(1, parallelCopyGrain / rowBytes)) { range in
            let index = UnsafeMutablePointer<Int>.allocate(capacity: rank)
            defer { index.deallocate() }
            var rest = range.lowerBound
            for k in stride(from: rank - 2, through: 0, by: -1) {
                index[k] = rest % shape[k]
                rest /= shape[k]
            }
            var previousSource = Int.min
            for row in range {
                // Source offset of this row, or -1 when an outer table fills it.
                var offset = 0
                for k in 0..<(rank - 1) {
                    let m = table[tableStart[k] + index[k]]
                    if m < 0 { offset = -1; break }
                    offset += m * strides[k]
                }
                let out = destination + row * rowBytes
                if offset == previousSource {
                    // Same source row as the row before: copy that output row.
                    out.copyMemory(from: out - rowBytes, byteCount: rowBytes)
                } else if offset < 0 {
                    fill.withPointer { fillElements(size: size, value: $0, to: out, count: width) }
                } else if gather {
                    fill.withPointer { value in
                        gatherRow(size: size, map: last, count: width, stride: lastStride, from: source + offset * size, to: out, fill: value)
                    }
                } else {
                    for r in 0..<runCount {
                        let s = runs[r]
                        if s.source < 0 {
                            fill.withPointer { fillElements(size: size, value: $0, to: out + s.start * size, count: s.count) }
                        } else {
                            copyElements(size: size, from: source + (offset + s.source * lastStride) * size, stride: lastStride,
                                         to: out + s.start * size, stride: 1, count: s.count)
                        }
                    }
                }
                previousSource = offset
                var k = rank - 2
                while k >= 0 {
                    index[k] += 1
                    if index[k] < shape[k] { break }
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }
}

@inline(__always)
private func gatherRowTyped<T>(_: T.Type, _ map: UnsafePointer<Int>, _ count: Int, _ stride: Int, _ source: UnsafeRawPointer,
                               _ destination: UnsafeMutableRawPointer, _ fill: UnsafeRawPointer) {
    let s = source.assumingMemoryBound(to: T.self)
    let d = destination.assumingMemoryBound(to: T.self)
    let value = fill.load(as: T.self)
    for j in 0..<count {
        let i = map[j]
        d[j] = i >= 0 ? s[i &* stride] : value
    }
}

/// `destination[j] = source[map[j] * stride]`, or the fill value where `map[j]` is -1.
private func gatherRow(size: Int, map: UnsafePointer<Int>, count: Int, stride: Int, from source: UnsafeRawPointer,
                       to destination: UnsafeMutableRawPointer, fill: UnsafeRawPointer) {
    switch size {
    case 1: gatherRowTyped(UInt8.self, map, count, stride, source, destination, fill)
    case 2: gatherRowTyped(UInt16.self, map, count, stride, source, destination, fill)
    case 4: gatherRowTyped(UInt32.self, map, count, stride, source, destination, fill)
    case 8: gatherRowTyped(UInt64.self, map, count, stride, source, destination, fill)
    default: gatherRowTyped(Word128.self, map, count, stride, source, destination, fill)
    }
}

extension DataMovementKernels {
    enum PadMode: String {
        case constant, reflect, edge, wrap
    }

    /// The input index each output index of one padded axis reads (-1: the pad value).
    static func padMap(length d: Int, before: Int, after: Int, mode: PadMode) throws -> [Int] {
        let outLength = d + before + after
        guard outLength >= 0 else { throw KernelError.invalid("pads \(before), \(after) make an axis of \(d) negative") }
        if mode != .constant && d == 0 && outLength > 0 {
            throw KernelError.invalid("\(mode.rawValue) padding of an empty axis")
        }
        return (0..<outLength).map { j in
            let i = j - before
            switch mode {
            case .constant: return i >= 0 && i < d ? i : -1
            case .edge: return min(max(i, 0), d - 1)
            case .wrap: return ((i % d) + d) % d
            case .reflect:
                guard d > 1 else { return 0 }
                let period = 2 * (d - 1)
                let r = ((i % period) + period) % period
                return r < d ? r : period - r
            }
        }
    }

    static func makePad(_ ctx: KernelContext) throws -> Kernel {
        let modeName = try ctx.node.string("mode", default: "constant")
        guard let mode = PadMode(rawValue: modeName) else { throw KernelError.unsupported("mode '\(modeName)'") }
        var attributePads: [Int]?
        var attributeValue = 0.0
        if ctx.opset < 11 {
            guard let pads = try ctx.node.ints(ctx.opset < 2 ? "paddings" : "pads") else {
                throw KernelError.invalid("attribute 'pads' is required before opset 11")
            }
            attributePads = pads
            attributeValue = Double(try ctx.node.float("value", default: 0))
        }
        let opset = ctx.opset
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let size = try copyableElementSize(x.elementType)
            let pads = try attributePads ?? indexValues(try requiredInput(inputs, 1), "pads")
            var fill = ElementBytes()
            if attributePads != nil {
                fill = try ElementBytes(attributeValue, as: x.elementType)
            } else if inputs.count > 2, let value = inputs[2], value.elementCount > 0 {
                guard value.elementType == x.elementType else {
                    throw KernelError.invalid("constant_value of type \(value.elementType) for \(x.elementType) data")
                }
                fill = ElementBytes(first: value)
            }
            var axes = Array(0..<x.rank)
            if opset >= 18, inputs.count > 3, let a = inputs[3] {
                axes = try indexValues(a, "axes").map { try normalizedAxis($0, rank: x.rank) }
                guard Set(axes).count == axes.count else { throw KernelError.invalid("axes \(axes) repeat an axis") }
            }
            guard pads.count == 2 * axes.count else {
                throw KernelError.invalid("pads has \(pads.count) values for \(axes.count) axes")
            }
            var maps = x.shape.map { Array(0..<$0) }
            for (i, axis) in axes.enumerated() {
                maps[axis] = try padMap(length: x.shape[axis], before: pads[i], after: pads[axes.count + i], mode: mode)
            }
            let y = try outputs.allocate(0, x.elementType, maps.map(\.count))
            IndexMapCopy(outShape: y.shape, maps: maps, inStrides: contiguousStrides(x.shape))
                .run(elementSize: size, from: x.rawPointer, to: y.rawPointer, fill: fill)
        }
    }
}
