import VernierGraph

/// An fp32 function of one vector, applied 8 lanes at a time. Ops are structs so the
/// generic loops below are specialised and inlined per op (a closure would cost a call
/// per vector).
protocol FloatMap {
    func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float>
}

/// An fp32 function of two vectors.
protocol FloatZip {
    func callAsFunction(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
}

/// The loops shared by the element-wise kernels: vectorized fp32 maps and broadcasting
/// zips, generic per-element loops for the other element types, and type dispatch.
/// Every loop reads element i before it writes element i, so the output may be the
/// memory of a same-sized input.
enum ElementLoops {
    /// Elements a thread should get at least: below this a second thread costs more
    /// than it saves.
    static let grain = 1 << 15

    /// Whether two tensors share bytes.
    static func overlaps(_ a: Tensor, _ b: Tensor) -> Bool {
        a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteCount && b.byteOffset < a.byteOffset + a.byteCount
    }

    /// `input`, or a copy of it when it is broadcast (fewer elements than `out`) and
    /// shares memory with `out`: writing the output would change it while it is read.
    /// Element-wise loops are safe over a same-sized input only.
    static func readable(_ input: Tensor, writing out: Tensor) -> Tensor {
        input.elementCount != out.elementCount && overlaps(input, out) ? input.copy() : input
    }

    @inline(__always)
    static func pointer<T>(_ tensor: Tensor, _ type: T.Type) -> UnsafeMutablePointer<T> {
        tensor.rawPointer.bindMemory(to: T.self, capacity: tensor.elementCount)
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// The first `count` (< 8) floats at `p` in a vector, zeros after.
    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> SIMD8<Float> {
        var v = SIMD8<Float>(repeating: 0)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    @inline(__always)
    static func storePartial(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { p[i] = v[i] }
    }

    // MARK: fp32

    /// out[i] = op(x[i]) for i in 0..<count.
    @inline(__always)
    static func map<Op: FloatMap>(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int, _ op: Op) {
        var i = 0
        while i + 16 <= count {
            let a = load(x + i), b = load(x + i + 8)
            store(op(a), out + i)
            store(op(b), out + i + 8)
            i += 16
        }
        if i + 8 <= count {
            store(op(load(x + i)), out + i)
            i += 8
        }
        if i < count { storePartial(op(loadPartial(x + i, count - i)), out + i, count - i) }
    }

    /// `map` over a whole float tensor, in parallel.
    static func map<Op: FloatMap>(_ x: Tensor, into out: Tensor, _ op: Op) {
        let px = pointer(x, Float.self), po = pointer(out, Float.self)
        ThreadPool.parallelFor(x.elementCount, minimumPerThread: grain) { range in
            map(px + range.lowerBound, po + range.lowerBound, range.count, op)
        }
    }

    /// out[i] = op(a[i * strideA], b[i * strideB]) with strides 0 or 1.
    @inline(__always)
    static func zip<Op: FloatZip>(_ a: UnsafePointer<Float>, _ strideA: Int, _ b: UnsafePointer<Float>, _ strideB: Int,
                                  _ out: UnsafeMutablePointer<Float>, _ count: Int, _ op: Op) {
        var i = 0
        if strideA == 1 && strideB == 1 {
            while i + 16 <= count {
                let x0 = load(a + i), x1 = load(a + i + 8), y0 = load(b + i), y1 = load(b + i + 8)
                store(op(x0, y0), out + i)
                store(op(x1, y1), out + i + 8)
                i += 16
            }
            while i + 8 <= count {
                store(op(load(a + i), load(b + i)), out + i)
                i += 8
            }
            if i < count {
                storePartial(op(loadPartial(a + i, count - i), loadPartial(b + i, count - i)), out + i, count - i)
            }
        } else if strideB == 1 {
            let x = SIMD8<Float>(repeating: a[0])
            while i + 16 <= count {
                let y0 = load(b + i), y1 = load(b + i + 8)
                store(op(x, y0), out + i)
                store(op(x, y1), out + i + 8)
                i += 16
            }
            while i + 8 <= count {
                store(op(x, load(b + i)), out + i)
                i += 8
            }
            if i < count { storePartial(op(x, loadPartial(b + i, count - i)), out + i, count - i) }
        } else if strideA == 1 {
            let y = SIMD8<Float>(repeating: b[0])
            while i + 16 <= count {
                let x0 = load(a + i), x1 = load(a + i + 8)
                store(op(x0, y), out + i)
                store(op(x1, y), out + i + 8)
                i += 16
            }
            while i + 8 <= count {
                store(op(load(a + i), y), out + i)
                i += 8
            }
            if i < count { storePartial(op(loadPartial(a + i, count - i), y), out + i, count - i) }
        } else {
            let v = op(SIMD8<Float>(repeating: a[0]), SIMD8<Float>(repeating: b[0]))[0]
            for j in 0..<count { out[j] = v }
        }
    }

    /// out = op(a, b) with broadcasting by `plan` (a and b are its inputs 0 and 1).
    static func zip<Op: FloatZip>(_ a: Tensor, _ b: Tensor, into out: Tensor, _ plan: BroadcastPlan, _ op: Op) {
        let pa = pointer(a, Float.self), pb = pointer(b, Float.self), po = pointer(out, Float.self)
        let strides = plan.innerStrides
        let (sa, sb) = (strides[0], strides[1])
        ThreadPool.parallelFor(plan.elementCount, minimumPerThread: grain) { range in
            plan.forEachRow(in: range) { o, offsets, count in
                zip(pa + offsets[0], sa, pb + offsets[1], sb, po + o, count, op)
            }
        }
    }

    // MARK: any element type, one element at a time

    /// out[i] = f(x[i]) over whole tensors of element types T and U.
    static func mapElements<T, U>(_ x: Tensor, into out: Tensor, _ f: (T) -> U) {
        let px = pointer(x, T.self), po = pointer(out, U.self)
        ThreadPool.parallelFor(x.elementCount, minimumPerThread: grain) { range in
            for i in range { po[i] = f(px[i]) }
        }
    }

    /// out = f(a, b) with broadcasting by `plan`.
    static func zipElements<A, B, O>(_ a: Tensor, _ b: Tensor, into out: Tensor, _ plan: BroadcastPlan, _ f: (A, B) -> O) {
        let pa = pointer(a, A.self), pb = pointer(b, B.self), po = pointer(out, O.self)
        let strides = plan.innerStrides
        let (sa, sb) = (strides[0], strides[1])
        ThreadPool.parallelFor(plan.elementCount, minimumPerThread: grain) { range in
            plan.forEachRow(in: range) { o, offsets, count in
                let x = pa + offsets[0], y = pb + offsets[1], z = po + o
                for i in 0..<count { z[i] = f(x[i * sa], y[i * sb]) }
            }
        }
    }
}

/// A scalar function of one element, by the family of the element type: floating-point
/// types compute in Double, signed integers in Int64, unsigned integers (and bool, as
/// 0/1) in UInt64; results are narrowed back with wrap-around (NumPy's behaviour).
/// A nil member means the op does not take that family.
struct ScalarUnary {
    var real: ((Double) -> Double)?
    var signed: ((Int64) -> Int64)?
    var unsigned: ((UInt64) -> UInt64)?
    var bool: ((Bool) -> Bool)?

    init(real: ((Double) -> Double)? = nil, signed: ((Int64) -> Int64)? = nil,
         unsigned: ((UInt64) -> UInt64)? = nil, bool: ((Bool) -> Bool)? = nil) {
        self.real = real
        self.signed = signed
        self.unsigned = unsigned
        self.bool = bool
    }

    /// out = f(x), both of x's element type.
    func apply(_ x: Tensor, into out: Tensor, op: String) throws {
        func missing() -> KernelError { .unsupported("\(op) of \(x.elementType) tensors") }
        switch x.elementType {
        case .float, .double, .float16:
            guard let f = real else { throw missing() }
            switch x.elementType {
            case .float: ElementLoops.mapElements(x, into: out) { (v: Float) in Float(f(Double(v))) }
            case .double: ElementLoops.mapElements(x, into: out) { (v: Double) in f(v) }
            default: ElementLoops.mapElements(x, into: out) { (v: Float16) in Float16(f(Double(v))) }
            }
        case .int8: guard let f = signed else { throw missing() }; Self.signed(Int8.self, x, out, f)
        case .int16: guard let f = signed else { throw missing() }; Self.signed(Int16.self, x, out, f)
        case .int32: guard let f = signed else { throw missing() }; Self.signed(Int32.self, x, out, f)
        case .int64: guard let f = signed else { throw missing() }; Self.signed(Int64.self, x, out, f)
        case .uint8: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt8.self, x, out, f)
        case .uint16: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt16.self, x, out, f)
        case .uint32: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt32.self, x, out, f)
        case .uint64: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt64.self, x, out, f)
        case .bool:
            guard let f = bool else { throw missing() }
            ElementLoops.mapElements(x, into: out) { (v: UInt8) -> UInt8 in f(v != 0) ? 1 : 0 }
        default: throw missing()
        }
    }

    private static func signed<T: FixedWidthInteger & SignedInteger>(_: T.Type, _ x: Tensor, _ out: Tensor, _ f: (Int64) -> Int64) {
        ElementLoops.mapElements(x, into: out) { (v: T) in T(truncatingIfNeeded: f(Int64(v))) }
    }

    private static func unsigned<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, _ x: Tensor, _ out: Tensor, _ f: (UInt64) -> UInt64) {
        ElementLoops.mapElements(x, into: out) { (v: T) in T(truncatingIfNeeded: f(UInt64(v))) }
    }
}

/// A scalar function of two elements of one type, by family like `ScalarUnary`;
/// `R` is the result: `Double`/`Int64`/`UInt64`/`Bool` for arithmetic (narrowed to the
/// input type) or comparisons (bool output).
struct ScalarBinary {
    var real: ((Double, Double) -> Double)?
    var signed: ((Int64, Int64) -> Int64)?
    var unsigned: ((UInt64, UInt64) -> UInt64)?
    var bool: ((Bool, Bool) -> Bool)?

    init(real: ((Double, Double) -> Double)? = nil, signed: ((Int64, Int64) -> Int64)? = nil,
         unsigned: ((UInt64, UInt64) -> UInt64)? = nil, bool: ((Bool, Bool) -> Bool)? = nil) {
        self.real = real
        self.signed = signed
        self.unsigned = unsigned
        self.bool = bool
    }

    /// out = f(a, b) broadcast by `plan`, all three of a's element type.
    func apply(_ a: Tensor, _ b: Tensor, into out: Tensor, _ plan: BroadcastPlan, op: String) throws {
        func missing() -> KernelError { .unsupported("\(op) of \(a.elementType) tensors") }
        switch a.elementType {
        case .float:
            guard let f = real else { throw missing() }
            ElementLoops.zipElements(a, b, into: out, plan) { (x: Float, y: Float) in Float(f(Double(x), Double(y))) }
        case .double:
            guard let f = real else { throw missing() }
            ElementLoops.zipElements(a, b, into: out, plan) { (x: Double, y: Double) in f(x, y) }
        case .float16:
            guard let f = real else { throw missing() }
            ElementLoops.zipElements(a, b, into: out, plan) { (x: Float16, y: Float16) in Float16(f(Double(x), Double(y))) }
        case .int8: guard let f = signed else { throw missing() }; Self.signed(Int8.self, a, b, out, plan, f)
        case .int16: guard let f = signed else { throw missing() }; Self.signed(Int16.self, a, b, out, plan, f)
        case .int32: guard let f = signed else { throw missing() }; Self.signed(Int32.self, a, b, out, plan, f)
        case .int64: guard let f = signed else { throw missing() }; Self.signed(Int64.self, a, b, out, plan, f)
        case .uint8: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt8.self, a, b, out, plan, f)
        case .uint16: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt16.self, a, b, out, plan, f)
        case .uint32: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt32.self, a, b, out, plan, f)
        case .uint64: guard let f = unsigned else { throw missing() }; Self.unsigned(UInt64.self, a, b, out, plan, f)
        case .bool:
            guard let f = bool else { throw missing() }
            ElementLoops.zipElements(a, b, into: out, plan) { (x: UInt8, y: UInt8) -> UInt8 in f(x != 0, y != 0) ? 1 : 0 }
        default: throw missing()
        }
    }

    private static func signed<T: FixedWidthInteger & SignedInteger>(
        _: T.Type, _ a: Tensor, _ b: Tensor, _ out: Tensor, _ plan: BroadcastPlan, _ f: (Int64, Int64) -> Int64
    ) {
        ElementLoops.zipElements(a, b, into: out, plan) { (x: T, y: T) in T(truncatingIfNeeded: f(Int64(x), Int64(y))) }
    }

    private static func unsigned<T: FixedWidthInteger & UnsignedInteger>(
        _: T.Type, _ a: Tensor, _ b: Tensor, _ out: Tensor, _ plan: BroadcastPlan, _ f: (UInt64, UInt64) -> UInt64
    ) {
        ElementLoops.zipElements(a, b, into: out, plan) { (x: T, y: T) in T(truncatingIfNeeded: f(UInt64(x), UInt64(y))) }
    }
}

/// A comparison of two elements of one type (bool output), by family.
struct ScalarCompare {
    var real: (Double, Double) -> Bool
    var signed: (Int64, Int64) -> Bool
    var unsigned: (UInt64, UInt64) -> Bool

    /// out (bool) = f(a, b) broadcast by `plan`.
    func apply(_ a: Tensor, _ b: Tensor, into out: Tensor, _ plan: BroadcastPlan, op: String) throws {
        let (real, signed, unsigned) = (self.real, self.signed, self.unsigned)
        func z<T>(_: T.Type, _ f: @escaping (T, T) -> Bool) {
            ElementLoops.zipElements(a, b, into: out, plan) { (x: T, y: T) -> UInt8 in f(x, y) ? 1 : 0 }
        }
        switch a.elementType {
        case .float: z(Float.self) { real(Double($0), Double($1)) }
        case .double: z(Double.self) { real($0, $1) }
        case .float16: z(Float16.self) { real(Double($0), Double($1)) }
        case .int8: z(Int8.self) { signed(Int64($0), Int64($1)) }
        case .int16: z(Int16.self) { signed(Int64($0), Int64($1)) }
        case .int32: z(Int32.self) { signed(Int64($0), Int64($1)) }
        case .int64: z(Int64.self) { signed($0, $1) }
        case .uint8, .bool: z(UInt8.self) { unsigned(UInt64($0), UInt64($1)) }
        case .uint16: z(UInt16.self) { unsigned(UInt64($0), UInt64($1)) }
        case .uint32: z(UInt32.self) { unsigned(UInt64($0), UInt64($1)) }
        case .uint64: z(UInt64.self) { unsigned($0, $1) }
        default: throw KernelError.unsupported("\(op) of \(a.elementType) tensors")
        }
    }
}
