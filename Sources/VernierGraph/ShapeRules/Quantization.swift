/// Shape rules of (de)quantization: QuantizeLinear, DequantizeLinear,
/// DynamicQuantizeLinear. QLinearConv/ConvInteger live in Conv.swift and
/// QLinearMatMul/MatMulInteger in MatMul.swift.
enum QuantizationRules {
    static var all: [String: ShapeRule] {
        [
            "QuantizeLinear": { ctx in
                let x = try ctx.shape(0)
                let outputType = try ctx.node.int("output_dtype", default: 0)
                let element: ElementType
                if outputType != 0, let t = ElementType(rawValue: outputType) {
                    element = t
                } else if ctx.hasInput(2) {
                    element = try ctx.elementType(2)
                } else {
                    element = .uint8
                }
                return [.tensor(element, x)]
            },
            "DequantizeLinear": { ctx in
                let x = try ctx.shape(0)
                let element = ctx.inputs.count > 1 ? (ctx.inputs[1].type?.elementType ?? .float) : .float
                return [.tensor(element, x)]
            },
            "DynamicQuantizeLinear": { ctx in
                let x = try ctx.shape(0)
                return [.tensor(.uint8, x), .tensor(.float, []), .tensor(.uint8, [])]
            },
        ]
    }
}
