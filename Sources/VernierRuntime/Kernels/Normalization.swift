import CVernierSIMD
import Foundation
import VernierGraph

/// Kernels of the Normalization family (same file name as the shape rules and cost formulas).
enum NormalizationKernels {
    static let all: [String: KernelFactory] = [
        "BatchNormalization": { ctx in try BatchNormKernel(ctx) },
        "LayerNormalization": { ctx in
            try RowNormKernel(mode: .layer, axis: try ctx.node.int("axis", default: -1),
                              epsilon: try ctx.node.float("epsilon", default: 1e-5),
                              stashType: try ctx.node.int("stash_type", default: 1))
        },
        "RMSNormalization": { ctx in
            try RowNormKernel(mode: .rms, axis: try ctx.node.int("axis", default: -1),
                              epsilon: try ctx.node.float("epsilon", default: 1e-5),
                              stashType: try ctx.node.int("stash_type", default: 1))
        },
        "InstanceNormalization": { ctx in
            GroupNormKernel(groups: nil, epsilon: try ctx.node.float("epsilon", default: 1e-5), perChannelAffine: true)
        },
        "GroupNormalization": { ctx in
            let groups = try ctx.node.int("num_groups")
            guard groups >= 1 else { throw KernelError.invalid("num_groups \(groups) must be positive") }
            // Opset 18 had one scale and bias per group; opset 21 one per channel.
            return GroupNormKernel(groups: groups, epsilon: try ctx.node.float("epsilon", default: 1e-5),
                                   perChannelAffine: ctx.opset >= 21)
        },
        "LpNormalization": { ctx in
            let p = try ctx.node.int("p", default: 2)
            guard p == 1 || p == 2 else { throw KernelError.unsupported("p = \(p); LpNormalization takes p = 1 or 2") }
            return try LpNormKernel(axis: try ctx.node.int("axis", default: -1), p: p)
        },
        "MeanVarianceNormalization": { ctx in MVNKernel(axes: try ctx.node.ints("axes") ?? [0, 2, 3]) },
        "LRN": { ctx in try LRNKernel(ctx.node) },
        "Softmax": { ctx in try SoftmaxKernel(ctx, mode: .softmax) },
        "LogSoftmax": { ctx in try SoftmaxKernel(ctx, mode: .logSoftmax) },
        "Hardmax": { ctx in try SoftmaxKernel(ctx, mode: .hardmax) },
    ]

    /// Rows per thread so that each thread gets at least ~16K elements.
    static func rowsPerThread(_ rowSize: Int) -> Int { max(1, 16_384 / max(1, rowSize)) }

    /// Float data of a float tensor, or nil for other element types.
    static func floats(_ t: Tensor?) -> UnsafeMutablePointer<Float>? {
        guard let t, t.elementType == .float else { return nil }
        return t.rawPointer.assumingMemoryBound(to: Float.self)
    }

    /// `values` (of `shape`) broadcast unidirectionally to `target` (numpy rules), row-major.
    static func broadcast(_ values: [Double], shape: [Int], to target: [Int], name: String) throws -> [Double] {
        let count = target.reduce(1, *)
        if shape == target || (values.count == count && shape.drop(while: { $0 == 1 }) == target.drop(while: { $0 == 1 })) {
            return values
        }
        guard shape.count <= target.count else {
            throw KernelError.invalid("\(name) of shape \(shape) does not broadcast to \(target)")
        }
        let padded = Array(repeating: 1, count: target.count - shape.count) + shape
        for (a, b) in zip(padded, target) where a != b && a != 1 {
            throw KernelError.invalid("\(name) of shape \(shape) does not broadcast to \(target)")
        }
        let sourceStrides = GenericElements.strides(padded).enumerated().map { padded[$0.offset] == 1 ? 0 : $0.element }
        var result = [Double](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: target.count)
        for flat in 0..<count {
            var offset = 0
            for i in 0..<target.count { offset += index[i] * sourceStrides[i] }
            result[flat] = values[offset]
            var i = target.count - 1
            while i >= 0 {
                index[i] += 1
                if index[i] < target[i] { break }
                index[i] = 0
                i -= 1
            }
        }
        return result
    }
}

/// Float row statistics and the affine step, shared by the row normalizations.
enum RowNorm {
    /// Mean of a row and 1/sqrt(variance + epsilon), two passes (mean, then squared
    /// deviations) so a large mean does not cancel the variance.
    @inline(__always)
    static func meanAndInverseStd(_ p: UnsafePointer<Float>, _ n: Int, epsilon: Float) -> (Float, Float) {
        let mean = NormMath.sum(p, n) / Float(n)
        let m = SIMD8<Float>(repeating: mean)
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let d0 = NormMath.load(p + i) - m, d1 = NormMath.load(p + i + 8) - m
            a += d0 * d0
            b += d1 * d1
            i += 16
        }
        if i + 8 <= n { let d = NormMath.load(p + i) - m; a += d * d; i += 8 }
        var squares = (a + b).sum()
        while i < n { let d = p[i] - mean; squares += d * d; i += 1 }
        return (mean, 1 / (squares / Float(n) + epsilon).squareRoot())
    }

    /// 1/sqrt(mean(x²) + epsilon).
    @inline(__always)
    static func inverseRms(_ p: UnsafePointer<Float>, _ n: Int, epsilon: Float) -> Float {
        var a = SIMD8<Float>()
        var i = 0
        while i + 8 <= n { let v = NormMath.load(p + i); a += v * v; i += 8 }
        var squares = a.sum()
        while i < n { squares += p[i] * p[i]; i += 1 }
        return 1 / (squares / Float(n) + epsilon).squareRoot()
    }

    /// y = (x - mean)·invStd·scale[i] + bias[i] (scale, bias per element; bias optional).
    /// Safe when y == x.
    @inline(__always)
    static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, mean: Float, invStd: Float,
                       scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?) {
        let m = SIMD8<Float>(repeating: mean), s = SIMD8<Float>(repeating: invStd)
        var i = 0
        if let bias {
            while i + 8 <= n {
                NormMath.store((NormMath.load(x + i) - m) * s * NormMath.load(scale + i) + NormMath.load(bias + i), y + i)
                i += 8
            }
            while i < n { y[i] = (x[i] - mean) * invStd * scale[i] + bias[i]; i += 1 }
        } else {
            while i + 8 <= n {
                NormMath.store((NormMath.load(x + i) - m) * s * NormMath.load(scale + i), y + i)
                i += 8
            }
            while i < n { y[i] = (x[i] - mean) * invStd * scale[i]; i += 1 }
        }
    }

    /// y = x·a + b with scalars. Safe when y == x.
    @inline(__always)
    static func scaleShift(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ b: Float,
                           relu: Bool = false) {
        let va = SIMD8<Float>(repeating: a), vb = SIMD8<Float>(repeating: b)
        @inline(__always) func out(_ v: SIMD8<Float>) -> SIMD8<Float> { relu ? ReluOp()(v) : v }
        var i = 0
        while i + 16 <= n {
            NormMath.store(out(NormMath.load(x + i) * va + vb), y + i)
            NormMath.store(out(NormMath.load(x + i + 8) * va + vb), y + i + 8)
            i += 16
        }
        while i + 8 <= n { NormMath.store(out(NormMath.load(x + i) * va + vb), y + i); i += 8 }
        while i < n {
            let v = x[i] * a + b
            y[i] = relu && v < 0 ? 0 : v
            i += 1
        }
    }
}

// MARK: - BatchNormalization

/// BatchNormalization: inference form `y = (x - mean) / sqrt(var + ε) · scale + bias` per
/// channel, and the training form (opset 14+, `training_mode = 1`): batch statistics, and
/// the running mean and variance as outputs 1 and 2.
final class BatchNormKernel: Kernel {
    let epsilon: Double
    let momentum: Double
    let training: Bool
    /// A Relu fused after it (`GraphPasses.fuseActivations`).
    let relu: Bool

    init(_ ctx: KernelContext) throws {
        epsilon = Double(try ctx.node.float("epsilon", default: 1e-5))
        momentum = Double(try ctx.node.float("momentum", default: 0.9))
        let mode = try ctx.node.int("training_mode", default: 0)
        training = ctx.opset >= 14 && mode != 0
        relu = try Self.fusesRelu(ctx.node)
    }

    /// Whether the node carries a fused Relu, the one epilogue a BatchNormalization
    /// takes; throws on any other.
    static func fusesRelu(_ node: Node) throws -> Bool {
        let epilogue = try FusedEpilogue(node: node)
        guard !epilogue.addsResidual, epilogue.activation == nil || epilogue.activation == .relu else {
            throw KernelError.unsupported("BatchNormalization with a fused epilogue other than Relu")
        }
        return epilogue.activation == .relu
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.rank >= 2 else { throw KernelError.invalid("input shape \(x.shape) needs a channel dim") }
        let n = x.shape[0], c = x.shape[1]
        let spatial = GenericElements.product(x.shape, 2..<x.rank)
        let params = try Self.parameters(inputs, channels: c)
        var mean = params[2], variance = params[3]
        guard GenericElements.supports(x.elementType), x.elementType != .bool else {
            throw KernelError.unsupported("element type \(x.elementType)")
        }
        if training {
            let xs = try GenericElements.load(x)
            let count = Double(n * spatial)
            for ch in 0..<c {
                var sum = 0.0, squares = 0.0
                for b in 0..<n {
                    let base = (b * c + ch) * spatial
                    for i in 0..<spatial { sum += xs[base + i] }
                }
                let m = sum / count
                for b in 0..<n {
                    let base = (b * c + ch) * spatial
                    for i in 0..<spatial { let d = xs[base + i] - m; squares += d * d }
                }
                mean[ch] = m
                variance[ch] = squares / count
            }
            for (index, (running, batch)) in [(params[2], mean), (params[3], variance)].enumerated()
            where outputs.isRequested(index + 1) {
                let out = try outputs.allocate(index + 1, inputs[3 + index]?.elementType ?? x.elementType, [c])
                GenericElements.store(zip(running, batch).map { $0 * momentum + $1 * (1 - momentum) }, into: out)
            }
        }
        let (a, b) = Self.scaleShift(scale: params[0], bias: params[1], mean: mean, variance: variance, epsilon: epsilon)
        let y = try outputs.allocate(0, x.elementType, x.shape)
        let planes = n * c
        if let xp = NormalizationKernels.floats(x), let yp = NormalizationKernels.floats(y) {
            let af = a.map { Float($0) }, bf = b.map { Float($0) }
            let relu = self.relu
            ThreadPool.parallelFor(planes, minimumPerThread: NormalizationKernels.rowsPerThread(spatial)) { range in
                for plane in range {
                    let ch = plane % c
                    RowNorm.scaleShift(xp + plane * spatial, yp + plane * spatial, spatial, af[ch], bf[ch], relu: relu)
                }
            }
            return
        }
        var values = try GenericElements.load(x)
        for plane in 0..<planes {
            let ch = plane % c
            for i in (plane * spatial)..<((plane + 1) * spatial) {
                let v = values[i] * a[ch] + b[ch]
                values[i] = relu && v < 0 ? 0 : v
            }
        }
        GenericElements.store(values, into: y)
    }
}

extension BatchNormKernel {
    /// Inputs 1-4 (scale, B, input_mean, input_var) as doubles, each one value per channel.
    static func parameters(_ inputs: [Tensor?], channels c: Int) throws -> [[Double]] {
        try [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")].map { i, name in
            let t = try requiredInput(inputs, i)
            guard t.elementCount == c else {
                throw KernelError.invalid("\(name) has \(t.elementCount) elements, expected one per channel (\(c))")
            }
            return try GenericElements.load(t)
        }
    }

    /// Per channel `y = x·a + b`: `a = scale / sqrt(var + ε)`, `b = B - mean·a`.
    static func scaleShift(scale: [Double], bias: [Double], mean: [Double], variance: [Double], epsilon: Double)
        -> (a: [Double], b: [Double]) {
        let a = scale.indices.map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
        return (a, bias.indices.map { bias[$0] - mean[$0] * a[$0] })
    }
}

// MARK: - LayerNormalization, RMSNormalization

/// LayerNormalization and RMSNormalization: each row `x[i, axis...]` normalized, then
/// scaled (and shifted) element-wise by inputs broadcast to the row's shape.
final class RowNormKernel: Kernel {
    enum Mode { case layer, rms }
    let mode: Mode
    let axis: Int
    let epsilon: Float
    let stashType: ElementType

    init(mode: Mode, axis: Int, epsilon: Float, stashType: Int) throws {
        self.mode = mode
        self.axis = axis
        self.epsilon = epsilon
        guard let type = ElementType(rawValue: stashType), GenericElements.supports(type) else {
            throw KernelError.unsupported("stash_type \(stashType)")
        }
        self.stashType = type
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let scaleTensor = try requiredInput(inputs, 1)
        let biasTensor = mode == .layer && inputs.count > 2 ? inputs[2] : nil
        let axis = try GenericElements.normalizedAxis(self.axis, rank: x.rank)
        let rows = GenericElements.product(x.shape, 0..<axis)
        let cols = GenericElements.product(x.shape, axis..<x.rank)
        let rowShape = Array(x.shape[axis...])
        guard GenericElements.supports(x.elementType), x.elementType != .bool else {
            throw KernelError.unsupported("element type \(x.elementType)")
        }
        let y = try outputs.allocate(0, x.elementType, x.shape)
        let statsShape = Array(x.shape[0..<axis]) + Array(repeating: 1, count: x.rank - axis)
        let meanOut = mode == .layer && outputs.isRequested(1) ? try outputs.allocate(1, stashType, statsShape) : nil
        let invOut = mode == .layer && outputs.isRequested(2) ? try outputs.allocate(2, stashType, statsShape) : nil
        if rows == 0 || cols == 0 { return }

        // The fast path: float everything, scale and bias already of the row's size.
        if let xp = NormalizationKernels.floats(x), let yp = NormalizationKernels.floats(y),
           let sp = NormalizationKernels.floats(scaleTensor), scaleTensor.elementCount == cols,
           biasTensor == nil || (biasTensor?.elementType == .float && biasTensor?.elementCount == cols),
           meanOut == nil || meanOut?.elementType == .float, invOut == nil || invOut?.elementType == .float {
            let bp = UnsafePointer(NormalizationKernels.floats(biasTensor))
            let mp = NormalizationKernels.floats(meanOut), ip = NormalizationKernels.floats(invOut)
            let mode = self.mode, epsilon = self.epsilon
            ThreadPool.parallelFor(rows, minimumPerThread: NormalizationKernels.rowsPerThread(cols)) { range in
                for row in range {
                    let xr = xp + row * cols
                    let mean: Float, inv: Float
                    if mode == .layer {
                        (mean, inv) = RowNorm.meanAndInverseStd(xr, cols, epsilon: epsilon)
                    } else {
                        (mean, inv) = (0, RowNorm.inverseRms(xr, cols, epsilon: epsilon))
                    }
                    RowNorm.affine(xr, yp + row * cols, cols, mean: mean, invStd: inv, scale: sp, bias: bp)
                    mp?[row] = mean
                    ip?[row] = inv
                }
            }
            return
        }

        let xs = try GenericElements.load(x)
        let scale = try NormalizationKernels.broadcast(try GenericElements.load(scaleTensor), shape: scaleTensor.shape,
                                                       to: rowShape, name: "Scale")
        let bias = try biasTensor.map {
            try NormalizationKernels.broadcast(try GenericElements.load($0), shape: $0.shape, to: rowShape, name: "B")
        }
        var ys = [Double](repeating: 0, count: xs.count)
        var means = [Double](repeating: 0, count: rows), invs = [Double](repeating: 0, count: rows)
        for row in 0..<rows {
            let base = row * cols
            var mean = 0.0
            if mode == .layer {
                for i in 0..<cols { mean += xs[base + i] }
                mean /= Double(cols)
            }
            var squares = 0.0
            for i in 0..<cols { let d = xs[base + i] - mean; squares += d * d }
            let inv = 1 / (squares / Double(cols) + Double(epsilon)).squareRoot()
            for i in 0..<cols { ys[base + i] = (xs[base + i] - mean) * inv * scale[i] + (bias?[i] ?? 0) }
            means[row] = mean
            invs[row] = inv
        }
        GenericElements.store(ys, into: y)
        if let meanOut { GenericElements.store(means, into: meanOut) }
        if let invOut { GenericElements.store(invs, into: invOut) }
    }
}

// MARK: - InstanceNormalization, GroupNormalization

/// InstanceNormalization (`groups` nil: one group per channel) and GroupNormalization:
/// mean and variance over each (n, group) block, then a per-channel (or per-group, opset
/// 18) scale and bias.
final class GroupNormKernel: Kernel {
    let groups: Int?
    let epsilon: Float
    let perChannelAffine: Bool

    init(groups: Int?, epsilon: Float, perChannelAffine: Bool) {
        self.groups = groups
        self.epsilon = epsilon
        self.perChannelAffine = perChannelAffine
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let scaleTensor = try requiredInput(inputs, 1), biasTensor = try requiredInput(inputs, 2)
        guard x.rank >= 2 else { throw KernelError.invalid("input shape \(x.shape) needs a channel dim") }
        let n = x.shape[0], c = x.shape[1]
        let g = groups ?? c
        guard c % g == 0 else { throw KernelError.invalid("\(c) channels do not split into \(g) groups") }
        let affineCount = perChannelAffine ? c : g
        guard scaleTensor.elementCount == affineCount, biasTensor.elementCount == affineCount else {
            throw KernelError.invalid("scale and bias have \(scaleTensor.elementCount) and \(biasTensor.elementCount) "
                                      + "elements, expected \(affineCount)")
        }
        guard GenericElements.supports(x.elementType), x.elementType != .bool else {
            throw KernelError.unsupported("element type \(x.elementType)")
        }
        let spatial = GenericElements.product(x.shape, 2..<x.rank)
        let channelsPerGroup = c / g
        let blockSize = channelsPerGroup * spatial
        let y = try outputs.allocate(0, x.elementType, x.shape)
        if y.elementCount == 0 { return }
        let scale = try GenericElements.load(scaleTensor).map { Float($0) }
        let bias = try GenericElements.load(biasTensor).map { Float($0) }
        let perChannel = perChannelAffine
        let epsilon = self.epsilon

        if let xp = NormalizationKernels.floats(x), let yp = NormalizationKernels.floats(y) {
            ThreadPool.parallelFor(n * g, minimumPerThread: NormalizationKernels.rowsPerThread(blockSize)) { range in
                for block in range {
                    let xb = xp + block * blockSize, yb = yp + block * blockSize
                    let (mean, inv) = RowNorm.meanAndInverseStd(xb, blockSize, epsilon: epsilon)
                    let group = block % g
                    for k in 0..<channelsPerGroup {
                        let a = perChannel ? scale[group * channelsPerGroup + k] : scale[group]
                        let b = perChannel ? bias[group * channelsPerGroup + k] : bias[group]
                        RowNorm.scaleShift(xb + k * spatial, yb + k * spatial, spatial, inv * a, b - mean * inv * a)
                    }
                }
            }
            return
        }
        var values = try GenericElements.load(x)
        for block in 0..<(n * g) {
            let base = block * blockSize
            var mean = 0.0
            for i in 0..<blockSize { mean += values[base + i] }
            mean /= Double(blockSize)
            var squares = 0.0
            for i in 0..<blockSize { let d = values[base + i] - mean; squares += d * d }
            let inv = 1 / (squares / Double(blockSize) + Double(epsilon)).squareRoot()
            let group = block % g
            for i in 0..<blockSize {
                let ch = group * channelsPerGroup + i / spatial
                let a = Double(perChannel ? scale[ch] : scale[group]), b = Double(perChannel ? bias[ch] : bias[group])
                values[base + i] = (values[base + i] - mean) * inv * a + b
            }
        }
        GenericElements.store(values, into: y)
    }
}

// MARK: - LpNormalization, MeanVarianceNormalization, LRN

/// LpNormalization: x divided by its L1 or L2 norm along `axis` (a zero norm leaves zeros).
final class LpNormKernel: Kernel {
    let axis: Int
    let p: Int

    init(axis: Int, p: Int) throws {
        self.axis = axis
        self.p = p
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let axis = try GenericElements.normalizedAxis(self.axis, rank: x.rank)
        let outer = GenericElements.product(x.shape, 0..<axis), length = x.shape[axis]
        let inner = GenericElements.product(x.shape, (axis + 1)..<x.rank)
        var values = try GenericElements.load(x)
        let y = try outputs.allocate(0, x.elementType, x.shape)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var norm = 0.0
                for k in 0..<length {
                    let v = values[base + k * inner]
                    norm += p == 1 ? Swift.abs(v) : v * v
                }
                if p == 2 { norm = norm.squareRoot() }
                for k in 0..<length { values[base + k * inner] = norm == 0 ? 0 : values[base + k * inner] / norm }
            }
        }
        GenericElements.store(values, into: y)
    }
}

/// MeanVarianceNormalization: `(x - E[x]) / (sqrt(E[x²] - E[x]²) + 1e-9)` over `axes`,
/// as the op's ONNX function defines it.
final class MVNKernel: Kernel {
    let axes: [Int]

    init(axes: [Int]) { self.axes = axes }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let reduced = try Set(axes.map { try GenericElements.normalizedAxis($0, rank: x.rank) })
        let layout = ReduceLayout(shape: x.shape, reduced: reduced)
        var values = try GenericElements.load(x)
        var sums = [Double](repeating: 0, count: layout.outputCount), squares = sums
        layout.forEach { i, o in sums[o] += values[i]; squares[o] += values[i] * values[i] }
        let count = Double(max(layout.reducedCount, 1))
        var mean = sums, std = sums
        for o in 0..<sums.count {
            mean[o] = sums[o] / count
            std[o] = Swift.max(squares[o] / count - mean[o] * mean[o], 0).squareRoot() + 1e-9
        }
        layout.forEach { i, o in values[i] = (values[i] - mean[o]) / std[o] }
        let y = try outputs.allocate(0, x.elementType, x.shape)
        GenericElements.store(values, into: y)
    }
}

/// LRN: `x / (bias + alpha/size · Σ x²)^beta`, the sum over `size` neighbouring channels.
final class LRNKernel: Kernel {
    let size: Int
    let alpha: Double, beta: Double, bias: Double

    init(_ node: Node) throws {
        size = try node.int("size")
        guard size >= 1 else { throw KernelError.invalid("size \(size) must be positive") }
        alpha = Double(try node.float("alpha", default: 1e-4))
        beta = Double(try node.float("beta", default: 0.75))
        bias = Double(try node.float("bias", default: 1))
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.rank >= 2 else { throw KernelError.invalid("input shape \(x.shape) needs a channel dim") }
        let n = x.shape[0], c = x.shape[1]
        let spatial = GenericElements.product(x.shape, 2..<x.rank)
        let xs = try GenericElements.load(x)
        var ys = [Double](repeating: 0, count: xs.count)
        let before = (size - 1) / 2, after = size - 1 - before
        for b in 0..<n {
            for ch in 0..<c {
                let lo = Swift.max(0, ch - before), hi = Swift.min(c - 1, ch + after)
                for i in 0..<spatial {
                    var sum = 0.0
                    if lo <= hi {
                        for k in lo...hi { let v = xs[(b * c + k) * spatial + i]; sum += v * v }
                    }
                    let index = (b * c + ch) * spatial + i
                    ys[index] = xs[index] / Foundation.pow(bias + alpha / Double(size) * sum, beta)
                }
            }
        }
        let y = try outputs.allocate(0, x.elementType, x.shape)
        GenericElements.store(ys, into: y)
    }
}

// MARK: - Softmax, LogSoftmax, Hardmax

/// Softmax, LogSoftmax and Hardmax. Before opset 13 the input is seen as 2-D
/// `[prod(shape[..<axis]), prod(shape[axis...])]` (axis default 1) and each row is
/// normalized; from opset 13 the op runs along the single dim `axis` (default -1).
final class SoftmaxKernel: Kernel {
    enum Mode { case softmax, logSoftmax, hardmax }
    let mode: Mode
    let axis: Int
    let coerceTo2D: Bool

    init(_ ctx: KernelContext, mode: Mode) throws {
        self.mode = mode
        coerceTo2D = ctx.opset < 13
        axis = try ctx.node.int("axis", default: coerceTo2D ? 1 : -1)
    }

    init(mode: Mode, axis: Int, coerceTo2D: Bool) {
        self.mode = mode
        self.axis = axis
        self.coerceTo2D = coerceTo2D
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard GenericElements.supports(x.elementType), x.elementType != .bool else {
            throw KernelError.unsupported("element type \(x.elementType)")
        }
        let y = try outputs.allocate(0, x.elementType, x.shape)
        if x.rank == 0 {
            GenericElements.store([mode == .logSoftmax ? 0 : 1], into: y)
            return
        }
        let axis = try GenericElements.normalizedAxis(self.axis, rank: x.rank)
        let outer = GenericElements.product(x.shape, 0..<axis)
        let length = coerceTo2D ? GenericElements.product(x.shape, axis..<x.rank) : x.shape[axis]
        let inner = coerceTo2D ? 1 : GenericElements.product(x.shape, (axis + 1)..<x.rank)
        if outer == 0 || length == 0 || inner == 0 { return }
        if let xp = NormalizationKernels.floats(x), let yp = NormalizationKernels.floats(y), mode != .hardmax {
            let mode = self.mode
            let blockSize = length * inner
            ThreadPool.parallelFor(outer, minimumPerThread: NormalizationKernels.rowsPerThread(blockSize)) { range in
                if inner == 1 {
                    // AVX-512 rows in C (fused multiply-adds, 16 lanes, masked tails): ViT's
                    // [12, 197, 197] scores ran 0.50 ms at 1 thread in the Swift loop.
                    if vernier_softmax_rows(xp + range.lowerBound * length, yp + range.lowerBound * length, range.count,
                                            length, mode == .logSoftmax ? 1 : 0) != 0 { return }
                    for row in range {
                        SoftmaxFloat.row(xp + row * length, yp + row * length, length, log: mode == .logSoftmax)
                    }
                } else {
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * inner)
                    defer { scratch.deallocate() }
                    for block in range {
                        SoftmaxFloat.strided(xp + block * blockSize, yp + block * blockSize, length, inner,
                                             scratch, log: mode == .logSoftmax)
                    }
                }
            }
            return
        }
        var values = try GenericElements.load(x)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var best = values[base], bestIndex = 0
                for k in 1..<max(length, 1) where values[base + k * inner] > best {
                    best = values[base + k * inner]
                    bestIndex = k
                }
                switch mode {
                case .hardmax:
                    for k in 0..<length { values[base + k * inner] = k == bestIndex ? 1 : 0 }
                case .softmax, .logSoftmax:
                    var sum = 0.0
                    for k in 0..<length { sum += Foundation.exp(values[base + k * inner] - best) }
                    let logSum = Foundation.log(sum)
                    for k in 0..<length {
                        let shifted = values[base + k * inner] - best
                        values[base + k * inner] = mode == .softmax ? Foundation.exp(shifted) / sum : shifted - logSum
                    }
                }
            }
        }
        GenericElements.store(values, into: y)
    }
}

/// Float softmax and log-softmax with the vectorized exp. All loops read element i
/// before writing it, so y may be x.
enum SoftmaxFloat {
    static func row(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        let m = NormMath.max(x, n)
        let vm = SIMD8<Float>(repeating: m)
        var acc = SIMD8<Float>()
        var i = 0
        if log {
            var acc16 = SIMD16<Float>()
            let vm16 = SIMD16<Float>(repeating: m)
            while i + 16 <= n {
                acc16 += NormMath.exp16(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - vm16)
                i += 16
            }
            acc += acc16.lowHalf + acc16.highHalf
            while i + 8 <= n { acc += NormMath.exp(NormMath.load(x + i) - vm); i += 8 }
            if i < n {
                acc += NormMath.exp(NormMath.loadPartial(x + i, n - i, fill: -.infinity) - vm)
            }
            let shift = SIMD8<Float>(repeating: m + Foundation.log(acc.sum()))
            i = 0
            while i + 8 <= n { NormMath.store(NormMath.load(x + i) - shift, y + i); i += 8 }
            while i < n { y[i] = x[i] - shift[0]; i += 1 }
            return
        }
        var acc16 = SIMD16<Float>()
        let vm16 = SIMD16<Float>(repeating: m)
        while i + 16 <= n {
            let e = NormMath.exp16(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - vm16)
            acc16 += e
            UnsafeMutableRawPointer(y + i).storeBytes(of: e, as: SIMD16<Float>.self)
            i += 16
        }
        acc += acc16.lowHalf + acc16.highHalf
        while i + 8 <= n {
            let e = NormMath.exp(NormMath.load(x + i) - vm)
            acc += e
            NormMath.store(e, y + i)
            i += 8
        }
        if i < n {
            let e = NormMath.exp(NormMath.loadPartial(x + i, n - i, fill: -.infinity) - vm)
            acc += e
            NormMath.storePartial(e, y + i, n - i)
        }
        let scale = SIMD8<Float>(repeating: 1 / acc.sum())
        i = 0
        while i + 8 <= n { NormMath.store(NormMath.load(y + i) * scale, y + i); i += 8 }
        while i < n { y[i] *= scale[0]; i += 1 }
    }

    /// One `[length, inner]` block, normalized along `length`; `scratch` holds 2·inner floats.
    static func strided(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ length: Int, _ inner: Int,
                        _ scratch: UnsafeMutablePointer<Float>, log: Bool) {
        let maxima = scratch, sums = scratch + inner
        maxima.update(from: x, count: inner)
        sums.update(repeating: 0, count: inner)
        for k in 1..<max(length, 1) {
            let row = x + k * inner
            for i in 0..<inner { maxima[i] = Swift.max(maxima[i], row[i]) }
        }
        for k in 0..<length {
            let row = x + k * inner, out = y + k * inner
            var i = 0
            while i + 8 <= inner {
                let e = NormMath.exp(NormMath.load(row + i) - NormMath.load(maxima + i))
                NormMath.store(NormMath.load(sums + i) + e, sums + i)
                if !log { NormMath.store(e, out + i) }
                i += 8
            }
            if i < inner {
                let count = inner - i
                let e = NormMath.exp(NormMath.loadPartial(row + i, count, fill: 0) - NormMath.loadPartial(maxima + i, count, fill: 0))
                NormMath.storePartial(NormMath.loadPartial(sums + i, count, fill: 0) + e, sums + i, count)
                if !log { NormMath.storePartial(e, out + i, count) }
            }
        }
        if log {
            for i in 0..<inner { sums[i] = maxima[i] + Foundation.log(sums[i]) }
            for k in 0..<length {
                let row = x + k * inner, out = y + k * inner
                for i in 0..<inner { out[i] = row[i] - sums[i] }
            }
        } else {
            for i in 0..<inner { sums[i] = 1 / sums[i] }
            for k in 0..<length {
                let out = y + k * inner
                for i in 0..<inner { out[i] *= sums[i] }
            }
        }
    }
}
