import Foundation
import VernierGraph

/// Kernels of the Reduce family (same file name as the shape rules and cost formulas).
enum ReduceKernels {
    static let all: [String: KernelFactory] = {
        var table: [String: KernelFactory] = [
            "ArgMax": { ctx in try ArgReduceKernel(ctx, isMax: true) },
            "ArgMin": { ctx in try ArgReduceKernel(ctx, isMax: false) },
            "TopK": { ctx in try TopKKernel(ctx) },
        ]
        for op in ReduceKernel.Op.allCases {
            table[op.rawValue] = { ctx in try ReduceKernel(ctx, op: op) }
        }
        return table
    }()
}

/// Which input elements reduce into which output element: the input's dims with
/// `reduced` ones collapsed (the keepdims layout; dropping them does not move data).
struct ReduceLayout {
    let shape: [Int]
    let outputCount: Int
    let reducedCount: Int
    /// Per input dim, its stride in the output (0 for reduced dims).
    let outputStrides: [Int]

    init(shape: [Int], reduced: Set<Int>) {
        self.shape = shape
        let kept = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        var strides = GenericElements.strides(kept)
        for axis in reduced where axis < strides.count { strides[axis] = 0 }
        outputStrides = strides
        outputCount = kept.reduce(1, *)
        reducedCount = shape.enumerated().reduce(1) { reduced.contains($1.offset) ? $0 * $1.element : $0 }
    }

    /// Calls `body(inputIndex, outputIndex)` for every input element in row-major order.
    func forEach(_ body: (Int, Int) -> Void) {
        let total = shape.reduce(1, *)
        guard total > 0 else { return }
        guard let last = shape.last else { body(0, 0); return }
        let lastStride = outputStrides[shape.count - 1]
        var index = [Int](repeating: 0, count: shape.count)
        var input = 0, outBase = 0
        while input < total {
            for j in 0..<last { body(input + j, outBase + j * lastStride) }
            input += last
            var i = shape.count - 2
            while i >= 0 {
                index[i] += 1
                outBase += outputStrides[i]
                if index[i] < shape[i] { break }
                outBase -= index[i] * outputStrides[i]
                index[i] = 0
                i -= 1
            }
            if i < 0 { break }
        }
    }
}

/// ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
/// ReduceLogSum, ReduceLogSumExp, ReduceSumSquare. Axes come from the `axes` attribute,
/// or from input 1 from opset 13 (ReduceSum) / 18 (the others). Float sums, means, norms
/// and extrema over one contiguous block of axes take a SIMD path; the rest a Double loop.
final class ReduceKernel: Kernel {
    enum Op: String, CaseIterable {
        case sum = "ReduceSum", mean = "ReduceMean", max = "ReduceMax", min = "ReduceMin", prod = "ReduceProd"
        case l1 = "ReduceL1", l2 = "ReduceL2", logSum = "ReduceLogSum", logSumExp = "ReduceLogSumExp"
        case sumSquare = "ReduceSumSquare"
    }

    let op: Op
    let keepDims: Bool
    let noopWithEmptyAxes: Bool
    /// The axes attribute (nil when absent or when axes are an input).
    let attributeAxes: [Int]?
    let axesFromInput: Bool

    init(_ ctx: KernelContext, op: Op) throws {
        self.op = op
        keepDims = try ctx.node.int("keepdims", default: 1) != 0
        noopWithEmptyAxes = try ctx.node.int("noop_with_empty_axes", default: 0) != 0
        axesFromInput = ctx.opset >= (op == .sum ? 13 : 18)
        attributeAxes = axesFromInput ? nil : try ctx.node.ints("axes")
    }

    init(op: Op, keepDims: Bool = true, noopWithEmptyAxes: Bool = false, axes: [Int]? = nil) {
        self.op = op
        self.keepDims = keepDims
        self.noopWithEmptyAxes = noopWithEmptyAxes
        attributeAxes = axes
        axesFromInput = false
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        var axes = attributeAxes ?? []
        if axesFromInput, inputs.count > 1, let axesTensor = inputs[1] {
            guard let values = axesTensor.integers() else { throw KernelError.invalid("axes must be an integer tensor") }
            axes = values
        }
        guard GenericElements.supports(x.elementType) else { throw KernelError.unsupported("element type \(x.elementType)") }
        if axes.isEmpty {
            if noopWithEmptyAxes {
                // Reducing over no axes: each element is its own group.
                let y = try outputs.allocate(0, x.elementType, x.shape)
                GenericElements.store(try GenericElements.load(x).map { finish(initial(of: $0), count: 1) }, into: y)
                return
            }
            axes = Array(0..<x.rank)
        }
        let reduced = try Set(axes.map { try GenericElements.normalizedAxis($0, rank: x.rank) })
        var outShape: [Int] = []
        for (i, d) in x.shape.enumerated() {
            if reduced.contains(i) { if keepDims { outShape.append(1) } } else { outShape.append(d) }
        }
        let y = try outputs.allocate(0, x.elementType, outShape)
        let layout = ReduceLayout(shape: x.shape, reduced: reduced)
        if y.elementCount == 0 { return }

        let sorted = reduced.sorted()
        if x.elementType == .float, let first = sorted.first, let last = sorted.last, last - first == sorted.count - 1,
           let reducer = floatReducer {
            let outer = GenericElements.product(x.shape, 0..<first)
            let length = GenericElements.product(x.shape, first..<(last + 1))
            let inner = GenericElements.product(x.shape, (last + 1)..<x.rank)
            let xp = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
            let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
            switch reducer {
            case .sum: FloatReduce.run(xp, yp, outer, length, inner, SumReducer.self, finish: floatFinish)
            case .absSum: FloatReduce.run(xp, yp, outer, length, inner, AbsSumReducer.self, finish: floatFinish)
            case .squareSum: FloatReduce.run(xp, yp, outer, length, inner, SquareSumReducer.self, finish: floatFinish)
            case .max: FloatReduce.run(xp, yp, outer, length, inner, MaxReducer.self, finish: floatFinish)
            case .min: FloatReduce.run(xp, yp, outer, length, inner, MinReducer.self, finish: floatFinish)
            }
            return
        }

        let xs = try GenericElements.load(x)
        var acc = [Double](repeating: identity, count: layout.outputCount)
        if op == .logSumExp {
            var maxima = [Double](repeating: -.infinity, count: layout.outputCount)
            layout.forEach { i, o in maxima[o] = Swift.max(maxima[o], xs[i]) }
            for o in maxima.indices where !maxima[o].isFinite { maxima[o] = 0 }
            layout.forEach { i, o in acc[o] += Foundation.exp(xs[i] - maxima[o]) }
            for o in acc.indices { acc[o] = Foundation.log(acc[o]) + maxima[o] }
        } else {
            layout.forEach { i, o in acc[o] = combine(acc[o], initial(of: xs[i])) }
            let count = layout.reducedCount
            for o in acc.indices { acc[o] = finish(acc[o], count: count) }
        }
        GenericElements.store(acc, into: y)
    }

    /// The float SIMD reducer for this op, or nil when it takes the Double path.
    private var floatReducer: FloatReducerKind? {
        switch op {
        case .sum, .mean, .logSum: return .sum
        case .l1: return .absSum
        case .l2, .sumSquare: return .squareSum
        case .max: return .max
        case .min: return .min
        case .prod, .logSumExp: return nil
        }
    }

    private func floatFinish(_ value: Float, _ count: Int) -> Float {
        switch op {
        case .mean: return value / Float(count)
        case .l2: return value.squareRoot()
        case .logSum: return Foundation.log(value)
        default: return value
        }
    }

    private var identity: Double {
        switch op {
        case .max: return -.infinity
        case .min: return .infinity
        case .prod: return 1
        default: return 0
        }
    }

    /// One element's contribution.
    private func initial(of v: Double) -> Double {
        switch op {
        case .l1: return Swift.abs(v)
        case .l2, .sumSquare: return v * v
        case .logSumExp: return Foundation.exp(v)
        default: return v
        }
    }

    private func combine(_ a: Double, _ b: Double) -> Double {
        switch op {
        case .max: return Swift.max(a, b)
        case .min: return Swift.min(a, b)
        case .prod: return a * b
        default: return a + b
        }
    }

    private func finish(_ value: Double, count: Int) -> Double {
        switch op {
        case .mean: return value / Double(count)
        case .l2: return value.squareRoot()
        case .logSum, .logSumExp: return Foundation.log(value)
        default: return value
        }
    }
}

enum FloatReducerKind { case sum, absSum, squareSum, max, min }

/// One float reduction: what each element contributes (`map`) and how two partial
/// results combine. Generic code over it is specialized per reducer.
protocol FloatReducer {
    static var identity: Float { get }
    static func map(_ v: SIMD8<Float>) -> SIMD8<Float>
    static func map(_ v: Float) -> Float
    static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
    static func combine(_ a: Float, _ b: Float) -> Float
}

extension FloatReducer {
    @inline(__always) static func total(_ v: SIMD8<Float>) -> Float {
        var s = v[0]
        for i in 1..<8 { s = combine(s, v[i]) }
        return s
    }
}

enum SumReducer: FloatReducer {
    static var identity: Float { 0 }
    @inline(__always) static func map(_ v: SIMD8<Float>) -> SIMD8<Float> { v }
    @inline(__always) static func map(_ v: Float) -> Float { v }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
}

enum AbsSumReducer: FloatReducer {
    static var identity: Float { 0 }
    @inline(__always) static func map(_ v: SIMD8<Float>) -> SIMD8<Float> { NormMath.abs(v) }
    @inline(__always) static func map(_ v: Float) -> Float { Swift.abs(v) }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
}

enum SquareSumReducer: FloatReducer {
    static var identity: Float { 0 }
    @inline(__always) static func map(_ v: SIMD8<Float>) -> SIMD8<Float> { v * v }
    @inline(__always) static func map(_ v: Float) -> Float { v * v }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { a + b }
}

enum MaxReducer: FloatReducer {
    static var identity: Float { -.infinity }
    @inline(__always) static func map(_ v: SIMD8<Float>) -> SIMD8<Float> { v }
    @inline(__always) static func map(_ v: Float) -> Float { v }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { NormMath.maximum(a, b) }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { Swift.max(a, b) }
}

enum MinReducer: FloatReducer {
    static var identity: Float { .infinity }
    @inline(__always) static func map(_ v: SIMD8<Float>) -> SIMD8<Float> { v }
    @inline(__always) static func map(_ v: Float) -> Float { v }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { NormMath.minimum(a, b) }
    @inline(__always) static func combine(_ a: Float, _ b: Float) -> Float { Swift.min(a, b) }
}

/// Float reduction of x viewed as `[outer, length, inner]` over `length`.
enum FloatReduce {
    static func run<R: FloatReducer>(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                     _ outer: Int, _ length: Int, _ inner: Int, _: R.Type,
                                     finish: (Float, Int) -> Float) {
        if inner == 1 {
            ThreadPool.parallelFor(outer, minimumPerThread: NormalizationKernels.rowsPerThread(length)) { range in
                for row in range { y[row] = finish(reduceRow(x + row * length, length, R.self), length) }
            }
            return
        }
        ThreadPool.parallelFor(outer, minimumPerThread: NormalizationKernels.rowsPerThread(length * inner)) { range in
            for o in range {
                let block = x + o * length * inner, out = y + o * inner
                // Read x[o, 0, i] before writing y[o, i]: y may overlap x's consumed part.
                for i in 0..<inner { out[i] = length > 0 ? R.map(block[i]) : R.identity }
                for k in 1..<max(length, 1) {
                    let row = block + k * inner
                    var i = 0
                    while i + 8 <= inner {
                        NormMath.store(R.combine(NormMath.load(out + i), R.map(NormMath.load(row + i))), out + i)
                        i += 8
                    }
                    while i < inner { out[i] = R.combine(out[i], R.map(row[i])); i += 1 }
                }
                for i in 0..<inner { out[i] = finish(out[i], length) }
            }
        }
    }

    @inline(__always)
    static func reduceRow<R: FloatReducer>(_ p: UnsafePointer<Float>, _ n: Int, _: R.Type) -> Float {
        var a = SIMD8<Float>(repeating: R.identity), b = a
        var i = 0
        while i + 16 <= n {
            a = R.combine(a, R.map(NormMath.load(p + i)))
            b = R.combine(b, R.map(NormMath.load(p + i + 8)))
            i += 16
        }
        if i + 8 <= n { a = R.combine(a, R.map(NormMath.load(p + i))); i += 8 }
        var s = R.total(R.combine(a, b))
        while i < n { s = R.combine(s, R.map(p[i])); i += 1 }
        return s
    }
}

/// Calls `body` with the elements of `t` typed as their Swift scalar type.
private func withComparableElements<R>(_ t: Tensor, _ body: (any ComparableElements) throws -> R) throws -> R {
    switch t.elementType {
    case .float: return try body(TypedElements<Float>(t))
    case .double: return try body(TypedElements<Double>(t))
    case .float16: return try body(TypedElements<Float16>(t))
    case .int8: return try body(TypedElements<Int8>(t))
    case .int16: return try body(TypedElements<Int16>(t))
    case .int32: return try body(TypedElements<Int32>(t))
    case .int64: return try body(TypedElements<Int64>(t))
    case .uint8, .bool: return try body(TypedElements<UInt8>(t))
    case .uint16: return try body(TypedElements<UInt16>(t))
    case .uint32: return try body(TypedElements<UInt32>(t))
    case .uint64: return try body(TypedElements<UInt64>(t))
    default: throw KernelError.unsupported("element type \(t.elementType)")
    }
}

protocol ComparableElements {
    /// Index along a `[outer, length, inner]` slice of the first (or last) extreme element.
    func argExtreme(outer: Int, length: Int, inner: Int, isMax: Bool, selectLast: Bool, into out: UnsafeMutablePointer<Int64>)
    /// TopK along `[outer, length, inner]`: values into `values` (same element type), indices into `indices`.
    func topK(outer: Int, length: Int, inner: Int, k: Int, largest: Bool, values: Tensor, indices: UnsafeMutablePointer<Int64>)
}

struct TypedElements<T: Comparable>: ComparableElements {
    let p: UnsafePointer<T>

    init(_ t: Tensor) { p = UnsafePointer(t.rawPointer.assumingMemoryBound(to: T.self)) }

    func argExtreme(outer: Int, length: Int, inner: Int, isMax: Bool, selectLast: Bool, into out: UnsafeMutablePointer<Int64>) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var best = p[base], index = 0
                for k in 1..<max(length, 1) {
                    let v = p[base + k * inner]
                    let better = isMax ? (selectLast ? v >= best : v > best) : (selectLast ? v <= best : v < best)
                    if better { best = v; index = k }
                }
                out[o * inner + i] = Int64(index)
            }
        }
    }

    func topK(outer: Int, length: Int, inner: Int, k: Int, largest: Bool, values: Tensor, indices: UnsafeMutablePointer<Int64>) {
        let out = values.rawPointer.assumingMemoryBound(to: T.self)
        var order = [Int](repeating: 0, count: length)
        let p = self.p
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                // Ties go to the lower index, in both directions.
                let before: (Int, Int) -> Bool = { a, b in
                    let va = p[base + a * inner], vb = p[base + b * inner]
                    if va == vb { return a < b }
                    return largest ? va > vb : va < vb
                }
                for j in 0..<length { order[j] = j }
                order.sort(by: before)
                for j in 0..<k {
                    out[(o * k + j) * inner + i] = p[base + order[j] * inner]
                    indices[(o * k + j) * inner + i] = Int64(order[j])
                }
            }
        }
    }
}

/// ArgMax and ArgMin along `axis` (keepdims, select_last_index), int64 indices.
final class ArgReduceKernel: Kernel {
    let isMax: Bool
    let axis: Int
    let keepDims: Bool
    let selectLast: Bool

    init(_ ctx: KernelContext, isMax: Bool) throws {
        self.isMax = isMax
        axis = try ctx.node.int("axis", default: 0)
        keepDims = try ctx.node.int("keepdims", default: 1) != 0
        selectLast = try ctx.node.int("select_last_index", default: 0) != 0
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let axis = try GenericElements.normalizedAxis(self.axis, rank: x.rank)
        guard x.rank > 0 else { throw KernelError.invalid("ArgMax/ArgMin needs a tensor of rank 1 or more") }
        let length = x.shape[axis]
        var outShape = x.shape
        if keepDims { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let y = try outputs.allocate(0, .int64, outShape)
        if y.elementCount == 0 { return }
        guard length > 0 else { throw KernelError.invalid("cannot take ArgMax/ArgMin over an empty axis \(axis)") }
        let outer = GenericElements.product(x.shape, 0..<axis), inner = GenericElements.product(x.shape, (axis + 1)..<x.rank)
        let out = y.rawPointer.assumingMemoryBound(to: Int64.self)
        try withComparableElements(x) {
            $0.argExtreme(outer: outer, length: length, inner: inner, isMax: isMax, selectLast: selectLast, into: out)
        }
    }
}

/// TopK: the k largest (or smallest) elements along `axis`, sorted, with their indices;
/// equal values keep the lower index first. K is input 1 from opset 10, else attribute `k`.
final class TopKKernel: Kernel {
    let axis: Int
    let largest: Bool
    let attributeK: Int?

    init(_ ctx: KernelContext) throws {
        axis = try ctx.node.int("axis", default: -1)
        largest = try ctx.node.int("largest", default: 1) != 0
        attributeK = ctx.opset < 10 ? try ctx.node.int("k") : nil
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let k: Int
        if let attributeK {
            k = attributeK
        } else {
            guard let values = try requiredInput(inputs, 1).integers(), values.count == 1 else {
                throw KernelError.invalid("K must be an integer tensor holding one value")
            }
            k = values[0]
        }
        guard x.rank > 0 else { throw KernelError.invalid("TopK needs a tensor of rank 1 or more") }
        let axis = try GenericElements.normalizedAxis(self.axis, rank: x.rank)
        let length = x.shape[axis]
        guard k >= 0, k <= length else { throw KernelError.invalid("K = \(k) is outside 0...\(length), the size of axis \(axis)") }
        var outShape = x.shape
        outShape[axis] = k
        let values = try outputs.allocate(0, x.elementType, outShape)
        let indices = try outputs.allocate(1, .int64, outShape)
        if values.elementCount == 0 { return }
        let outer = GenericElements.product(x.shape, 0..<axis), inner = GenericElements.product(x.shape, (axis + 1)..<x.rank)
        let out = indices.rawPointer.assumingMemoryBound(to: Int64.self)
        try withComparableElements(x) {
            $0.topK(outer: outer, length: length, inner: inner, k: k, largest: largest, values: values, indices: out)
        }
    }
}
