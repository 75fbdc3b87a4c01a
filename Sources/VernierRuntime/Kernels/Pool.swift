import Foundation
import VernierGraph

/// Kernels of the Pool family (same file name as the shape rules and cost formulas).
enum PoolKernels {
    static let all: [String: KernelFactory] = [
        "MaxPool": { ctx in
            try WindowPoolKernel(ctx, kind: .max, storageOrder: try ctx.node.int("storage_order", default: 0))
        },
        "AveragePool": { ctx in
            try WindowPoolKernel(ctx, kind: .average(countIncludePad: try ctx.node.int("count_include_pad", default: 0) != 0))
        },
        "LpPool": { ctx in try WindowPoolKernel(ctx, kind: .lp(p: try lpNorm(ctx.node))) },
        "GlobalAveragePool": { _ in GlobalPoolKernel(kind: .average(countIncludePad: false)) },
        "GlobalMaxPool": { _ in GlobalPoolKernel(kind: .max) },
        "GlobalLpPool": { ctx in GlobalPoolKernel(kind: .lp(p: try lpNorm(ctx.node))) },
    ]

    static func lpNorm(_ node: Node) throws -> Double {
        let p = try node.int("p", default: 2)
        guard p >= 1 else { throw KernelError.unsupported("p = \(p); LpPool needs p >= 1") }
        return Double(p)
    }

    /// Planes per thread so that each thread gets at least ~16K elements.
    static func planesPerThread(_ planeSize: Int) -> Int { max(1, 16_384 / max(1, planeSize)) }
}

/// What a pool computes over its window.
enum PoolKind: Equatable, Sendable {
    case max
    /// `countIncludePad`: divide by the whole window's size (padding, and with ceil_mode
    /// the overhang past the end pads, included: ONNX's reference does so), else by the
    /// number of input elements in the window.
    case average(countIncludePad: Bool)
    /// `(Σ |x|^p)^(1/p)`; padding counts as zeros.
    case lp(p: Double)
}

/// The window attributes of MaxPool, AveragePool and LpPool, resolved against the input's
/// spatial sizes at run time (auto_pad depends on them). Matches `PoolRules.pooledShape`.
struct PoolWindow: Sendable, Equatable {
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    /// ONNX order: all begins, then all ends.
    var pads: [Int]
    var autoPad: String
    var ceilMode: Bool

    init(kernel: [Int], strides: [Int]? = nil, dilations: [Int]? = nil, pads: [Int]? = nil,
         autoPad: String = "NOTSET", ceilMode: Bool = false) throws {
        let n = kernel.count
        self.kernel = kernel
        self.strides = strides ?? Array(repeating: 1, count: n)
        self.dilations = dilations ?? Array(repeating: 1, count: n)
        self.pads = pads ?? Array(repeating: 0, count: 2 * n)
        self.autoPad = autoPad.isEmpty ? "NOTSET" : autoPad
        self.ceilMode = ceilMode
        guard n >= 1, self.strides.count == n, self.dilations.count == n, self.pads.count == 2 * n else {
            throw KernelError.invalid("kernel_shape \(kernel), strides \(self.strides), dilations \(self.dilations) "
                                      + "and pads \(self.pads) do not describe the same number of spatial dims")
        }
        guard kernel.allSatisfy({ $0 >= 1 }), self.strides.allSatisfy({ $0 >= 1 }),
              self.dilations.allSatisfy({ $0 >= 1 }), self.pads.allSatisfy({ $0 >= 0 }) else {
            throw KernelError.invalid("kernel_shape, strides and dilations must be positive and pads non-negative")
        }
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(self.autoPad) else {
            throw KernelError.invalid("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
    }

    init(node: Node) throws {
        guard let kernel = try node.ints("kernel_shape") else {
            throw KernelError.invalid("kernel_shape is required")
        }
        try self.init(kernel: kernel, strides: try node.ints("strides"), dilations: try node.ints("dilations"),
                      pads: try node.ints("pads"), autoPad: try node.string("auto_pad", default: "NOTSET"),
                      ceilMode: try node.int("ceil_mode", default: 0) != 0)
    }

    struct Resolved: Equatable {
        var output: [Int]
        var padBegin: [Int]
        var padEnd: [Int]
    }

    /// Output sizes and the pads in effect for input spatial sizes `spatial`.
    func resolve(_ spatial: [Int]) throws -> Resolved {
        let n = kernel.count
        guard spatial.count == n else {
            throw KernelError.invalid("input has \(spatial.count) spatial dims but kernel_shape has \(n)")
        }
        var result = Resolved(output: [], padBegin: [], padEnd: [])
        for i in 0..<n {
            let input = spatial[i], s = strides[i]
            let effective = (kernel[i] - 1) * dilations[i] + 1
            var out: Int, begin: Int, end: Int
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                out = (input + s - 1) / s
                let total = max(0, (out - 1) * s + effective - input)
                begin = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end = total - begin
            case "VALID":
                guard input >= effective else {
                    throw KernelError.invalid("the window (\(effective) wide) is larger than the input (\(input))")
                }
                out = (input - effective + s) / s
                begin = 0
                end = 0
            default:
                begin = pads[i]
                end = pads[n + i]
                let span = input + begin + end - effective
                guard span >= 0 else {
                    throw KernelError.invalid("the window (\(effective) wide) is larger than the padded input (\(input + begin + end))")
                }
                if ceilMode {
                    out = (span + s - 1) / s + 1
                    // The last window must start inside the input or its left padding.
                    if (out - 1) * s >= input + begin { out -= 1 }
                } else {
                    out = span / s + 1
                }
            }
            result.output.append(out)
            result.padBegin.append(begin)
            result.padEnd.append(end)
        }
        return result
    }
}

/// MaxPool, AveragePool and LpPool. Float 2-D max/average pooling takes the fast path
/// (vertical reduction of the window's rows into a padded scratch row, then a SIMD pass
/// along it, parallel over the N·C planes); everything else the generic N-D path.
final class WindowPoolKernel: Kernel {
    let window: PoolWindow
    let kind: PoolKind
    let storageOrder: Int

    init(_ ctx: KernelContext, kind: PoolKind, storageOrder: Int = 0) throws {
        window = try PoolWindow(node: ctx.node)
        self.kind = kind
        guard storageOrder == 0 || storageOrder == 1 else {
            throw KernelError.invalid("storage_order \(storageOrder) is not 0 (row major) or 1 (column major)")
        }
        self.storageOrder = storageOrder
    }

    init(window: PoolWindow, kind: PoolKind, storageOrder: Int = 0) {
        self.window = window
        self.kind = kind
        self.storageOrder = storageOrder
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.rank == window.kernel.count + 2 else {
            throw KernelError.invalid("input shape \(x.shape) needs \(window.kernel.count) spatial dims after N and C")
        }
        let spatial = Array(x.shape[2...])
        let r = try window.resolve(spatial)
        let outShape = Array(x.shape[0..<2]) + r.output
        let wantIndices = kind == .max && outputs.isRequested(1)
        guard GenericElements.supports(x.elementType), x.elementType != .bool else {
            throw KernelError.unsupported("element type \(x.elementType)")
        }
        let y = try outputs.allocate(0, x.elementType, outShape)
        let indices = wantIndices ? try outputs.allocate(1, .int64, outShape) : nil
        if y.elementCount == 0 { return }
        let planes = x.shape[0] * x.shape[1]
        if x.elementType == .float, x.rank == 4, indices == nil, !isLp {
            Pool2DFloat.run(x: UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self)),
                            y: y.rawPointer.assumingMemoryBound(to: Float.self),
                            planes: planes, input: spatial, resolved: r, window: window, kind: kind)
            return
        }
        let xs = try GenericElements.load(x)
        var ys = [Double](repeating: 0, count: y.elementCount)
        var idx = [Int64](repeating: 0, count: indices == nil ? 0 : y.elementCount)
        xs.withUnsafeBufferPointer { xp in
            ys.withUnsafeMutableBufferPointer { yp in
                idx.withUnsafeMutableBufferPointer { ip in
                    guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                    // An empty array may still have a base address: only pass it when wanted.
                    let ib = indices == nil ? nil : ip.baseAddress
                    let outPlane = r.output.reduce(1, *), inPlane = spatial.reduce(1, *)
                    ThreadPool.parallelFor(planes, minimumPerThread: PoolKernels.planesPerThread(inPlane)) { range in
                        for plane in range {
                            PoolGeneric.plane(x: xb + plane * inPlane, y: yb + plane * outPlane,
                                              indices: ib.map { $0 + plane * outPlane },
                                              indexBase: plane * inPlane, input: spatial, resolved: r,
                                              window: window, kind: kind, columnMajor: storageOrder == 1)
                        }
                    }
                }
            }
        }
        GenericElements.store(ys, into: y)
        if let indices {
            idx.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { indices.rawPointer.copyMemory(from: base, byteCount: bytes.count) }
            }
        }
    }

    private var isLp: Bool { if case .lp = kind { return true } else { return false } }
}

/// The generic N-D pooling loop over one plane, in Double.
enum PoolGeneric {
    static func plane(x: UnsafePointer<Double>, y: UnsafeMutablePointer<Double>, indices: UnsafeMutablePointer<Int64>?,
                      indexBase: Int, input: [Int], resolved r: PoolWindow.Resolved, window: PoolWindow,
                      kind: PoolKind, columnMajor: Bool) {
        let n = input.count
        let inStrides = GenericElements.strides(input)
        // Strides of the index the Indices output reports (row or column major).
        var indexStrides = inStrides
        if columnMajor {
            var running = 1
            for i in 0..<n { indexStrides[i] = running; running *= input[i] }
        }
        var o = [Int](repeating: 0, count: n)
        var lo = [Int](repeating: 0, count: n), hi = [Int](repeating: 0, count: n)
        var k = [Int](repeating: 0, count: n)
        let outCount = r.output.reduce(1, *)
        for flat in 0..<outCount {
            var empty = false
            for i in 0..<n {
                let start = o[i] * window.strides[i] - r.padBegin[i]
                let d = window.dilations[i], kk = window.kernel[i]
                let first = start >= 0 ? 0 : (-start + d - 1) / d
                let last = input[i] - 1 - start
                let end = last < 0 ? 0 : min(kk, last / d + 1)
                lo[i] = first
                hi[i] = end
                if first >= end { empty = true }
            }
            var acc: Double
            var count = 0
            var best = -1
            switch kind {
            case .max: acc = -.infinity
            default: acc = 0
            }
            if !empty {
                for i in 0..<n { k[i] = lo[i] }
                while true {
                    var offset = 0, indexOffset = 0
                    for i in 0..<n {
                        let coordinate = o[i] * window.strides[i] - r.padBegin[i] + k[i] * window.dilations[i]
                        offset += coordinate * inStrides[i]
                        indexOffset += coordinate * indexStrides[i]
                    }
                    let v = x[offset]
                    switch kind {
                    case .max:
                        if best < 0 || v > acc { acc = v; best = indexOffset }
                    case .average:
                        acc += v
                    case .lp(let p):
                        acc += p == 2 ? v * v : Foundation.pow(Swift.abs(v), p)
                    }
                    count += 1
                    var i = n - 1
                    while i >= 0 {
                        k[i] += 1
                        if k[i] < hi[i] { break }
                        k[i] = lo[i]
                        i -= 1
                    }
                    if i < 0 { break }
                }
            }
            switch kind {
            case .max:
                y[flat] = acc
                indices?[flat] = Int64(indexBase + max(best, 0))
            case .average(let includePad):
                let divisor = includePad ? window.kernel.reduce(1, *) : count
                y[flat] = divisor > 0 ? acc / Double(divisor) : 0
            case .lp(let p):
                y[flat] = p == 2 ? acc.squareRoot() : Foundation.pow(acc, 1 / p)
            }
            var i = n - 1
            while i >= 0 {
                o[i] += 1
                if o[i] < r.output[i] { break }
                o[i] = 0
                i -= 1
            }
        }
    }
}

/// Float 2-D max and average pooling.
enum Pool2DFloat {
    static func run(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, planes: Int, input: [Int],
                    resolved r: PoolWindow.Resolved, window: PoolWindow, kind: PoolKind) {
        let (h, w) = (input[0], input[1])
        let (oh, ow) = (r.output[0], r.output[1])
        let isMax = kind == .max
        let includePad = kind == .average(countIncludePad: true)
        let (kh, kw) = (window.kernel[0], window.kernel[1])
        let (sh, sw) = (window.strides[0], window.strides[1])
        let (dh, dw) = (window.dilations[0], window.dilations[1])
        let (pt, pl) = (r.padBegin[0], r.padBegin[1])
        // Scratch column c holds input column c - pl; it spans every column a window touches.
        let scratchWidth = (ow - 1) * sw + (kw - 1) * dw + 1
        let identity: Float = isMax ? -.infinity : 0
        // Reciprocal of each output column's element count (average only), padded for SIMD.
        var columnScale = [Float](repeating: 0, count: ow + 8)
        if !isMax {
            for ox in 0..<ow {
                let start = ox * sw - pl
                var count = 0
                for kx in 0..<kw {
                    let ix = start + kx * dw
                    if includePad || (ix >= 0 && ix < w) { count += 1 }
                }
                columnScale[ox] = count > 0 ? 1 / Float(count) : 0
            }
        }
        let validLo = min(max(pl, 0), scratchWidth), validHi = max(validLo, min(scratchWidth, pl + w))
        columnScale.withUnsafeBufferPointer { scaleBuffer in
            guard let colScale = scaleBuffer.baseAddress else { return }
            ThreadPool.parallelFor(planes, minimumPerThread: PoolKernels.planesPerThread(h * w)) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchWidth + 64)
                defer { scratch.deallocate() }
                scratch.initialize(repeating: identity, count: scratchWidth + 64)
                for plane in range {
                    let xp = x + plane * h * w
                    let yp = y + plane * oh * ow
                    for oy in 0..<oh {
                        let iy0 = oy * sh - pt
                        var rows = 0
                        for ky in 0..<kh {
                            let iy = iy0 + ky * dh
                            guard iy >= 0 && iy < h else { continue }
                            let row = xp + iy * w - pl
                            if rows == 0 {
                                (scratch + validLo).update(from: row + validLo, count: validHi - validLo)
                            } else if isMax {
                                combine(scratch, row, validLo, validHi, max: true)
                            } else {
                                combine(scratch, row, validLo, validHi, max: false)
                            }
                            rows += 1
                        }
                        if rows == 0 {
                            (scratch + validLo).update(repeating: identity, count: validHi - validLo)
                        }
                        let out = yp + oy * ow
                        if isMax {
                            horizontal(scratch, out, ow, kw, sw, dw, isMax: true)
                        } else {
                            horizontal(scratch, out, ow, kw, sw, dw, isMax: false)
                            let divisor = includePad ? kh : rows
                            let rowScale = SIMD8<Float>(repeating: divisor > 0 ? 1 / Float(divisor) : 0)
                            var ox = 0
                            while ox + 8 <= ow {
                                NormMath.store(NormMath.load(out + ox) * NormMath.load(colScale + ox) * rowScale, out + ox)
                                ox += 8
                            }
                            while ox < ow { out[ox] *= colScale[ox] * rowScale[0]; ox += 1 }
                        }
                    }
                }
            }
        }
    }

    /// scratch[c] = op(scratch[c], row[c]) for c in lo..<hi.
    @inline(__always)
    static func combine(_ scratch: UnsafeMutablePointer<Float>, _ row: UnsafePointer<Float>, _ lo: Int, _ hi: Int, max: Bool) {
        var c = lo
        while c + 8 <= hi {
            let a = NormMath.load(scratch + c), b = NormMath.load(row + c)
            NormMath.store(max ? NormMath.maximum(a, b) : a + b, scratch + c)
            c += 8
        }
        while c < hi {
            scratch[c] = max ? Swift.max(scratch[c], row[c]) : scratch[c] + row[c]
            c += 1
        }
    }

    /// out[ox] = op over kx of scratch[ox·sw + kx·dw]. The scratch row has 64 spare
    /// columns, so the SIMD loads past the last window stay inside it.
    @inline(__always)
    static func horizontal(_ s: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           _ ow: Int, _ kw: Int, _ sw: Int, _ dw: Int, isMax: Bool) {
        @inline(__always) func op(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
            isMax ? NormMath.maximum(a, b) : a + b
        }
        if sw == 1 || sw == 2 {
            var ox = 0
            while ox < ow {
                var acc: SIMD8<Float>
                if sw == 1 {
                    acc = NormMath.load(s + ox)
                    for kx in 1..<max(kw, 1) { acc = op(acc, NormMath.load(s + ox + kx * dw)) }
                } else {
                    acc = pick(s + 2 * ox)
                    for kx in 1..<max(kw, 1) { acc = op(acc, pick(s + 2 * ox + kx * dw)) }
                }
                if ox + 8 <= ow { NormMath.store(acc, out + ox) } else { NormMath.storePartial(acc, out + ox, ow - ox) }
                ox += 8
            }
            return
        }
        for ox in 0..<ow {
            let base = s + ox * sw
            var acc = base[0]
            for kx in 1..<max(kw, 1) { acc = isMax ? Swift.max(acc, base[kx * dw]) : acc + base[kx * dw] }
            out[ox] = acc
        }
    }

    /// p[0], p[2], ..., p[14] (every other float from p).
    @inline(__always)
    static func pick(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
    }
}

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: one value per (n, c) plane.
final class GlobalPoolKernel: Kernel {
    let kind: PoolKind

    init(kind: PoolKind) { self.kind = kind }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        guard x.rank >= 2 else { throw KernelError.invalid("input shape \(x.shape) needs a batch and a channel dim") }
        guard GenericElements.supports(x.elementType), x.elementType != .bool else {
            throw KernelError.unsupported("element type \(x.elementType)")
        }
        let planes = x.shape[0] * x.shape[1]
        let size = GenericElements.product(x.shape, 2..<x.rank)
        let y = try outputs.allocate(0, x.elementType, Array(x.shape[0..<2]) + Array(repeating: 1, count: x.rank - 2))
        if planes == 0 { return }
        if x.layout == .channelsLast {
            guard x.rank == 4, x.elementType == .float, size > 0, !isLp else {
                throw KernelError.unsupported("global pooling of a channels-last \(x.elementType) tensor of shape \(x.shape)")
            }
            channelsLastPool(x, into: y, positions: size)
            return
        }
        if x.elementType == .float, size > 0, !isLp {
            let xp = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
            let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
            let isMax = kind == .max
            ThreadPool.parallelFor(planes, minimumPerThread: PoolKernels.planesPerThread(size)) { range in
                for plane in range {
                    let p = xp + plane * size
                    yp[plane] = isMax ? NormMath.max(p, size) : NormMath.sum(p, size) / Float(size)
                }
            }
            return
        }
        let xs = try GenericElements.load(x)
        var ys = [Double](repeating: 0, count: planes)
        for plane in 0..<planes {
            let slice = xs[(plane * size)..<((plane + 1) * size)]
            switch kind {
            case .max: ys[plane] = slice.max() ?? -.infinity
            case .average: ys[plane] = size > 0 ? slice.reduce(0, +) / Double(size) : .nan
            case .lp(let p):
                let sum = slice.reduce(0) { $0 + Foundation.pow(Swift.abs($1), p) }
                ys[plane] = Foundation.pow(sum, 1 / p)
            }
        }
        GenericElements.store(ys, into: y)
    }

    private var isLp: Bool { if case .lp = kind { return true } else { return false } }

    /// Average or max over the positions of an NHWC map (`TensorLayout.channelsLast`):
    /// each position's channels are one contiguous row, so the reduction runs down the
    /// rows, 16 channels at a time in registers, a range of channel groups per thread.
    /// The [N, C, 1, 1] result is plain.
    private func channelsLastPool(_ x: Tensor, into y: Tensor, positions: Int) {
        let (images, channels) = (x.shape[0], x.shape[1])
        let xp = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let isMax = kind == .max
        let lanes = 16, groups = (channels + lanes - 1) / lanes
        for image in 0..<images {
            let map = xp + image * positions * channels, out = yp + image * channels
            ThreadPool.parallelFor(groups, minimumPerThread: max(1, 4096 / positions)) { range in
                for group in range {
                    let first = group * lanes, width = min(lanes, channels - first)
                    if width == lanes {
                        var acc = SIMD16<Float>(repeating: isMax ? -.infinity : 0)
                        for p in 0..<positions {
                            let row = UnsafeRawPointer(map + p * channels + first).loadUnaligned(as: SIMD16<Float>.self)
                            acc = isMax ? NormMath.maximum(acc, row) : acc + row
                        }
                        for lane in 0..<lanes { out[first + lane] = isMax ? acc[lane] : acc[lane] / Float(positions) }
                    } else {
                        for c in first..<(first + width) {
                            var acc: Float = isMax ? -.infinity : 0
                            for p in 0..<positions { acc = isMax ? Swift.max(acc, map[p * channels + c]) : acc + map[p * channels + c] }
                            out[c] = isMax ? acc : acc / Float(positions)
                        }
                    }
                }
            }
        }
    }
}
