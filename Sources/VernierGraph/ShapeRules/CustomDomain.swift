/// Shape rules of the `com.microsoft` ops that exporters and ONNX Runtime's offline
/// optimizer commonly emit.
enum CustomDomainRules {
    static var all: [String: ShapeRule] {
        [
            "FusedConv": { ctx in [.tensor(try ctx.elementType(0), try ConvRules.convShape(ctx, x: 0, w: 1))] },
            "Gelu": sameAsInput,
            "FastGelu": sameAsInput,
            "BiasGelu": sameAsInput,
            "QuickGelu": sameAsInput,
            "SkipLayerNormalization": sameAsInput,
            "SimplifiedLayerNormalization": sameAsInput,
            // ONNX Runtime's QOperator element-wise ops: (A, A_scale, A_zero_point, B,
            // B_scale, B_zero_point, C_scale, C_zero_point), C of A's type, broadcast.
            "QLinearAdd": qlinearBinary,
            "QLinearMul": qlinearBinary,
            // (X, X_scale, X_zero_point, Y_scale, Y_zero_point), Y of X's type and shape.
            "QLinearSigmoid": sameAsInput,
            // (A, a_scale, a_zero_point, B, b_scale, b_zero_point, C, y_scale,
            // y_zero_point) with Gemm's transA / transB: Y [M, N] of y_zero_point's type,
            // uint8 without it, fp32 without y_scale.
            "QGemm": { ctx in
                let type = !ctx.hasInput(7) ? ElementType.float : ctx.hasInput(8) ? try ctx.elementType(8) : .uint8
                return [.tensor(type, try MatMulRules.gemmShape(ctx, a: 0, b: 3))]
            },
            "FusedMatMul": { ctx in
                var a = try ctx.shape(0), b = try ctx.shape(1)
                if try ctx.node.int("transA", default: 0) != 0, a.count >= 2 { a.swapAt(a.count - 1, a.count - 2) }
                if try ctx.node.int("transB", default: 0) != 0, b.count >= 2 { b.swapAt(b.count - 1, b.count - 2) }
                return [.tensor(try ctx.elementType(0), try MatMulRules.matmulShape(a, b))]
            },
        ]
    }

    static func qlinearBinary(_ ctx: RuleContext) throws -> [ValueFacts] {
        [.tensor(try ctx.elementType(0), try broadcast([ctx.shape(0), ctx.shape(3)]))]
    }
}
