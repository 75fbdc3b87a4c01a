import VernierGraph

/// How a scatter combines an update with the element already there.
enum ScatterReduction: String {
    case none, add, mul, max, min
}

@inline(__always)
private func reduceFloats<T: BinaryFloatingPoint>(_: T.Type, _ reduction: ScatterReduction, _ destination: UnsafeMutableRawPointer,
                                                  _ source: UnsafeRawPointer, _ count: Int) {
    let d = destination.assumingMemoryBound(to: T.self), s = source.assumingMemoryBound(to: T.self)
    for i in 0..<count {
        switch reduction {
        case .none: d[i] = s[i]
        case .add: d[i] += s[i]
        case .mul: d[i] *= s[i]
        case .max: d[i] = Swift.max(d[i], s[i])
        case .min: d[i] = Swift.min(d[i], s[i])
        }
    }
}

@inline(__always)
private func reduceIntegers<T: FixedWidthInteger>(_: T.Type, _ reduction: ScatterReduction, _ destination: UnsafeMutableRawPointer,
                                                  _ source: UnsafeRawPointer, _ count: Int) {
    let d = destination.assumingMemoryBound(to: T.self), s = source.assumingMemoryBound(to: T.self)
    for i in 0..<count {
        switch reduction {
        case .none: d[i] = s[i]
        case .add: d[i] = d[i] &+ s[i]
        case .mul: d[i] = d[i] &* s[i]
        case .max: d[i] = Swift.max(d[i], s[i])
        case .min: d[i] = Swift.min(d[i], s[i])
        }
    }
}

@inline(__always)
private func reduceBools(_ reduction: ScatterReduction, _ destination: UnsafeMutableRawPointer,
                         _ source: UnsafeRawPointer, _ count: Int) {
    let d = destination.assumingMemoryBound(to: UInt8.self), s = source.assumingMemoryBound(to: UInt8.self)
    for i in 0..<count {
        switch reduction {
        case .none: d[i] = s[i]
        case .add, .max: d[i] = (d[i] | s[i]) != 0 ? 1 : 0
        case .mul, .min: d[i] = (d[i] & s[i]) != 0 ? 1 : 0
        }
    }
}

/// Combines `count` elements of `source` into `destination` (the scatter reductions).
func scatterReduce(_ type: ElementType, _ reduction: ScatterReduction, into destination: UnsafeMutableRawPointer,
                   from source: UnsafeRawPointer, count: Int) throws {
    if reduction == .none {
        destination.copyMemory(from: source, byteCount: count * (try copyableElementSize(type)))
        return
    }
    switch type {
    case .float: reduceFloats(Float.self, reduction, destination, source, count)
    case .double: reduceFloats(Double.self, reduction, destination, source, count)
    case .float16: reduceFloats(Float16.self, reduction, destination, source, count)
    case .int8: reduceIntegers(Int8.self, reduction, destination, source, count)
    case .int16: reduceIntegers(Int16.self, reduction, destination, source, count)
    case .int32: reduceIntegers(Int32.self, reduction, destination, source, count)
    case .int64: reduceIntegers(Int64.self, reduction, destination, source, count)
    case .uint8: reduceIntegers(UInt8.self, reduction, destination, source, count)
    case .uint16: reduceIntegers(UInt16.self, reduction, destination, source, count)
    case .uint32: reduceIntegers(UInt32.self, reduction, destination, source, count)
    case .uint64: reduceIntegers(UInt64.self, reduction, destination, source, count)
    case .bool: reduceBools(reduction, destination, source, count)
    default: throw KernelError.unsupported("reduction '\(reduction.rawValue)' on \(type)")
    }
}

/// Indices checked against an axis of `length` and made non-negative.
func normalizedIndices(_ indices: Tensor, length: Int, what: String = "index") throws -> [Int] {
    var values = try indexValues(indices, "indices")
    for i in values.indices {
        let v = values[i]
        guard v >= -length, v < length else {
            throw KernelError.invalid("\(what) \(v) is out of range for an axis of \(length)")
        }
        if v < 0 { values[i] = v + length }
    }
    return values
}

@inline(__always)
private func gatherElementsTyped<T>(_: T.Type, _ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer,
                                    _ offsets: [Int]) {
    let s = source.assumingMemoryBound(to: T.self), d = destination.assumingMemoryBound(to: T.self)
    offsets.withUnsafeBufferPointer { o in
        for i in o.indices { d[i] = s[o[i]] }
    }
}

/// `destination[i] = source[offsets[i]]` for elements of `size` bytes.
func gatherElements(size: Int, from source: UnsafeRawPointer, offsets: [Int], to destination: UnsafeMutableRawPointer) {
    switch size {
    case 1: gatherElementsTyped(UInt8.self, source, destination, offsets)
    case 2: gatherElementsTyped(UInt16.self, source, destination, offsets)
    case 4: gatherElementsTyped(UInt32.self, source, destination, offsets)
    case 8: gatherElementsTyped(UInt64.self, source, destination, offsets)
    default: gatherElementsTyped(Word128.self, source, destination, offsets)
    }
}

extension DataMovementKernels {
    static func makeGather(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = try ctx.node.int("axis", default: 0)
        return FunctionKernel { inputs, outputs in
            let data = try requiredInput(inputs, 0), indicesTensor = try requiredInput(inputs, 1)
            guard data.rank > 0 else { throw KernelError.invalid("cannot gather from a scalar") }
            let axis = try normalizedAxis(axisAttribute, rank: data.rank)
            let length = data.shape[axis]
            let indices = try normalizedIndices(indicesTensor, length: length)
            let size = try copyableElementSize(data.elementType)
            let outShape = Array(data.shape[..<axis]) + indicesTensor.shape + Array(data.shape[(axis + 1)...])
            let y = try outputs.allocate(0, data.elementType, outShape)
            let outer = data.shape[..<axis].reduce(1, *), inner = data.shape[(axis + 1)...].reduce(1, *)
            let count = indices.count, block = inner * size
            let source = data.rawPointer, destination = y.rawPointer
            if inner == 1 && outer == 1 {
                gatherElements(size: size, from: source, offsets: indices, to: destination)
                return
            }
            let table = plainCopy(indices)
            defer { table.deallocate() }
            ThreadPool.parallelFor(outer * count, minimumPerThread: max(1, parallelCopyGrain / max(1, block))) { range in
                for item in range {
                    let o = item / count, k = item % count
                    (destination + item * block).copyMemory(from: source + (o * length + table[k]) * block, byteCount: block)
                }
            }
        }
    }

    static func makeGatherElements(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = try ctx.node.int("axis", default: 0)
        return FunctionKernel { inputs, outputs in
            let data = try requiredInput(inputs, 0), indicesTensor = try requiredInput(inputs, 1)
            let axis = try normalizedAxis(axisAttribute, rank: data.rank)
            let offsets = try elementOffsets(data: data.shape, indices: indicesTensor, axis: axis)
            let size = try copyableElementSize(data.elementType)
            let y = try outputs.allocate(0, data.elementType, indicesTensor.shape)
            gatherElements(size: size, from: data.rawPointer, offsets: offsets, to: y.rawPointer)
        }
    }

    /// For GatherElements and ScatterElements: the data offset (in elements) each index
    /// addresses, its position along `axis` replaced by the index value.
    static func elementOffsets(data: [Int], indices indicesTensor: Tensor, axis: Int) throws -> [Int] {
        let shape = indicesTensor.shape
        guard shape.count == data.count else {
            throw KernelError.invalid("indices of rank \(shape.count) for data of rank \(data.count)")
        }
        for k in shape.indices where k != axis && shape[k] > data[k] {
            throw KernelError.invalid("indices \(shape) exceed data \(data) on axis \(k)")
        }
        var offsets = try normalizedIndices(indicesTensor, length: data[axis])
        let strides = contiguousStrides(data)
        var index = [Int](repeating: 0, count: shape.count)
        var base = 0
        for i in offsets.indices {
            offsets[i] = base + offsets[i] * strides[axis]
            var k = shape.count - 1
            while k >= 0 {
                index[k] += 1
                if k != axis { base += strides[k] }
                if index[k] < shape[k] { break }
                if k != axis { base -= strides[k] * shape[k] }
                index[k] = 0
                k -= 1
            }
        }
        return offsets
    }

    static func makeScatterElements(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = try ctx.node.int("axis", default: 0)
        let name = try ctx.node.string("reduction", default: "none")
        guard let reduction = ScatterReduction(rawValue: name) else { throw KernelError.unsupported("reduction '\(name)'") }
        return FunctionKernel { inputs, outputs in
            let data = try requiredInput(inputs, 0), indicesTensor = try requiredInput(inputs, 1)
            let updates = try requiredInput(inputs, 2)
            guard updates.shape == indicesTensor.shape, updates.elementType == data.elementType else {
                throw KernelError.invalid("updates \(updates.elementType) \(updates.shape) do not match indices \(indicesTensor.shape) and data \(data.elementType)")
            }
            let axis = try normalizedAxis(axisAttribute, rank: data.rank)
            let offsets = try elementOffsets(data: data.shape, indices: indicesTensor, axis: axis)
            let size = try copyableElementSize(data.elementType)
            let y = try outputs.allocate(0, data.elementType, data.shape)
            if data.byteCount > 0 { y.rawPointer.copyMemory(from: data.rawPointer, byteCount: data.byteCount) }
            for (i, offset) in offsets.enumerated() {
                try scatterReduce(data.elementType, reduction, into: y.rawPointer + offset * size,
                                  from: updates.rawPointer + i * size, count: 1)
            }
        }
    }

    /// For GatherND and ScatterND: the element offset of each index tuple (the last axis
    /// of `indices`) within `data`, after `batchDims` leading axes shared by both.
    static func tupleOffsets(data: [Int], indices indicesTensor: Tensor, batchDims: Int) throws -> (offsets: [Int], block: Int) {
        let shape = indicesTensor.shape
        guard let depth = shape.last, batchDims >= 0, batchDims < shape.count, batchDims + depth <= data.count,
              Array(shape[..<batchDims]) == Array(data[..<batchDims]) else {
            throw KernelError.invalid("indices \(shape) with batch_dims \(batchDims) do not fit data \(data)")
        }
        let values = try indexValues(indicesTensor, "indices")
        let strides = contiguousStrides(data)
        let block = data[(batchDims + depth)...].reduce(1, *)
        let batch = data[..<batchDims].reduce(1, *)
        let batchStride = data[batchDims...].reduce(1, *)
        let tuples = depth == 0 ? shape.dropLast().reduce(1, *) : values.count / depth
        let perBatch = batch == 0 ? 0 : tuples / batch
        var offsets = [Int](repeating: 0, count: tuples)
        for t in 0..<tuples {
            var offset = (perBatch == 0 ? 0 : t / perBatch) * batchStride
            for j in 0..<depth {
                let length = data[batchDims + j]
                var v = values[t * depth + j]
                guard v >= -length, v < length else {
                    throw KernelError.invalid("index \(v) is out of range for axis \(batchDims + j) of \(data)")
                }
                if v < 0 { v += length }
                offset += v * strides[batchDims + j]
            }
            offsets[t] = offset
        }
        return (offsets, block)
    }

    static func makeGatherND(_ ctx: KernelContext) throws -> Kernel {
        let batchDims = try ctx.node.int("batch_dims", default: 0)
        return FunctionKernel { inputs, outputs in
            let data = try requiredInput(inputs, 0), indicesTensor = try requiredInput(inputs, 1)
            let (offsets, block) = try tupleOffsets(data: data.shape, indices: indicesTensor, batchDims: batchDims)
            let size = try copyableElementSize(data.elementType)
            let depth = indicesTensor.shape.last ?? 0
            let outShape = Array(indicesTensor.shape.dropLast()) + Array(data.shape[(batchDims + depth)...])
            let y = try outputs.allocate(0, data.elementType, outShape)
            let bytes = block * size
            let source = data.rawPointer, destination = y.rawPointer
            let table = plainCopy(offsets)
            defer { table.deallocate() }
            ThreadPool.parallelFor(offsets.count, minimumPerThread: max(1, parallelCopyGrain / max(1, bytes))) { range in
                for t in range {
                    (destination + t * bytes).copyMemory(from: source + table[t] * size, byteCount: bytes)
                }
            }
        }
    }

    static func makeScatterND(_ ctx: KernelContext) throws -> Kernel {
        let name = try ctx.node.string("reduction", default: "none")
        guard let reduction = ScatterReduction(rawValue: name) else { throw KernelError.unsupported("reduction '\(name)'") }
        return FunctionKernel { inputs, outputs in
            let data = try requiredInput(inputs, 0), indicesTensor = try requiredInput(inputs, 1)
            let updates = try requiredInput(inputs, 2)
            let (offsets, block) = try tupleOffsets(data: data.shape, indices: indicesTensor, batchDims: 0)
            let depth = indicesTensor.shape.last ?? 0
            let expected = Array(indicesTensor.shape.dropLast()) + Array(data.shape[depth...])
            guard updates.shape == expected, updates.elementType == data.elementType else {
                throw KernelError.invalid("updates \(updates.elementType) \(updates.shape) should be \(data.elementType) \(expected)")
            }
            let size = try copyableElementSize(data.elementType)
            let y = try outputs.allocate(0, data.elementType, data.shape)
            if data.byteCount > 0 { y.rawPointer.copyMemory(from: data.rawPointer, byteCount: data.byteCount) }
            for (t, offset) in offsets.enumerated() {
                try scatterReduce(data.elementType, reduction, into: y.rawPointer + offset * size,
                                  from: updates.rawPointer + t * block * size, count: block)
            }
        }
    }
}
