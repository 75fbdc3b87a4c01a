/// The attributes of a 2-D convolution in ONNX terms, shared by the reference and the
/// oneDNN kernels. Input NCHW `[N, C, H, W]`, weights `[M, C/group, kH, kW]`.
public struct ConvGeometry: Sendable, Hashable {
    /// `[strideH, strideW]`.
    public var strides: [Int]
    /// ONNX order: `[top, left, bottom, right]`.
    public var pads: [Int]
    /// `[dilationH, dilationW]`, 1 meaning no dilation (ONNX convention).
    public var dilations: [Int]
    public var group: Int

    public init(strides: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0],
                dilations: [Int] = [1, 1], group: Int = 1) {
        self.strides = strides
        self.pads = pads
        self.dilations = dilations
        self.group = group
    }

    /// Output `[N, M, OH, OW]` for an input and weight shape, or nil when they do not fit.
    public func outputShape(input: [Int], weights: [Int]) -> [Int]? {
        guard input.count == 4, weights.count == 4, strides.count == 2, pads.count == 4,
              dilations.count == 2, group >= 1,
              strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
              pads.allSatisfy({ $0 >= 0 }),
              input[1] % group == 0, weights[0] % group == 0,
              weights[1] == input[1] / group
        else { return nil }
        var out = [input[0], weights[0]]
        for axis in 0..<2 {
            let extent = dilations[axis] * (weights[2 + axis] - 1) + 1
            let padded = input[2 + axis] + pads[axis] + pads[axis + 2]
            guard padded >= extent else { return nil }
            out.append((padded - extent) / strides[axis] + 1)
        }
        return out
    }
}
