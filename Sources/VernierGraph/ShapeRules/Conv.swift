/// Shape rules of convolutions: Conv, ConvTranspose, and their quantized forms
/// QLinearConv and ConvInteger.
enum ConvRules {
    static var all: [String: ShapeRule] {
        [
            "Conv": { ctx in [.tensor(try ctx.elementType(0), try convShape(ctx, x: 0, w: 1))] },
            "ConvInteger": { ctx in [.tensor(.int32, try convShape(ctx, x: 0, w: 1))] },
            "QLinearConv": { ctx in
                let out = ctx.hasInput(7) ? try ctx.elementType(7) : try ctx.elementType(0)
                return [.tensor(out, try convShape(ctx, x: 0, w: 3))]
            },
            "ConvTranspose": { ctx in [.tensor(try ctx.elementType(0), try convTransposeShape(ctx))] },
            "DeformConv": { ctx in [.tensor(try ctx.elementType(0), try convShape(ctx, x: 0, w: 1))] },
        ]
    }

    /// Shared attribute reading of the convolution family.
    struct Window {
        var kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], autoPad: String, group: Int

        init(_ ctx: RuleContext, spatialRank n: Int, kernelFromWeights: [Dim]) throws {
            let node = ctx.node
            if let k = try node.ints("kernel_shape") {
                kernel = k
            } else {
                let known = kernelFromWeights.compactMap(\.intValue)
                guard known.count == kernelFromWeights.count else { throw Incomplete(input: 1) }
                kernel = known
            }
            strides = try node.ints("strides") ?? Array(repeating: 1, count: n)
            dilations = try node.ints("dilations") ?? Array(repeating: 1, count: n)
            pads = try node.ints("pads") ?? Array(repeating: 0, count: 2 * n)
            autoPad = try node.string("auto_pad", default: "NOTSET")
            group = try node.int("group", default: 1)
            guard kernel.count == n, strides.count == n, dilations.count == n, pads.count == 2 * n else {
                throw ShapeError("kernel_shape \(kernel), strides \(strides), dilations \(dilations) and pads \(pads) do not match \(n) spatial dims")
            }
            guard group > 0 else { throw ShapeError("group \(group) must be positive") }
            guard pads.allSatisfy({ $0 >= 0 }) else { throw ShapeError("pads \(pads) must not be negative") }
        }
    }

    static func convShape(_ ctx: RuleContext, x: Int, w: Int) throws -> [Dim] {
        let xs = try ctx.shape(x), ws = try ctx.shape(w)
        guard xs.count >= 3, ws.count == xs.count else {
            throw ShapeError("input \(xs.shapeDescription) and weights \(ws.shapeDescription) must have the same rank, at least 3")
        }
        let n = xs.count - 2
        let win = try Window(ctx, spatialRank: n, kernelFromWeights: Array(ws[2...]))
        if let c = xs[1].intValue, let wc = ws[1].intValue, c != Int.multiplying(wc, win.group) {
            throw ShapeError("input has \(c) channels but weights \(ws.shapeDescription) with group \(win.group) expect \(wc * win.group)")
        }
        var out = [xs[0], ws[0]]
        for i in 0..<n {
            out.append(try ctx.windowOutput(input: xs[2 + i], kernel: win.kernel[i], stride: win.strides[i],
                                            dilation: win.dilations[i], padBegin: win.pads[i], padEnd: win.pads[n + i],
                                            autoPad: win.autoPad, ceilMode: false))
        }
        return out
    }

    static func convTransposeShape(_ ctx: RuleContext) throws -> [Dim] {
        let xs = try ctx.shape(0), ws = try ctx.shape(1)
        guard xs.count >= 3, ws.count == xs.count else {
            throw ShapeError("input \(xs.shapeDescription) and weights \(ws.shapeDescription) must have the same rank, at least 3")
        }
        let n = xs.count - 2
        let win = try Window(ctx, spatialRank: n, kernelFromWeights: Array(ws[2...]))
        let outputPadding = try ctx.node.ints("output_padding") ?? Array(repeating: 0, count: n)
        guard outputPadding.count == n else { throw ShapeError("output_padding \(outputPadding) does not match \(n) spatial dims") }
        var out = [xs[0], ws[1] * .value(win.group)]
        if let explicit = try ctx.node.ints("output_shape") {
            let spatial = explicit.count == n + 2 ? Array(explicit[2...]) : explicit
            guard spatial.count == n else { throw ShapeError("output_shape \(explicit) does not match \(n) spatial dims") }
            return out + spatial.map(Dim.value)
        }
        for i in 0..<n {
            let input = xs[2 + i]
            if win.autoPad == "SAME_UPPER" || win.autoPad == "SAME_LOWER" {
                out.append(input * .value(win.strides[i]))
                continue
            }
            let effective = Int.adding(Int.multiplying(win.kernel[i] - 1, win.dilations[i]), 1)
            let padding = win.autoPad == "VALID" ? 0 : Int.adding(win.pads[i], win.pads[n + i])
            let size = (input - .value(1)) * .value(win.strides[i]) + .value(outputPadding[i] + effective - padding)
            if let s = size.intValue, s <= 0 { throw ShapeError("output size \(s) along spatial axis \(i) is not positive") }
            out.append(size)
        }
        return out
    }
}
