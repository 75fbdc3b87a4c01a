import VernierGraph

/// Kernels of Cast and CastLike (their shape rules live in ShapeOps.swift). Listed in
/// `ElementwiseKernels.all`, so the registry needs no table of their own.
enum CastKernels {
    static let all: [String: KernelFactory] = ["Cast": makeCast, "CastLike": makeCastLike]

    static func makeCast(_ ctx: KernelContext) throws -> Kernel {
        let code = try ctx.node.int("to")
        guard let to = ElementType(rawValue: code) else {
            throw KernelError.invalid("attribute 'to' (\(code)) is not an ONNX element type")
        }
        guard ElementConversion.supports(to) else { throw KernelError.unsupported("Cast to \(to)") }
        return FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            try cast(x, to: to, outputs)
        }
    }

    static func makeCastLike(_ ctx: KernelContext) throws -> Kernel {
        FunctionKernel { inputs, outputs in
            let x = try requiredInput(inputs, 0)
            let like = try requiredInput(inputs, 1)
            try cast(x, to: like.elementType, outputs)
        }
    }

    static func cast(_ x: Tensor, to: ElementType, _ outputs: OutputSlots) throws {
        guard ElementConversion.supports(x.elementType) else { throw KernelError.unsupported("Cast from \(x.elementType)") }
        guard ElementConversion.supports(to) else { throw KernelError.unsupported("Cast to \(to)") }
        if x.elementType == to {
            // A copy, not a view: the memory planner gives Cast's output a buffer of its
            // own and may reuse the input's buffer while the output is still read.
            let out = try outputs.allocate(0, to, x.shape)
            if x.byteCount > 0 { out.rawPointer.copyMemory(from: x.rawPointer, byteCount: x.byteCount) }
            return
        }
        let out = try outputs.allocate(0, to, x.shape)
        ElementConversion.convert(x, into: out)
    }
}

/// Element type conversion with NumPy's `astype` results: float to integer truncates
/// toward zero (NaN gives 0, values past the range saturate first, then wrap like C
/// for narrower types), integer to integer wraps, anything to bool is `!= 0`, float to
/// bfloat16 truncates (as ONNX's backend tests expect).
enum ElementConversion {
    static let supported: Set<ElementType> = [
        .float, .double, .float16, .bfloat16, .int8, .int16, .int32, .int64,
        .uint8, .uint16, .uint32, .uint64, .bool,
    ]

    static func supports(_ type: ElementType) -> Bool { supported.contains(type) }

    /// Writes `x` converted to `out`'s element type (same shape; `out` may be `x`'s
    /// memory when the sizes match: each chunk is read before it is written).
    static func convert(_ x: Tensor, into out: Tensor) {
        let count = x.elementCount
        switch (x.elementType, out.elementType) {
        case (.float, .float16): floats(x, out, Float.self, Float16.self)
        case (.float16, .float): floats(x, out, Float16.self, Float.self)
        case (.float, .double): floats(x, out, Float.self, Double.self)
        case (.double, .float): floats(x, out, Double.self, Float.self)
        default:
            let chunk = 256
            ThreadPool.parallelFor(count, minimumPerThread: ElementLoops.grain) { range in
                withUnsafeTemporaryAllocation(of: UInt64.self, capacity: chunk) { scratch in
                    guard let wide = scratch.baseAddress else { return }
                    var start = range.lowerBound
                    while start < range.upperBound {
                        let n = min(chunk, range.upperBound - start)
                        let kind = read(x, start, n, wide)
                        write(out, start, n, wide, kind)
                        start += n
                    }
                }
            }
        }
    }

    private static func floats<S: BinaryFloatingPoint, D: BinaryFloatingPoint>(_ x: Tensor, _ out: Tensor, _: S.Type, _: D.Type) {
        ElementLoops.mapElements(x, into: out) { (v: S) in D(v) }
    }

    /// How a chunk's values are held: Double bit patterns, Int64 or UInt64.
    private enum Wide { case real, signed, unsigned }

    private static func read(_ x: Tensor, _ start: Int, _ n: Int, _ wide: UnsafeMutablePointer<UInt64>) -> Wide {
        func real<S: BinaryFloatingPoint>(_: S.Type) -> Wide {
            let p = ElementLoops.pointer(x, S.self) + start
            for i in 0..<n { wide[i] = Double(p[i]).bitPattern }
            return .real
        }
        func signed<S: FixedWidthInteger>(_: S.Type) -> Wide {
            let p = ElementLoops.pointer(x, S.self) + start
            for i in 0..<n { wide[i] = UInt64(bitPattern: Int64(p[i])) }
            return .signed
        }
        switch x.elementType {
        case .float: return real(Float.self)
        case .double: return real(Double.self)
        case .float16: return real(Float16.self)
        case .bfloat16:
            let p = ElementLoops.pointer(x, UInt16.self) + start
            for i in 0..<n { wide[i] = Double(Float(bitPattern: UInt32(p[i]) << 16)).bitPattern }
            return .real
        case .int8: return signed(Int8.self)
        case .int16: return signed(Int16.self)
        case .int32: return signed(Int32.self)
        case .int64: return signed(Int64.self)
        case .uint8, .bool: return signed(UInt8.self)
        case .uint16: return signed(UInt16.self)
        case .uint32: return signed(UInt32.self)
        default:
            let p = ElementLoops.pointer(x, UInt64.self) + start
            for i in 0..<n { wide[i] = p[i] }
            return .unsigned
        }
    }

    private static func write(_ out: Tensor, _ start: Int, _ n: Int, _ wide: UnsafeMutablePointer<UInt64>, _ kind: Wide) {
        func value(_ i: Int) -> Double {
            switch kind {
            case .real: return Double(bitPattern: wide[i])
            case .signed: return Double(Int64(bitPattern: wide[i]))
            case .unsigned: return Double(wide[i])
            }
        }
        func real<D: BinaryFloatingPoint>(_: D.Type) {
            let p = ElementLoops.pointer(out, D.self) + start
            for i in 0..<n { p[i] = D(value(i)) }
        }
        func integer<D: FixedWidthInteger>(_: D.Type) {
            let p = ElementLoops.pointer(out, D.self) + start
            for i in 0..<n {
                switch kind {
                case .real: p[i] = D(truncatingIfNeeded: integerBits(Double(bitPattern: wide[i])))
                case .signed, .unsigned: p[i] = D(truncatingIfNeeded: wide[i])
                }
            }
        }
        switch out.elementType {
        case .float: real(Float.self)
        case .double: real(Double.self)
        case .float16: real(Float16.self)
        case .bfloat16:
            let p = ElementLoops.pointer(out, UInt16.self) + start
            for i in 0..<n { p[i] = bfloat16Bits(Float(value(i))) }
        case .int8: integer(Int8.self)
        case .int16: integer(Int16.self)
        case .int32: integer(Int32.self)
        case .int64: integer(Int64.self)
        case .uint8: integer(UInt8.self)
        case .uint16: integer(UInt16.self)
        case .uint32: integer(UInt32.self)
        case .uint64: integer(UInt64.self)
        case .bool:
            let p = ElementLoops.pointer(out, UInt8.self) + start
            for i in 0..<n {
                let nonzero = kind == .real ? Double(bitPattern: wide[i]) != 0 : wide[i] != 0
                p[i] = nonzero ? 1 : 0
            }
        default: break
        }
    }

    /// A float truncated toward zero as 64 integer bits: Int64's for values in its
    /// range, UInt64's above it (up to 2^64), NaN 0, saturated past both ends.
    static func integerBits(_ d: Double) -> UInt64 {
        if d.isNaN { return 0 }
        if d >= 18_446_744_073_709_551_616.0 { return UInt64.max }
        if d >= 9_223_372_036_854_775_808.0 { return UInt64(d) }
        if d <= -9_223_372_036_854_775_808.0 { return UInt64(bitPattern: Int64.min) }
        return UInt64(bitPattern: Int64(d))
    }

    /// bfloat16 bits of a float: the top 16 bits (truncation, what ONNX's backend tests
    /// expect), NaN a quiet NaN.
    static func bfloat16Bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        return UInt16(truncatingIfNeeded: f.bitPattern >> 16)
    }
}
