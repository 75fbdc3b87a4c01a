import Foundation

/// Plain element-wise references: one element at a time, broadcasting by a full
/// multi-index per element, math in Double. The fast kernels are tested against these.
extension ReferenceKernels {
    /// log(1 + e^x) without overflow for large x.
    public static func softplus(_ x: Double) -> Double {
        x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x))
    }

    /// x/2 (1 + erf(x / sqrt 2)).
    public static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot())) }

    /// x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    public static func geluTanh(_ x: Double) -> Double {
        0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }

    public static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// f applied to each element of a float tensor.
    public static func map(_ x: Tensor, _ f: (Double) -> Double) -> Tensor {
        Tensor(shape: x.shape, values: x.scalars(as: Float.self).map { Float(f(Double($0))) })
    }

    /// The NumPy broadcast of two shapes.
    public static func broadcastShape(_ shapes: [[Int]]) -> [Int]? {
        var out: [Int] = []
        for shape in shapes {
            guard let next = broadcast(out, shape) else { return nil }
            out = next
        }
        return out
    }

    /// The flat index into `shape` (right-aligned, broadcast) of output multi-index `index`.
    static func broadcastIndex(_ index: [Int], _ shape: [Int]) -> Int {
        var flat = 0
        let offset = index.count - shape.count
        for (j, d) in shape.enumerated() { flat = flat * d + (d == 1 ? 0 : index[j + offset]) }
        return flat
    }

    /// Multi-index of flat position `i` in `shape`.
    static func multiIndex(_ i: Int, _ shape: [Int]) -> [Int] {
        var index = [Int](repeating: 0, count: shape.count)
        var rest = i
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    /// f over float tensors broadcast together (any number of inputs).
    public static func broadcastMap(_ inputs: [Tensor], _ f: ([Double]) -> Double) -> Tensor {
        guard let shape = broadcastShape(inputs.map(\.shape)) else {
            preconditionFailure("shapes \(inputs.map(\.shape)) do not broadcast")
        }
        let values = inputs.map { $0.scalars(as: Float.self) }
        let count = shape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let index = multiIndex(i, shape)
            let args = inputs.indices.map { Double(values[$0][broadcastIndex(index, inputs[$0].shape)]) }
            out[i] = Float(f(args))
        }
        return Tensor(shape: shape, values: out)
    }

    /// Where with a bool condition and float branches.
    public static func select(_ condition: Tensor, _ x: Tensor, _ y: Tensor) -> Tensor {
        guard let shape = broadcastShape([condition.shape, x.shape, y.shape]) else {
            preconditionFailure("shapes do not broadcast")
        }
        let c = condition.scalars(as: UInt8.self), xv = x.scalars(as: Float.self), yv = y.scalars(as: Float.self)
        let count = shape.reduce(1, *)
        let out = (0..<count).map { i -> Float in
            let index = multiIndex(i, shape)
            return c[broadcastIndex(index, condition.shape)] != 0
                ? xv[broadcastIndex(index, x.shape)] : yv[broadcastIndex(index, y.shape)]
        }
        return Tensor(shape: shape, values: out)
    }

    /// CumSum of a float tensor along `axis`, summing in Double.
    public static func cumSum(_ x: Tensor, axis: Int, exclusive: Bool, reverse: Bool) -> Tensor {
        let v = x.scalars(as: Float.self)
        var out = [Float](repeating: 0, count: v.count)
        let length = x.shape[axis]
        for i in 0..<v.count {
            let index = multiIndex(i, x.shape)
            var total = 0.0
            for t in 0..<length {
                let included = reverse ? (exclusive ? t > index[axis] : t >= index[axis])
                                       : (exclusive ? t < index[axis] : t <= index[axis])
                guard included else { continue }
                var source = index
                source[axis] = t
                total += Double(v[broadcastIndex(source, x.shape)])
            }
            out[i] = Float(total)
        }
        return Tensor(shape: x.shape, values: out)
    }

    /// Trilu of a float tensor.
    public static func trilu(_ x: Tensor, k: Int, upper: Bool) -> Tensor {
        let v = x.scalars(as: Float.self)
        let r = x.rank
        let out = v.indices.map { i -> Float in
            let index = multiIndex(i, x.shape)
            let diagonal = index[r - 1] - index[r - 2]
            return (upper ? diagonal >= k : diagonal <= k) ? v[i] : 0
        }
        return Tensor(shape: x.shape, values: out)
    }

    /// ReverseSequence of a float tensor.
    public static func reverseSequence(_ x: Tensor, lengths: [Int], timeAxis: Int) -> Tensor {
        let v = x.scalars(as: Float.self)
        let batchAxis = 1 - timeAxis
        let out = v.indices.map { i -> Float in
            var index = multiIndex(i, x.shape)
            let length = lengths[index[batchAxis]]
            if index[timeAxis] < length { index[timeAxis] = length - 1 - index[timeAxis] }
            return v[broadcastIndex(index, x.shape)]
        }
        return Tensor(shape: x.shape, values: out)
    }
}
