import VernierGraph

extension GraphBuilder {
    /// The shape of a quantized convolution block (`qdqConv`).
    public struct QDQConv {
        public var channels = 16, outputs = 24, size = 9, kernel = 3
        public var stride = 1, pad = 1, group = 1
        public var xZero: UInt8 = 10
        public var outputSigned = false
        /// One weight scale per output channel (DequantizeLinear axis 0) or one in all.
        public var perChannel = true
        public var bias = true
        public var relu = true
        /// A second quantized 1x1 convolution after the first (its input then stays 8-bit).
        public var second = false
        /// The bias as an fp32 initializer (as `vernier quantize` and TensorRT-style
        /// exports keep it) instead of DequantizeLinear(int32).
        public var floatBias = false
        /// Whether the result is quantized again; without, `y` is the conv's fp32 result
        /// (its activation applied), as in TensorRT-style QDQ exports.
        public var quantizedOutput = true
        /// `y = activation(conv + x)` (needs outputs == channels, stride 1, same padding).
        public var residual = false

        public init(channels: Int = 16, outputs: Int = 24, size: Int = 9, kernel: Int = 3, stride: Int = 1, pad: Int = 1,
                    group: Int = 1, xZero: UInt8 = 10, outputSigned: Bool = false, perChannel: Bool = true,
                    bias: Bool = true, relu: Bool = true, second: Bool = false, floatBias: Bool = false,
                    quantizedOutput: Bool = true, residual: Bool = false) {
            (self.channels, self.outputs, self.size, self.kernel) = (channels, outputs, size, kernel)
            (self.stride, self.pad, self.group, self.xZero) = (stride, pad, group, xZero)
            (self.outputSigned, self.perChannel, self.bias, self.relu) = (outputSigned, perChannel, bias, relu)
            (self.second, self.floatBias, self.quantizedOutput, self.residual) = (second, floatBias, quantizedOutput, residual)
        }
    }

    /// A convolution as a QDQ quantizer writes it (ONNX Runtime's `quantize_static`):
    /// x (fp32) -> QuantizeLinear -> DequantizeLinear -> Conv(DequantizeLinear(wq s8),
    /// DequantizeLinear(bq int32, scale x_scale * w_scale)) [-> Relu] -> QuantizeLinear
    /// -> DequantizeLinear -> y (fp32). x_scale 0.02, y_scale 0.05; weights random in
    /// +-63 (no u8 x s8 pair sum leaves int16), biases random in +-2000.
    public static func qdqConv(_ c: QDQConv, seed: UInt64 = 3) -> GraphBuilder {
        var rng = SplitMix64(seed: seed)
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, [1, c.channels, c.size, c.size].map(Dim.value))
        let xScale: Float = 0.02, yScale: Float = 0.05
        let perGroup = c.channels / c.group
        let wCount = c.outputs * perGroup * c.kernel * c.kernel
        let wScales = (0..<(c.perChannel ? c.outputs : 1)).map { i in 0.002 + 0.0005 * Float(i % 5) }
        let parameterDims = c.perChannel ? [c.outputs] : []
        let biases = (0..<c.outputs).map { _ in Int(rng.next() % 4001) - 2000 }
        b.initializers += [
            TensorData(floats: [xScale], name: "xs", dims: []),
            quantized("xz", .uint8, [], [Int(c.xZero)]),
            quantized("wq", .int8, [c.outputs, perGroup, c.kernel, c.kernel], (0..<wCount).map { _ in Int(rng.next() % 127) - 63 }),
            TensorData(floats: wScales, name: "ws", dims: parameterDims),
            quantized("wz", .int8, parameterDims, Array(repeating: 0, count: wScales.count)),
            TensorData(floats: wScales.map { xScale * $0 }, name: "bs", dims: parameterDims),
            quantized("bz", .int32, parameterDims, Array(repeating: 0, count: wScales.count)),
            quantized("bq", .int32, [c.outputs], biases),
            // The fp32 bias: 0.2 of a product step off the int32 grid.
            TensorData(floats: biases.indices.map { (Float(biases[$0]) + 0.2) * xScale * wScales[c.perChannel ? $0 : 0] },
                       name: "bf", dims: [c.outputs]),
            TensorData(floats: [yScale], name: "ys", dims: []),
            quantized("yz", c.outputSigned ? .int8 : .uint8, [], [c.outputSigned ? -3 : 5]),
        ]
        b.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"])
        b.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])
        b.node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], ["axis": .int(0)])
        b.node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], ["axis": .int(0)])
        b.node("Conv", ["xd", "wd"] + (c.bias ? [c.floatBias ? "bf" : "bd"] : []), ["c"],
               ["pads": .ints(Array(repeating: c.pad, count: 4)), "strides": .ints([c.stride, c.stride]),
                "group": .int(c.group)])
        if c.residual { b.node("Add", ["c", "x"], ["a"]) }
        let sum = c.residual ? "a" : "c"
        if c.relu { b.node("Relu", [sum], [c.quantizedOutput ? "r" : "y"]) }
        if c.quantizedOutput {
            b.node("QuantizeLinear", [c.relu ? "r" : sum, "ys", "yz"], ["yq"])
            b.node("DequantizeLinear", ["yq", "ys", "yz"], [c.second ? "yd" : "y"])
        } else if !c.relu {
            b.node("Identity", [sum], ["y"])
        }
        if c.second {
            b.initializers += [
                quantized("w2", .int8, [8, c.outputs, 1, 1], (0..<(8 * c.outputs)).map { _ in Int(rng.next() % 127) - 63 }),
                TensorData(floats: [0.004], name: "w2s", dims: []),
                quantized("w2z", .int8, [], [0]),
                TensorData(floats: [0.1], name: "y2s", dims: []),
                quantized("y2z", .uint8, [], [128]),
            ]
            b.node("DequantizeLinear", ["w2", "w2s", "w2z"], ["w2d"])
            b.node("Conv", ["yd", "w2d"], ["c2"])
            b.node("QuantizeLinear", ["c2", "y2s", "y2z"], ["y2q"])
            b.node("DequantizeLinear", ["y2q", "y2s", "y2z"], ["y"])
        }
        b.output("y")
        return b
    }

    /// A Linear layer as a QDQ quantizer writes it: x [1, rows, k] (fp32) -> Q -> DQ ->
    /// MatMul(DQ(wq s8 [k, n], one scale per column along axis 1)) -> Q -> DQ -> y.
    /// x_scale 0.02 (zero point `xZero`), y_scale 0.05 (zero point 7); weights in +-63.
    public static func qdqMatMul(rows: Int = 20, k: Int = 48, n: Int = 40, xZero: UInt8 = 10, seed: UInt64 = 5) -> GraphBuilder {
        var rng = SplitMix64(seed: seed)
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, [1, rows, k].map(Dim.value))
        b.initializers += [
            TensorData(floats: [0.02], name: "xs", dims: []),
            quantized("xz", .uint8, [], [Int(xZero)]),
            quantized("wq", .int8, [k, n], (0..<(k * n)).map { _ in Int(rng.next() % 127) - 63 }),
            TensorData(floats: (0..<n).map { 0.003 + 0.0004 * Float($0 % 7) }, name: "ws", dims: [n]),
            quantized("wz", .int8, [n], Array(repeating: 0, count: n)),
            TensorData(floats: [0.05], name: "ys", dims: []),
            quantized("yz", .uint8, [], [7]),
        ]
        b.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"])
        b.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])
        b.node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], ["axis": .int(1)])
        b.node("MatMul", ["xd", "wd"], ["m"])
        b.node("QuantizeLinear", ["m", "ys", "yz"], ["yq"])
        b.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
        b.output("y")
        return b
    }

    /// A Linear layer as PyTorch exports it and a QDQ quantizer writes it: x [rows, k]
    /// (fp32) -> Q -> DQ -> Gemm(transB 1, DQ(wq s8 [n, k], one scale per row along axis
    /// 0), DQ(bq int32, scale x_scale * w_scale) or an fp32 bias) -> Q -> DQ -> y, or
    /// the Gemm's fp32 result as y when `quantizedOutput` is false. Scales as `qdqMatMul`;
    /// biases random in +-2000 product steps.
    public static func qdqGemm(rows: Int = 20, k: Int = 48, n: Int = 40, floatBias: Bool = false,
                               quantizedOutput: Bool = true, seed: UInt64 = 9) -> GraphBuilder {
        var rng = SplitMix64(seed: seed)
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, [rows, k].map(Dim.value))
        let xScale: Float = 0.02
        let wScales = (0..<n).map { 0.003 + 0.0004 * Float($0 % 7) }
        let biases = (0..<n).map { _ in Int(rng.next() % 4001) - 2000 }
        b.initializers += [
            TensorData(floats: [xScale], name: "xs", dims: []),
            quantized("xz", .uint8, [], [10]),
            quantized("wq", .int8, [n, k], (0..<(k * n)).map { _ in Int(rng.next() % 127) - 63 }),
            TensorData(floats: wScales, name: "ws", dims: [n]),
            quantized("wz", .int8, [n], Array(repeating: 0, count: n)),
            quantized("bq", .int32, [n], biases),
            TensorData(floats: wScales.map { xScale * $0 }, name: "bs", dims: [n]),
            quantized("bz", .int32, [n], Array(repeating: 0, count: n)),
            // 0.2 of a product step off the int32 grid.
            TensorData(floats: biases.indices.map { (Float(biases[$0]) + 0.2) * xScale * wScales[$0] }, name: "bf", dims: [n]),
            TensorData(floats: [0.05], name: "ys", dims: []),
            quantized("yz", .uint8, [], [7]),
        ]
        b.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"])
        b.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])
        b.node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], ["axis": .int(0)])
        b.node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], ["axis": .int(0)])
        b.node("Gemm", ["xd", "wd", floatBias ? "bf" : "bd"], [quantizedOutput ? "g" : "y"], ["transB": .int(1)])
        if quantizedOutput {
            b.node("QuantizeLinear", ["g", "ys", "yz"], ["yq"])
            b.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
        }
        b.output("y")
        return b
    }

    /// Data movement as a QDQ quantizer writes it around an attention head split: x [1,
    /// 6, 8] (fp32) -> Q -> DQ -> Reshape [1, 6, 2, 4] -> Q -> DQ -> Transpose (0, 2, 1,
    /// 3) -> Q -> DQ -> y. Every pair uses scale 0.03 and zero point 9, except the
    /// Transpose's QuantizeLinear, whose scale is `transposeScale`.
    public static func qdqDataMovement(transposeScale: Float = 0.03) -> GraphBuilder {
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, [1, 6, 8].map(Dim.value))
        b.initializers += [
            TensorData(floats: [0.03], name: "s", dims: []),
            TensorData(floats: [transposeScale], name: "ts", dims: []),
            quantized("z", .uint8, [], [9]),
            quantized("shape", .int64, [4], [1, 6, 2, 4]),
        ]
        b.node("QuantizeLinear", ["x", "s", "z"], ["xq"])
        b.node("DequantizeLinear", ["xq", "s", "z"], ["xd"])
        b.node("Reshape", ["xd", "shape"], ["r"])
        b.node("QuantizeLinear", ["r", "s", "z"], ["rq"])
        b.node("DequantizeLinear", ["rq", "s", "z"], ["rd"])
        b.node("Transpose", ["rd"], ["t"], ["perm": .ints([0, 2, 1, 3])])
        b.node("QuantizeLinear", ["t", "ts", "z"], ["tq"])
        b.node("DequantizeLinear", ["tq", "ts", "z"], ["y"])
        b.output("y")
        return b
    }

    /// An element-wise op as a QDQ quantizer writes it: x (`xShape`, fp32) -> Q -> DQ,
    /// a constant bq (of `bShape`) -> DQ, `op` of the two -> Q -> DQ -> y; all 8-bit
    /// tensors of `type`. Scales 0.03 (x), 0.02 (b), `outScale` (the result); zero
    /// points 9, 3 and 5 (uint8) or -9, 3 and -5 (int8).
    public static func qdqBinary(_ op: String, type: ElementType = .uint8, xShape: [Int] = [1, 6, 8], bShape: [Int] = [1, 6, 8],
                                 outScale: Float = 0.05, seed: UInt64 = 7) -> GraphBuilder {
        var rng = SplitMix64(seed: seed)
        let signed = type == .int8
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, xShape.map(Dim.value))
        let count = bShape.reduce(1, *)
        b.initializers += [
            TensorData(floats: [0.03], name: "xs", dims: []),
            quantized("xz", type, [], [signed ? -9 : 9]),
            quantized("bq", type, bShape, (0..<count).map { _ in Int(rng.next() % 256) - (signed ? 128 : 0) }),
            TensorData(floats: [0.02], name: "bs", dims: []),
            quantized("bz", type, [], [3]),
            TensorData(floats: [outScale], name: "ys", dims: []),
            quantized("yz", type, [], [signed ? -5 : 5]),
        ]
        b.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"])
        b.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])
        b.node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"])
        b.node(op, ["xd", "bd"], ["r"])
        b.node("QuantizeLinear", ["r", "ys", "yz"], ["yq"])
        b.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
        b.output("y")
        return b
    }

    /// x -> Q -> DQ -> `op` -> Q -> DQ -> y on [1, 6, 8], per-tensor parameters of `type`.
    public static func qdqUnary(_ op: String, type: ElementType = .uint8, outScale: Float = 1.0 / 255) -> GraphBuilder {
        let signed = type == .int8
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, [1, 6, 8].map(Dim.value))
        b.initializers += [
            TensorData(floats: [0.05], name: "xs", dims: []),
            quantized("xz", type, [], [signed ? -7 : 121]),
            TensorData(floats: [outScale], name: "ys", dims: []),
            quantized("yz", type, [], [signed ? -128 : 0]),
        ]
        b.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"])
        b.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])
        b.node(op, ["xd"], ["r"])
        b.node("QuantizeLinear", ["r", "ys", "yz"], ["yq"])
        b.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
        b.output("y")
        return b
    }

    /// A quantized SiLU as a QDQ quantizer writes it: x -> Q -> DQ -> Sigmoid -> Q -> DQ,
    /// times the same DQ(x) (first operand, or second with `gateFirst`) -> Q -> DQ -> y
    /// on [1, 16, 16] (256 inputs). `sigmoidZeroPointName` names the sigmoid result's
    /// zero point as the Mul reads it: "sz" (the same initializer), "sz2" (an equal copy)
    /// or "szOther" (a different value, which must not fuse).
    /// With `gate` "HardSigmoid" (alpha 0.25, beta 0.45), the same pattern is a quantized
    /// HardSwish as MobileNetV3's QDQ export writes it.
    public static func qdqSiLU(type: ElementType = .uint8, gateFirst: Bool = false,
                               sigmoidZeroPointName: String = "sz", gate: String = "Sigmoid") -> GraphBuilder {
        let signed = type == .int8
        var b = GraphBuilder()
        b.opset = 13
        b.input("x", .float, [1, 16, 16].map(Dim.value))
        b.initializers += [
            TensorData(floats: [0.05], name: "xs", dims: []),
            quantized("xz", type, [], [signed ? -7 : 121]),
            TensorData(floats: [1.0 / 255], name: "ss", dims: []),
            quantized("sz", type, [], [signed ? -128 : 0]),
            quantized("sz2", type, [], [signed ? -128 : 0]),
            quantized("szOther", type, [], [signed ? -127 : 1]),
            TensorData(floats: [0.04], name: "ys", dims: []),
            quantized("yz", type, [], [signed ? -100 : 28]),
        ]
        b.node("QuantizeLinear", ["x", "xs", "xz"], ["xq"])
        b.node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])
        b.node(gate, ["xd"], ["s"], gate == "HardSigmoid" ? ["alpha": .float(0.25), "beta": .float(0.45)] : [:])
        b.node("QuantizeLinear", ["s", "ss", "sz"], ["sq"])
        b.node("DequantizeLinear", ["sq", "ss", sigmoidZeroPointName], ["sd"])
        b.node("Mul", gateFirst ? ["sd", "xd"] : ["xd", "sd"], ["r"])
        b.node("QuantizeLinear", ["r", "ys", "yz"], ["yq"])
        b.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])
        b.output("y")
        return b
    }

    /// An initializer of 8-bit or int32 integers.
    public static func quantized(_ name: String, _ type: ElementType, _ dims: [Int], _ values: [Int]) -> TensorData {
        var bytes: [UInt8] = []
        for v in values {
            if type == .int32 {
                withUnsafeBytes(of: Int32(v).littleEndian) { bytes.append(contentsOf: $0) }
            } else if type == .int64 {
                withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) }
            } else {
                bytes.append(UInt8(truncatingIfNeeded: v))
            }
        }
        return TensorData(name: name, elementType: type, dims: dims, storage: .bytes(bytes))
    }
}
