/// Shape rules of pooling: windowed (MaxPool, AveragePool, LpPool) and global.
enum PoolRules {
    static var all: [String: ShapeRule] {
        [
            "MaxPool": { ctx in
                let shape = try pooledShape(ctx)
                return [.tensor(try ctx.elementType(0), shape), .tensor(.int64, shape)]
            },
            "AveragePool": { ctx in [.tensor(try ctx.elementType(0), try pooledShape(ctx))] },
            "LpPool": { ctx in [.tensor(try ctx.elementType(0), try pooledShape(ctx))] },
            "GlobalAveragePool": global,
            "GlobalMaxPool": global,
            "GlobalLpPool": global,
            "MaxRoiPool": { ctx in
                let x = try ctx.shape(0), rois = try ctx.shape(1)
                guard let pooled = try ctx.node.ints("pooled_shape"), pooled.count == x.count - 2, rois.count == 2 else {
                    throw ShapeError("pooled_shape must give one size per spatial dim")
                }
                return [.tensor(try ctx.elementType(0), [rois[0], x[1]] + pooled.map(Dim.value))]
            },
        ]
    }

    static func global(_ ctx: RuleContext) throws -> [ValueFacts] {
        let x = try ctx.shape(0)
        guard x.count >= 2 else { throw ShapeError("input \(x.shapeDescription) needs a batch and a channel dim") }
        return [.tensor(try ctx.elementType(0), Array(x[0..<2]) + Array(repeating: .value(1), count: x.count - 2))]
    }

    static func pooledShape(_ ctx: RuleContext) throws -> [Dim] {
        let x = try ctx.shape(0)
        guard x.count >= 3 else { throw ShapeError("input \(x.shapeDescription) needs at least one spatial dim") }
        let n = x.count - 2
        let node = ctx.node
        guard let kernel = try node.ints("kernel_shape"), kernel.count == n else {
            throw ShapeError("kernel_shape must give \(n) sizes")
        }
        let strides = try node.ints("strides") ?? Array(repeating: 1, count: n)
        let dilations = try node.ints("dilations") ?? Array(repeating: 1, count: n)
        let pads = try node.ints("pads") ?? Array(repeating: 0, count: 2 * n)
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        let ceilMode = try node.int("ceil_mode", default: 0) != 0
        guard strides.count == n, dilations.count == n, pads.count == 2 * n else {
            throw ShapeError("strides \(strides), dilations \(dilations) and pads \(pads) do not match \(n) spatial dims")
        }
        var out = Array(x[0..<2])
        for i in 0..<n {
            out.append(try ctx.windowOutput(input: x[2 + i], kernel: kernel[i], stride: strides[i], dilation: dilations[i],
                                            padBegin: pads[i], padEnd: pads[n + i], autoPad: autoPad, ceilMode: ceilMode))
        }
        return out
    }
}
