import VernierGraph

/// Kernels of the ShapeOps family (same file name as the shape rules and cost formulas):
/// ops that describe tensors or make new ones. Cast, CastLike and the random generators
/// live elsewhere.
enum ShapeOpKernels {
    static let all: [String: KernelFactory] = [
        "Shape": makeShape,
        "Size": { _ in
            FunctionKernel { inputs, outputs in
                let x = try requiredInput(inputs, 0)
                let y = try outputs.allocate(0, .int64, [])
                y.rawPointer.storeBytes(of: Int64(x.elementCount), as: Int64.self)
            }
        },
        "Constant": makeConstant,
        "ConstantOfShape": makeConstantOfShape,
        "Range": { _ in FunctionKernel(range) },
        "EyeLike": makeEyeLike,
        "OneHot": makeOneHot,
        "NonZero": { _ in FunctionKernel(nonZero) },
    ]

    /// An int64 tensor holding `values`, from `outputs` slot `index`.
    static func writeInt64(_ outputs: OutputSlots, _ index: Int, _ shape: [Int], _ values: [Int]) throws {
        let y = try outputs.allocate(index, .int64, shape)
        let p = y.rawPointer.assumingMemoryBound(to: Int64.self)
        for (i, v) in values.enumerated() { p[i] = Int64(v) }
    }

    static func makeShape(_ ctx: KernelContext) throws -> Kernel {
        let start = try ctx.node.int("start", default: 0)
        let end = ctx.node.hasAttribute("end") ? try ctx.node.int("end") : nil
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let r = x.rank
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
            let (s, e) = (clamp(start), clamp(end ?? r))
            let dims = s < e ? Array(x.shape[s..<e]) : []
            try writeInt64(outputs, 0, [dims.count], dims)
        }
    }

    /// Constant's value as a tensor, from whichever `value*` attribute the node has.
    static func constantValue(_ node: Node) throws -> Tensor {
        if let data = try node.tensor("value") {
            guard let tensor = Tensor(data) else { throw KernelError.unsupported("a constant of type \(data.elementType)") }
            return tensor
        }
        if node.hasAttribute("value_float") { return Tensor(shape: [], values: [try node.float("value_float")]) }
        if let v = try node.floats("value_floats") { return Tensor(shape: [v.count], values: v) }
        if node.hasAttribute("value_int") { return Tensor(.int64, shape: [], values: [Int64(try node.int("value_int"))]) }
        if let v = try node.ints("value_ints") { return Tensor(.int64, shape: [v.count], values: v.map { Int64($0) }) }
        if node.hasAttribute("value_string") || node.hasAttribute("value_strings") {
            throw KernelError.unsupported("string constants")
        }
        if node.hasAttribute("sparse_value") { throw KernelError.unsupported("sparse constants") }
        throw KernelError.invalid("Constant has none of value, value_float(s), value_int(s)")
    }

    static func makeConstant(_ ctx: KernelContext) throws -> Kernel {
        let value = try constantValue(ctx.node)
        return FunctionKernel { _, outputs in
            let y = try outputs.allocate(0, value.elementType, value.shape)
            if value.byteCount > 0 { y.rawPointer.copyMemory(from: value.rawPointer, byteCount: value.byteCount) }
        }
    }

    static func makeConstantOfShape(_ ctx: KernelContext) throws -> Kernel {
        var type = ElementType.float
        var fill = ElementBytes()
        if let data = try ctx.node.tensor("value") {
            guard let tensor = Tensor(data), tensor.elementCount == 1 else {
                throw KernelError.invalid("attribute 'value' must be a one-element tensor of a numeric type")
            }
            type = tensor.elementType
            fill = ElementBytes(first: tensor)
        }
        let size = try copyableElementSize(type)
        return FunctionKernel { inputs, outputs in
            let shape = try indexValues(try requiredInput(inputs, 0), "shape")
            guard shape.allSatisfy({ $0 >= 0 }) else { throw KernelError.invalid("shape \(shape) has a negative dim") }
            let y = try outputs.allocate(0, type, shape)
            fill.withPointer { fillElements(size: size, value: $0, to: y.rawPointer, count: y.elementCount) }
        }
    }

    static func range(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let start = try requiredInput(inputs, 0), limit = try requiredInput(inputs, 1), delta = try requiredInput(inputs, 2)
        let type = start.elementType
        guard limit.elementType == type, delta.elementType == type,
              start.elementCount == 1, limit.elementCount == 1, delta.elementCount == 1 else {
            throw KernelError.invalid("start, limit and delta must be scalars of one type")
        }
        func fill<T>(_: T.Type, _ count: Int, _ value: (Int) -> T) throws {
            let y = try outputs.allocate(0, type, [count])
            let p = y.rawPointer.assumingMemoryBound(to: T.self)
            for i in 0..<count { p[i] = value(i) }
        }
        switch type {
        case .float, .double:
            guard let s = start.doubles()?.first, let l = limit.doubles()?.first, let d = delta.doubles()?.first,
                  d != 0, s.isFinite, l.isFinite, d.isFinite else {
                throw KernelError.invalid("Range needs finite start, limit and a non-zero delta")
            }
            guard let steps = Int(ifRepresentable: ((l - s) / d).rounded(.up)) else {
                throw KernelError.invalid("Range from \(s) to \(l) by \(d) has too many elements")
            }
            let count = max(0, steps)
            if type == .float {
                let (fs, fd) = (Float(s), Float(d))
                try fill(Float.self, count) { fs + Float($0) * fd }
            } else {
                try fill(Double.self, count) { s + Double($0) * d }
            }
        case .int16, .int32, .int64:
            guard let s = start.integers()?.first, let l = limit.integers()?.first, let d = delta.integers()?.first, d != 0 else {
                throw KernelError.invalid("Range needs a non-zero delta")
            }
            let span = l - s
            let count = max(0, d > 0 ? (span + d - 1) / d : (span + d + 1) / d)
            switch type {
            case .int16: try fill(Int16.self, count) { Int16(truncatingIfNeeded: s + $0 * d) }
            case .int32: try fill(Int32.self, count) { Int32(truncatingIfNeeded: s + $0 * d) }
            default: try fill(Int64.self, count) { Int64(s + $0 * d) }
            }
        default:
            throw KernelError.unsupported("Range of \(type)")
        }
    }

    static func makeEyeLike(_ ctx: KernelContext) throws -> Kernel {
        let dtype = try ctx.node.int("dtype", default: -1)
        let k = try ctx.node.int("k", default: 0)
        var fixedType: ElementType?
        if dtype >= 0 {
            guard let t = ElementType(rawValue: dtype) else { throw KernelError.invalid("dtype \(dtype) is not an element type") }
            fixedType = t
        }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            guard x.rank == 2 else { throw KernelError.invalid("EyeLike needs a 2-D input, got \(x.shape)") }
            let type = fixedType ?? x.elementType
            let size = try copyableElementSize(type)
            let one = try ElementBytes(1, as: type), zero = ElementBytes()
            let y = try outputs.allocate(0, type, x.shape)
            let (rows, columns) = (x.shape[0], x.shape[1])
            zero.withPointer { fillElements(size: size, value: $0, to: y.rawPointer, count: rows * columns) }
            one.withPointer { value in
                for i in 0..<rows where i + k >= 0 && i + k < columns {
                    (y.rawPointer + (i * columns + i + k) * size).copyMemory(from: value, byteCount: size)
                }
            }
        }
    }

    static func makeOneHot(_ ctx: KernelContext) throws -> Kernel {
        let axisAttribute = try ctx.node.int("axis", default: -1)
        return FunctionKernel { inputs, outputs in
            let indicesTensor = try requiredInput(inputs, 0), depthTensor = try requiredInput(inputs, 1)
            let values = try requiredInput(inputs, 2)
            guard let indices = indicesTensor.doubles(), let depthValue = depthTensor.doubles(), depthValue.count == 1,
                  depthValue[0].isFinite, depthValue[0] >= 1 else {
                throw KernelError.invalid("OneHot needs numeric indices and a positive scalar depth")
            }
            guard values.elementCount == 2 else { throw KernelError.invalid("values must hold [off, on], got \(values.shape)") }
            let depth = Int(depthValue[0])
            let size = try copyableElementSize(values.elementType)
            let axis = try normalizedAxis(axisAttribute, rank: indicesTensor.rank + 1)
            var outShape = indicesTensor.shape
            outShape.insert(depth, at: axis)
            let y = try outputs.allocate(0, values.elementType, outShape)
            fillElements(size: size, value: values.rawPointer, to: y.rawPointer, count: y.elementCount)
            let outer = indicesTensor.shape[..<axis].reduce(1, *), inner = indicesTensor.shape[axis...].reduce(1, *)
            let on = values.rawPointer + size
            for o in 0..<outer {
                for i in 0..<inner {
                    let v = indices[o * inner + i]
                    guard var d = Int(ifRepresentable: v.rounded(.towardZero)) else { continue }
                    if d < 0 { d += depth }
                    guard d >= 0, d < depth else { continue }
                    (y.rawPointer + ((o * depth + d) * inner + i) * size).copyMemory(from: on, byteCount: size)
                }
            }
        }
    }

    /// Flat positions of the non-zero elements (floats compare to zero, so -0 is zero).
    static func nonZeroPositions(_ x: Tensor) throws -> [Int] {
        func collect<T>(_: T.Type, _ isNonZero: (T) -> Bool) -> [Int] {
            x.withUnsafeBufferPointer(as: T.self) { p in p.indices.filter { isNonZero(p[$0]) } }
        }
        switch x.elementType {
        case .float: return collect(Float.self) { $0 != 0 }
        case .double: return collect(Double.self) { $0 != 0 }
        case .float16: return collect(Float16.self) { $0 != 0 }
        case .bfloat16: return collect(UInt16.self) { $0 & 0x7FFF != 0 }
        case .int8, .uint8, .bool: return collect(UInt8.self) { $0 != 0 }
        case .int16, .uint16: return collect(UInt16.self) { $0 != 0 }
        case .int32, .uint32: return collect(UInt32.self) { $0 != 0 }
        case .int64, .uint64: return collect(UInt64.self) { $0 != 0 }
        default: throw KernelError.unsupported("NonZero of \(x.elementType)")
        }
    }

    static func nonZero(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let positions = try nonZeroPositions(x)
        let rank = x.rank, count = positions.count
        let y = try outputs.allocate(0, .int64, [rank, count])
        let p = y.rawPointer.assumingMemoryBound(to: Int64.self)
        let strides = contiguousStrides(x.shape)
        for (n, flat) in positions.enumerated() {
            var rest = flat
            for k in 0..<rank {
                p[k * count + n] = Int64(rest / strides[k])
                rest %= strides[k]
            }
        }
    }
}
