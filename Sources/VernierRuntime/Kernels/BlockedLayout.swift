import VernierGraph

/// Kernels for activations in the channel-blocked layout (`[N, C/B, H, W, B]`, see
/// `TensorLayout`) that sit between oneDNN convolutions: window and global pooling, a
/// per-channel broadcast Add/Sub/Mul/Div (squeeze-and-excitation scales) and a channel
/// Concat. The compiler picks them instead of the plain kernels when `LayoutPlanner`
/// keeps a node's input blocked; element-wise ops of same-shaped operands need no
/// kernel of their own (their plain loops are layout-blind).
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
        default: return nil
        }
    }
}

/// `[N, C/B, H, W, B]` geometry of a blocked tensor.
private struct BlockedShape {
    let n, blocks, h, w, block: Int
    init(_ t: Tensor) throws {
        guard case .channelBlocked(let b) = t.layout, t.rank == 4, t.shape[1] % b == 0, b % 8 == 0 else {
            throw KernelError.invalid("expected a 4-D channel-blocked tensor, got \(t.shape) \(t.layout)")
        }
        (n, blocks, h, w, block) = (t.shape[0], t.shape[1] / b, t.shape[2], t.shape[3], b)
    }
    var planeFloats: Int { h * w * block }
}

@inline(__always) private func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeMutableRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// MaxPool / AveragePool over H and W of a blocked tensor: each tap is one vector of B
/// channels, so the window reduces whole registers.
final class BlockedWindowPoolKernel: Kernel {
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
        let (oh, ow) = (resolved.output[0], resolved.output[1])
        let begin = resolved.padBegin
        var y = try outputs.allocate(0, .float, [g.n, g.blocks * g.block, oh, ow])
        y.layout = x.layout
        outputs.set(0, y)
        let xp = x.rawPointer.assumingMemoryBound(to: Float.self)
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let vectors = g.block / 8
        let (kh, kw) = (window.kernel[0], window.kernel[1])
        let (sh, sw, dh, dw) = (window.strides[0], window.strides[1], window.dilations[0], window.dilations[1])
        // count_include_pad divides by the whole window, as the plain kernel does.
        let fullWindow = countIncludePad ? kh * kw : nil
        let rows = g.n * g.blocks * oh
        ThreadPool.parallelFor(rows, minimumPerThread: 4) { range in
            for row in range {
                let plane = row / oh, oy = row % oh
                let source = xp + plane * g.planeFloats
                let target = yp + (plane * oh + oy) * ow * g.block
                let y0 = oy * sh - begin[0]
                for ox in 0..<ow {
                    let x0 = ox * sw - begin[1]
                    for v in 0..<vectors {
                        var acc = SIMD8<Float>(repeating: self.average ? 0 : -.infinity)
                        var count = 0
                        for ky in 0..<kh {
                            let iy = y0 + ky * dh
                            guard iy >= 0 && iy < g.h else { continue }
                            for kx in 0..<kw {
                                let ix = x0 + kx * dw
                                guard ix >= 0 && ix < g.w else { continue }
                                let tap = load8(source + (iy * g.w + ix) * g.block + v * 8)
                                acc = self.average ? acc + tap : NormMath.maximum(acc, tap)
                                count += 1
                            }
                        }
                        if self.average { acc /= SIMD8(repeating: Float(max(fullWindow ?? count, 1))) }
                        store8(acc, target + ox * g.block + v * 8)
                    }
                }
            }
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
        let y = try outputs.allocate(0, .float, [g.n, g.blocks * g.block, 1, 1])
        let xp = x.rawPointer.assumingMemoryBound(to: Float.self)
        let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
        let vectors = g.block / 8
        let area = g.h * g.w
        ThreadPool.parallelFor(g.n * g.blocks, minimumPerThread: 2) { range in
            for plane in range {
                let source = xp + plane * g.planeFloats
                for v in 0..<vectors {
                    var acc = SIMD8<Float>(repeating: self.average ? 0 : -.infinity)
                    for i in 0..<area {
                        let tap = load8(source + i * g.block + v * 8)
                        acc = self.average ? acc + tap : NormMath.maximum(acc, tap)
                    }
                    if self.average { acc /= SIMD8(repeating: Float(max(area, 1))) }
                    store8(acc, yp + plane * g.block + v * 8)
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
        let channels = g.blocks * g.block
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
                    let c = (perBatch ? n * channels : 0) + cb * g.block + v * 8
                    let scale = load8(sp + c)
                    for i in 0..<area {
                        let at = base + i * g.block + v * 8
                        let e = load8(xp + at)
                        let r: SIMD8<Float>
                        switch op {
                        case .add: r = e + scale
                        case .mul: r = e * scale
                        case .sub: r = blockedFirst ? e - scale : scale - e
                        case .div: r = blockedFirst ? e / scale : scale / e
                        }
                        store8(r, yp + at)
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
                (y.rawPointer + offset).copyMemory(from: p.rawPointer + image * bytes, byteCount: bytes)
                offset += bytes
            }
        }
    }
}
