import VernierGraph

/// Kernels for activations in the channel-blocked layout (`[N, ceil(C/B), H, W, B]`, see
/// `TensorLayout`) that sit between oneDNN convolutions: window and global pooling, a
/// per-channel broadcast Add/Sub/Mul/Div (squeeze-and-excitation scales), inference
/// BatchNormalization (DenseNet's pre-activation blocks) and a channel Concat. The
/// compiler picks them instead of the plain kernels when `LayoutPlanner` keeps a node's
/// input blocked; element-wise ops of same-shaped operands need no kernel of their own
/// (their plain loops are layout-blind; `PaddedChannelsKernel` covers the padding).
enum BlockedKernels {
    /// The blocked replacement for `node`, when its input is blocked.
    static func factory(for node: Node) -> KernelFactory? {
        switch node.opType {
        case "MaxPool": return { try BlockedWindowPoolKernel($0, average: false) }
        case "AveragePool": return { try BlockedWindowPoolKernel($0, average: true) }
        case "GlobalAveragePool": return { _ in BlockedGlobalPoolKernel(average: true) }
        case "GlobalMaxPool": return { _ in BlockedGlobalPoolKernel(average: false) }
        case "Add", "Sub", "Mul", "Div": return { try BlockedChannelBroadcastKernel($0) }
        case "Concat": return { _ in BlockedConcatKernel() }
        case "BatchNormalization": return { try BlockedBatchNormKernel($0) }
        case "Resize": return { try BlockedNearestResizeKernel($0, upsample: false) }
        case "Upsample": return { try BlockedNearestResizeKernel($0, upsample: true) }
        default: return nil
        }
    }
}

/// `[N, ceil(C/B), H, W, B]` geometry of a blocked tensor of C channels.
private struct BlockedShape {
    let n, channels, blocks, h, w, block: Int
    init(_ t: Tensor) throws {
        guard case .channelBlocked(let b) = t.layout, t.rank == 4, b % 8 == 0 else {
            throw KernelError.invalid("expected a 4-D channel-blocked tensor, got \(t.shape) \(t.layout)")
        }
        (n, channels, blocks, h, w, block) = (t.shape[0], t.shape[1], (t.shape[1] + b - 1) / b, t.shape[2], t.shape[3], b)
    }
    var planeFloats: Int { h * w * block }
    /// Real channels in the 8 lanes starting at channel `c` (0...8).
    @inline(__always) func lanes(from c: Int) -> Int { max(0, min(8, channels - c)) }
}

/// A layout-blind kernel (element-wise ops of same-shaped operands) run over blocked
/// tensors with padding channels: it sees each one as the unpadded blocked tensor of its
/// storage (`[N, C rounded up, H, W]`), so its loops cover the padding too and leave no
/// block half-computed; its outputs get their graph shapes back afterwards.
final class PaddedChannelsKernel: Kernel {
    let inner: Kernel
    /// The graph's shape of each output (nil when not known at plan time).
    let outputShapes: [[Int]?]

    init(wrapping inner: Kernel, outputShapes: [[Int]?]) {
        self.inner = inner
        self.outputShapes = outputShapes
    }

    var packedInputs: [Int] { inner.packedInputs }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        try inner.run(inputs.map { $0.map(Self.storageView) }, outputs)
        for k in outputs.results.indices where k < outputShapes.count {
            guard let result = outputs.results[k], let shape = outputShapes[k], shape != result.shape,
                  result.layout.storageShape(shape) == result.shape else { continue }
            var narrowed = Tensor(elementType: result.elementType, shape: shape, buffer: result.buffer, byteOffset: result.byteOffset)
            narrowed.layout = result.layout
            outputs.results[k] = narrowed
        }
    }

    /// The tensor seen with its padding channels as channels.
    static func storageView(_ t: Tensor) -> Tensor {
        guard t.layout.pads(t.shape) else { return t }
        var view = Tensor(elementType: t.elementType, shape: t.layout.storageShape(t.shape), buffer: t.buffer, byteOffset: t.byteOffset)
        view.layout = t.layout
        return view
    }
}

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// Nearest-neighbour Resize (or Upsample) of a channel-blocked tensor over H and W:
/// each output pixel's block of channels is the block of the input pixel the plain
/// kernel's index maps name (every coordinate and rounding mode), copied whole, so a
/// detector's upsampling between convolutions needs no reorder on either side.
final class BlockedNearestResizeKernel: Kernel {
    /// The plain kernel, for its attributes, output geometry and index maps.
    let plain: ResizeKernel

    init(_ ctx: KernelContext, upsample: Bool) throws {
        plain = try ResizeKernel(ctx, upsample: upsample)
        guard plain.mode == .nearest else { throw KernelError.unsupported("blocked Resize is nearest-neighbour only") }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let g = try BlockedShape(x)
        let (scales, outShape, roi) = try plain.geometry(x, inputs)
        guard outShape.count == 4, outShape[0] == g.n, outShape[1] == g.channels else {
            throw KernelError.invalid("blocked Resize keeps N and C, got \(x.shape) -> \(outShape)")
        }
        let rows = plain.nearestMap(inLength: g.h, outLength: outShape[2], scale: scales[2], roiStart: roi[2], roiEnd: roi[6])
        let columns = plain.nearestMap(inLength: g.w, outLength: outShape[3], scale: scales[3], roiStart: roi[3], roiEnd: roi[7])
        // -1 marks an extrapolated position (tf_crop_and_resize), which the plain kernel fills.
        guard rows.allSatisfy({ $0 >= 0 }), columns.allSatisfy({ $0 >= 0 }) else {
            throw KernelError.unsupported("blocked Resize with extrapolated positions")
        }
        let (oh, ow, block) = (outShape[2], outShape[3], g.block)
        var y = try outputs.allocate(0, .float, outShape)
        y.layout = x.layout
        outputs.set(0, y)
        let xp = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        ThreadPool.parallelFor(g.n * g.blocks * oh, minimumPerThread: 8) { range in
            for row in range {
                let plane = row / oh, oy = row % oh
                let source = xp + plane * g.planeFloats + rows[oy] * g.w * block
                let target = yp + (plane * oh + oy) * ow * block
                for ox in 0..<ow { (target + ox * block).update(from: source + columns[ox] * block, count: block) }
            }
        }
    }
}

/// MaxPool / AveragePool over H and W of a blocked tensor: each tap is one vector of 8
/// channels, so the window reduces whole registers. Outputs whose window lies inside
/// the input go four at a time, four independent chains over taps whose addresses need
/// no bounds checks; the edges go one at a time over their clipped window. ResNet's
/// 3x3/2 MaxPool on [1,64,112,112]: 0.55 -> 0.10 ms standalone on one thread (the
/// one-at-a-time loop with a bounds check per tap ran 2.4 ns a tap).
final class BlockedWindowPoolKernel: Kernel {
    /// Input width from which a window of four taps or fewer is pooled separably.
    static let separableWidth = 64
    let average: Bool
    let countIncludePad: Bool
    /// The window, as the plain pooling kernels read and resolve it.
    let window: PoolWindow

    init(_ ctx: KernelContext, average: Bool) throws {
        self.average = average
        window = try PoolWindow(node: ctx.node)
        countIncludePad = try ctx.node.int("count_include_pad", default: 0) != 0
        guard window.kernel.count == 2 else { throw KernelError.invalid("blocked pooling is 2-D, kernel_shape is \(window.kernel)") }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let g = try BlockedShape(x)
        let resolved = try window.resolve([g.h, g.w])
        let geometry = BlockedPoolRow(g, window: window, resolved: resolved, countIncludePad: countIncludePad)
        var y = try outputs.allocate(0, .float, [g.n, g.channels, geometry.oh, geometry.ow])
        y.layout = x.layout
        outputs.set(0, y)
        let xp = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let average = self.average
        // Windows of more than four taps, and wide maps, combine rows first
        // (`BlockedPoolRow.separable`); 2x2 windows on narrow maps gain nothing from it and
        // ran slower (VGG-11's 512-channel 14x14 -> 7x7 pool at two threads: 39 -> 81 us).
        let separable = window.kernel[0] * window.kernel[1] > 4 || g.w >= Self.separableWidth
        ThreadPool.parallelFor(g.n * g.blocks * geometry.oh, minimumPerThread: 4) { range in
            // One row of the input's blocks (the window's rows combined), per thread.
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: separable ? g.w * g.block : 0)
            defer { scratch.deallocate() }
            for row in range {
                let plane = row / geometry.oh, oy = row % geometry.oh
                let source = xp + plane * g.planeFloats
                let target = yp + (plane * geometry.oh + oy) * geometry.ow * g.block
                switch (separable, average) {
                case (true, true): geometry.separable(BlockedSum.self, source, target, oy: oy, scratch: scratch)
                case (true, false): geometry.separable(BlockedMax.self, source, target, oy: oy, scratch: scratch)
                case (false, _):
                    for v in 0..<(g.block / 8) {
                        if average {
                            geometry.run(BlockedSum.self, source + v * 8, target + v * 8, oy: oy)
                        } else {
                            geometry.run(BlockedMax.self, source + v * 8, target + v * 8, oy: oy)
                        }
                    }
                }
            }
        }
    }
}

/// How a window's taps combine: max, or a sum divided at the end.
private protocol BlockedPoolReduction {
    static var initial: SIMD8<Float> { get }
    static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float>
    static func combine(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
    static var divides: Bool { get }
}
private struct BlockedMax: BlockedPoolReduction {
    static var initial: SIMD8<Float> { SIMD8(repeating: -.infinity) }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { NormMath.maximum(a, b) }
    @inline(__always) static func combine(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { NormMath.maximum(a, b) }
    static var divides: Bool { false }
}
private struct BlockedSum: BlockedPoolReduction {
    static var initial: SIMD8<Float> { SIMD8(repeating: 0) }
    @inline(__always) static func combine(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a + b }
    @inline(__always) static func combine(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a + b }
    static var divides: Bool { true }
}

/// One output row of a blocked window pool, 8 channels at a time. Strides in floats;
/// wrapping arithmetic, since every offset is within the tensor.
private struct BlockedPoolRow {
    let h, w, block, oh, ow: Int
    let kh, kw, sh, sw, dh, dw, padTop, padLeft: Int
    /// count_include_pad's divisor (the whole window), else nil (the taps in range).
    let fullWindow: Int?
    /// Outputs `interior` have their whole window inside the row's columns.
    let interior: Range<Int>

    init(_ g: BlockedShape, window: PoolWindow, resolved: PoolWindow.Resolved, countIncludePad: Bool) {
        (h, w, block) = (g.h, g.w, g.block)
        (oh, ow) = (resolved.output[0], resolved.output[1])
        (kh, kw, sh, sw) = (window.kernel[0], window.kernel[1], window.strides[0], window.strides[1])
        (dh, dw, padTop, padLeft) = (window.dilations[0], window.dilations[1], resolved.padBegin[0], resolved.padBegin[1])
        fullWindow = countIncludePad ? kh * kw : nil
        let first = (padLeft + sw - 1) / sw
        let lastStart = w - 1 - (kw - 1) * dw + padLeft
        let end = lastStart < 0 ? first : min(ow, lastStart / sw + 1)
        interior = min(first, ow)..<max(min(first, ow), end)
    }

    /// Output row `oy` of one plane (all its channel blocks' lanes) in two passes: the
    /// window's input rows combined into `scratch` (one row of `w x block` floats, whole
    /// vectors down the row), then each output's taps along that row. A k x k window
    /// then reads k + k vectors per output instead of k x k: ResNet's 3x3 stride-2 max
    /// pool at 112x112 took 0.33 ms at one thread tap by tap.
    @inline(__always)
    func separable<R: BlockedPoolReduction>(_: R.Type, _ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
                                           oy: Int, scratch: UnsafeMutablePointer<Float>) {
        let y0 = oy &* sh &- padTop
        let kyLo = y0 >= 0 ? 0 : (dh &- 1 &- y0) / dh
        let kyHi = min(kh, max(0, (h &- y0 &+ dh &- 1) / dh))
        let rows = max(0, kyHi &- kyLo)
        let rowFloats = w &* block
        func inputRow(_ r: Int) -> UnsafePointer<Float> { source + (y0 &+ (kyLo &+ r) &* dh) &* rowFloats }
        // The combined row: the input row itself when the window has one row in range.
        let combined: UnsafePointer<Float>
        if rows == 1 {
            combined = inputRow(0)
        } else if rows == 0 {
            for i in stride(from: 0, to: rowFloats, by: 8) { store8(R.initial, scratch + i) }
            combined = UnsafePointer(scratch)
        } else {
            Self.combineRows(R.self, inputRow(0), inputRow(1), into: scratch, count: rowFloats)
            for r in 2..<rows { Self.combineRows(R.self, UnsafePointer(scratch), inputRow(r), into: scratch, count: rowFloats) }
            combined = UnsafePointer(scratch)
        }
        for ox in 0..<ow {
            let x0 = ox &* sw &- padLeft
            let kxLo = x0 >= 0 ? 0 : (dw &- 1 &- x0) / dw
            let kxHi = max(kxLo, min(kw, max(0, (w &- x0 &+ dw &- 1) / dw)))
            let divisor = Float(max(fullWindow ?? rows &* (kxHi &- kxLo), 1))
            let out = target + ox &* block
            let first: Int = (x0 &+ kxLo &* dw) &* block
            let tap: Int = dw &* block
            var v = 0
            while v &+ 16 <= block {
                var acc = SIMD16<Float>(lowHalf: R.initial, highHalf: R.initial)
                var p = combined + (first &+ v)
                for _ in kxLo..<kxHi {
                    acc = R.combine(acc, UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self))
                    p += tap
                }
                if R.divides { acc /= SIMD16(repeating: divisor) }
                UnsafeMutableRawPointer(out + v).storeBytes(of: acc, as: SIMD16<Float>.self)
                v &+= 16
            }
            while v < block {
                var acc = R.initial
                var p = combined + (first &+ v)
                for _ in kxLo..<kxHi {
                    acc = R.combine(acc, load8(p))
                    p += tap
                }
                store8(R.divides ? acc / SIMD8(repeating: divisor) : acc, out + v)
                v &+= 8
            }
        }
    }

    /// `into[i] = combine(a[i], b[i])` for `count` floats (a multiple of 8); `into` may be `a`.
    @inline(__always)
    private static func combineRows<R: BlockedPoolReduction>(_: R.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                                             into: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i &+ 16 <= count {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(into + i).storeBytes(of: R.combine(x, y), as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < count {
            store8(R.combine(load8(a + i), load8(b + i)), into + i)
            i &+= 8
        }
    }

    /// Output row `oy` of 8 lanes of one plane, tap by tap, four outputs at a time inside
    /// the row.
    @inline(__always)
    func run<R: BlockedPoolReduction>(_: R.Type, _ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, oy: Int) {
        let y0 = oy &* sh &- padTop
        let kyLo = y0 >= 0 ? 0 : (dh &- 1 &- y0) / dh
        let kyHi = min(kh, max(0, (h &- y0 &+ dh &- 1) / dh))
        let rows = max(0, kyHi &- kyLo)
        let (tap, rowStep, pixel) = (dw &* block, dh &* w &* block, sw &* block)
        let top = source + (y0 &+ kyLo &* dh) &* w &* block
        var ox = 0
        while ox < ow {
            if interior.contains(ox) && ox &+ 4 <= interior.upperBound {
                var (a0, a1, a2, a3) = (R.initial, R.initial, R.initial, R.initial)
                var rowStart = top + (ox &* sw &- padLeft) &* block
                for _ in 0..<rows {
                    var p = rowStart
                    for _ in 0..<kw {
                        a0 = R.combine(a0, load8(p))
                        a1 = R.combine(a1, load8(p + pixel))
                        a2 = R.combine(a2, load8(p + 2 &* pixel))
                        a3 = R.combine(a3, load8(p + 3 &* pixel))
                        p += tap
                    }
                    rowStart += rowStep
                }
                let out = target + ox &* block
                let divisor = SIMD8<Float>(repeating: Float(max(fullWindow ?? rows &* kw, 1)))
                store8(R.divides ? a0 / divisor : a0, out)
                store8(R.divides ? a1 / divisor : a1, out + block)
                store8(R.divides ? a2 / divisor : a2, out + 2 &* block)
                store8(R.divides ? a3 / divisor : a3, out + 3 &* block)
                ox &+= 4
                continue
            }
            let x0 = ox &* sw &- padLeft
            let kxLo = x0 >= 0 ? 0 : (dw &- 1 &- x0) / dw
            let kxHi = min(kw, max(0, (w &- x0 &+ dw &- 1) / dw))
            var acc = R.initial
            var rowStart = top + (x0 &+ kxLo &* dw) &* block
            for _ in 0..<rows {
                var p = rowStart
                for _ in kxLo..<max(kxLo, kxHi) {
                    acc = R.combine(acc, load8(p))
                    p += tap
                }
                rowStart += rowStep
            }
            if R.divides { acc /= SIMD8(repeating: Float(max(fullWindow ?? rows &* max(0, kxHi &- kxLo), 1))) }
            store8(acc, target + ox &* block)
            ox &+= 1
        }
    }
}

/// GlobalAveragePool / GlobalMaxPool of a blocked tensor into a plain `[N, C, 1, 1]`
/// (whose bytes are the same in both layouts).
final class BlockedGlobalPoolKernel: Kernel {
    let average: Bool
    init(average: Bool) { self.average = average }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let g = try BlockedShape(x)
        let y = try outputs.allocate(0, .float, [g.n, g.channels, 1, 1])
        let xp = x.rawPointer.assumingMemoryBound(to: Float.self)
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let vectors = g.block / 8
        let area = g.h * g.w
        ThreadPool.parallelFor(g.n * g.blocks, minimumPerThread: 2) { range in
            for plane in range {
                let source = xp + plane * g.planeFloats
                let n = plane / g.blocks, cb = plane % g.blocks
                for v in 0..<vectors {
                    let c = cb * g.block + v * 8
                    let lanes = g.lanes(from: c)
                    if lanes == 0 { break }
                    var acc = SIMD8<Float>(repeating: self.average ? 0 : -.infinity)
                    for i in 0..<area {
                        let tap = load8(source + i * g.block + v * 8)
                        acc = self.average ? acc + tap : NormMath.maximum(acc, tap)
                    }
                    if self.average { acc /= SIMD8(repeating: Float(max(area, 1))) }
                    // The plain output has no padding: the last block's tail stays out.
                    let target = yp + n * g.channels + c
                    if lanes == 8 { store8(acc, target) } else { for j in 0..<lanes { target[j] = acc[j] } }
                }
            }
        }
    }
}

/// `x op s` or `s op x` with `x` blocked `[N, C, H, W]` and `s` a plain per-channel
/// vector (`[N or 1, C, 1, 1]` or `[C, 1, 1]`).
final class BlockedChannelBroadcastKernel: Kernel {
    enum Op { case add, sub, mul, div }
    let op: Op

    init(_ ctx: KernelContext) throws {
        switch ctx.node.opType {
        case "Add": op = .add
        case "Sub": op = .sub
        case "Mul": op = .mul
        case "Div": op = .div
        default: throw KernelError.unsupported("blocked broadcast of \(ctx.node.opType)")
        }
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let a = try requiredInput(inputs, 0), b = try requiredInput(inputs, 1)
        let blockedFirst = a.layout != .plain
        let x = blockedFirst ? a : b, s = blockedFirst ? b : a
        let g = try BlockedShape(x)
        let channels = g.channels
        let perBatch: Bool
        if s.shape == [channels, 1, 1] || s.shape == [1, channels, 1, 1] { perBatch = false }
        else if s.shape == [g.n, channels, 1, 1] { perBatch = true }
        else { throw KernelError.invalid("\(s.shape) is not a per-channel vector for \(x.shape)") }
        guard s.elementType == .float, x.elementType == .float else { throw KernelError.unsupported("blocked broadcast of \(s.elementType)") }
        var y = try outputs.allocate(0, .float, x.shape)
        y.layout = x.layout
        outputs.set(0, y)
        let xp = x.rawPointer.assumingMemoryBound(to: Float.self)
        let sp = s.rawPointer.assumingMemoryBound(to: Float.self)
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let vectors = g.block / 8
        let area = g.h * g.w
        let op = self.op
        ThreadPool.parallelFor(g.n * g.blocks, minimumPerThread: 2) { range in
            for plane in range {
                let n = plane / g.blocks, cb = plane % g.blocks
                let base = plane * g.planeFloats
                for v in 0..<vectors {
                    let channel = cb * g.block + v * 8
                    let lanes = g.lanes(from: channel)
                    let c = (perBatch ? n * channels : 0) + channel
                    // Padding lanes read no scale and are written as zeros (a division
                    // would otherwise put NaN where the next conv multiplies by zero).
                    var scale = SIMD8<Float>(repeating: 0), keep = SIMDMask<SIMD8<Int32>>(repeating: true)
                    if lanes == 8 {
                        scale = load8(sp + c)
                    } else {
                        for j in 0..<8 { if j < lanes { scale[j] = sp[c + j] } else { keep[j] = false } }
                    }
                    for i in 0..<area {
                        let at = base + i * g.block + v * 8
                        let e = load8(xp + at)
                        var r: SIMD8<Float>
                        switch op {
                        case .add: r = e + scale
                        case .mul: r = e * scale
                        case .sub: r = blockedFirst ? e - scale : scale - e
                        case .div: r = blockedFirst ? e / scale : scale / e
                        }
                        if lanes < 8 { r.replace(with: 0, where: .!keep) }
                        store8(r, yp + at)
                    }
                }
            }
        }
    }
}

/// Inference BatchNormalization of a blocked tensor, `y = x * a + b` per channel
/// (`BatchNormKernel.scaleShift`, the plain kernel's), padding lanes written as zeros,
/// with a fused Relu (`GraphPasses.fuseActivations`) when one follows it.
/// Where no conv precedes it to fold into (DenseNet's BN-ReLU-Conv after each Concat),
/// the plain kernel kept the Concat's output plain and every conv reading it reordered.
///
/// One pass over the tensor, a pixel's whole block at a time: passing over each plane
/// once per 8 lanes of its block read DenseNet-121's BN inputs at 13-16 GB/s where its
/// Relus ran at 50-76. Constant parameters become `a` and `b` once, at plan time.
final class BlockedBatchNormKernel: Kernel {
    let epsilon: Double
    let relu: Bool
    /// Per-channel `a` and `b` when the four parameters are constants.
    private let constantAffine: (a: [Float], b: [Float])?

    init(_ ctx: KernelContext) throws {
        epsilon = Double(try ctx.node.float("epsilon", default: 1e-5))
        let trainingMode = try ctx.node.int("training_mode", default: 0)
        guard ctx.opset < 14 || trainingMode == 0 else {
            throw KernelError.unsupported("blocked BatchNormalization in training mode")
        }
        relu = try BatchNormKernel.fusesRelu(ctx.node)
        let parameters = (1...4).compactMap { ctx.constant($0) }
        if parameters.count == 4, let channels = parameters.first?.elementCount {
            let params = try BatchNormKernel.parameters([nil] + parameters, channels: channels)
            constantAffine = Self.affine(params, epsilon: epsilon)
        } else {
            constantAffine = nil
        }
    }

    private static func affine(_ params: [[Double]], epsilon: Double) -> (a: [Float], b: [Float]) {
        let affine = BatchNormKernel.scaleShift(scale: params[0], bias: params[1], mean: params[2], variance: params[3],
                                                epsilon: epsilon)
        return (affine.a.map { Float($0) }, affine.b.map { Float($0) })
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let g = try BlockedShape(x)
        guard x.elementType == .float else { throw KernelError.unsupported("blocked BatchNormalization of \(x.elementType)") }
        let (a, b) = try constantAffine.flatMap { $0.a.count == g.channels ? $0 : nil }
            ?? Self.affine(BatchNormKernel.parameters(inputs, channels: g.channels), epsilon: epsilon)
        let y = try outputs.allocate(0, .float, x.shape)
        let xp = x.rawPointer.assumingMemoryBound(to: Float.self)
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let (area, block, blocks, relu) = (g.h * g.w, g.block, g.blocks, self.relu)
        @inline(__always) func activated(_ v: SIMD8<Float>) -> SIMD8<Float> { relu ? ReluOp()(v) : v }
        /// 8 channels' values from channel `c`; padding lanes 0 (so padding comes out 0).
        @inline(__always) func lanes(_ values: [Float], from c: Int) -> SIMD8<Float> {
            var v = SIMD8<Float>.zero
            for lane in 0..<g.lanes(from: c) { v[lane] = values[c + lane] }
            return v
        }
        ThreadPool.parallelFor(g.n * g.blocks, minimumPerThread: 2) { range in
            for plane in range {
                let first = plane % blocks * block
                let base = plane * g.planeFloats
                if block == 16 {
                    let (s0, s1, t0, t1) = (lanes(a, from: first), lanes(a, from: first + 8), lanes(b, from: first),
                                            lanes(b, from: first + 8))
                    for i in 0..<area {
                        let at = base + i * 16
                        store8(activated(t0.addingProduct(load8(xp + at), s0)), yp + at)
                        store8(activated(t1.addingProduct(load8(xp + at + 8), s1)), yp + at + 8)
                    }
                } else {
                    for v in 0..<(block / 8) {
                        let (scale, shift) = (lanes(a, from: first + v * 8), lanes(b, from: first + v * 8))
                        for i in 0..<area {
                            let at = base + i * block + v * 8
                            store8(activated(shift.addingProduct(load8(xp + at), scale)), yp + at)
                        }
                    }
                }
            }
        }
    }
}

/// Concat along channels of blocked tensors: per image, each input's `[C_i/B, H, W, B]`
/// span is one contiguous copy.
final class BlockedConcatKernel: Kernel {
    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let parts = try inputs.indices.map { try requiredInput(inputs, $0) }
        guard let first = parts.first else { throw KernelError.invalid("Concat needs inputs") }
        let layout = first.layout
        var channels = 0
        for p in parts {
            guard p.layout == layout, p.rank == 4, p.shape[0] == first.shape[0], p.shape[2] == first.shape[2],
                  p.shape[3] == first.shape[3], p.elementType == .float else {
                throw KernelError.invalid("blocked Concat inputs differ: \(parts.map(\.shape))")
            }
            // Inputs with padding channels would leave gaps inside the output's blocks.
            guard !p.layout.pads(p.shape) else {
                throw KernelError.invalid("blocked Concat of \(p.shape) needs whole channel blocks")
            }
            channels += p.shape[1]
        }
        let n = first.shape[0]
        var y = try outputs.allocate(0, .float, [n, channels, first.shape[2], first.shape[3]])
        y.layout = layout
        outputs.set(0, y)
        let imageBytes = y.byteCount / max(n, 1)
        for image in 0..<n {
            var offset = image * imageBytes
            for p in parts {
                let bytes = p.byteCount / max(n, 1)
                // Skipped for an input its producer wrote in place in the output (`MemoryPlanner`).
                if p.rawPointer + image * bytes != y.rawPointer + offset {
                    (y.rawPointer + offset).copyMemory(from: p.rawPointer + image * bytes, byteCount: bytes)
                }
                offset += bytes
            }
        }
    }
}
