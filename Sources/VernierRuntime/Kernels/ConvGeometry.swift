import VernierGraph

/// The resolved window of a 1-D, 2-D or 3-D convolution (or transposed convolution) in
/// ONNX terms, shared by the reference and the oneDNN kernels: explicit pads (auto_pad
/// already applied), one entry per spatial axis.
///
/// Conv: input `[N, C, D1, ..., Dn]`, weights `[M, C/group, k1, ..., kn]`.
/// ConvTranspose: input `[N, C, D1, ..., Dn]`, weights `[C, M/group, k1, ..., kn]`.
public struct ConvGeometry: Sendable, Hashable {
    /// One stride per spatial axis.
    public var strides: [Int]
    /// ONNX order: `[begin1, ..., beginN, end1, ..., endN]`.
    public var pads: [Int]
    /// 1 meaning no dilation (ONNX convention; oneDNN counts from 0).
    public var dilations: [Int]
    public var group: Int
    /// ConvTranspose only: extra output positions at the end of each spatial axis.
    public var outputPadding: [Int]

    /// Missing arrays default to stride 1, no padding, no dilation over `spatialRank` axes
    /// (or over as many axes as the arrays that are given have).
    public init(spatialRank: Int = 2, strides: [Int]? = nil, pads: [Int]? = nil,
                dilations: [Int]? = nil, group: Int = 1, outputPadding: [Int]? = nil) {
        let n = strides?.count ?? dilations?.count ?? pads.map { $0.count / 2 } ?? outputPadding?.count ?? spatialRank
        self.strides = strides ?? Array(repeating: 1, count: n)
        self.pads = pads ?? Array(repeating: 0, count: 2 * n)
        self.dilations = dilations ?? Array(repeating: 1, count: n)
        self.group = group
        self.outputPadding = outputPadding ?? Array(repeating: 0, count: n)
    }

    public var spatialRank: Int { strides.count }

    /// Whether the arrays agree with each other and with `rank`-D tensors.
    func isWellFormed(rank: Int) -> Bool {
        let n = strides.count
        return n >= 1 && rank == n + 2 && pads.count == 2 * n && dilations.count == n && outputPadding.count == n
            && group >= 1 && strides.allSatisfy { $0 >= 1 } && dilations.allSatisfy { $0 >= 1 }
            && pads.allSatisfy { $0 >= 0 } && outputPadding.allSatisfy { $0 >= 0 }
    }

    /// Conv output `[N, M, O1, ..., On]`, or nil when the shapes do not fit.
    public func outputShape(input: [Int], weights: [Int]) -> [Int]? {
        guard isWellFormed(rank: input.count), weights.count == input.count,
              input.allSatisfy({ $0 >= 0 }), weights.allSatisfy({ $0 >= 1 }),
              input[1] % group == 0, weights[0] % group == 0, weights[1] * group == input[1]
        else { return nil }
        let n = spatialRank
        var out = [input[0], weights[0]]
        for axis in 0..<n {
            let extent = dilations[axis] * (weights[2 + axis] - 1) + 1
            let padded = input[2 + axis] + pads[axis] + pads[n + axis]
            guard padded >= extent else { return nil }
            out.append((padded - extent) / strides[axis] + 1)
        }
        return out
    }

    /// ConvTranspose output `[N, M, O1, ..., On]` with
    /// `O = stride * (D - 1) + outputPadding + dilation * (k - 1) + 1 - padBegin - padEnd`,
    /// or nil when the shapes do not fit.
    public func transposedOutputShape(input: [Int], weights: [Int]) -> [Int]? {
        guard isWellFormed(rank: input.count), weights.count == input.count,
              input.allSatisfy({ $0 >= 0 }), weights.allSatisfy({ $0 >= 1 }),
              input[1] % group == 0, weights[0] == input[1]
        else { return nil }
        let n = spatialRank
        var out = [input[0], weights[1] * group]
        for axis in 0..<n {
            guard input[2 + axis] >= 1 else { return nil }
            let extent = dilations[axis] * (weights[2 + axis] - 1) + 1
            let size = strides[axis] * (input[2 + axis] - 1) + outputPadding[axis] + extent
                - pads[axis] - pads[n + axis]
            guard size >= 1 else { return nil }
            out.append(size)
        }
        return out
    }
}

/// A Conv or ConvTranspose node's window attributes as written (auto_pad not applied
/// yet: SAME padding depends on the input size). `convGeometry` / `transposedGeometry`
/// resolve them for concrete shapes, the way the shape rules do.
public struct ConvAttributes: Sendable, Hashable {
    public var kernelShape: [Int]?
    public var strides: [Int]?
    public var pads: [Int]?
    public var dilations: [Int]?
    public var group: Int
    /// NOTSET, SAME_UPPER, SAME_LOWER or VALID.
    public var autoPad: String
    /// ConvTranspose only.
    public var outputPadding: [Int]?
    /// ConvTranspose only: spatial dims (a full `[N, C, ...]` form is cut to its spatial part).
    public var outputShape: [Int]?

    public init(kernelShape: [Int]? = nil, strides: [Int]? = nil, pads: [Int]? = nil, dilations: [Int]? = nil,
                group: Int = 1, autoPad: String = "NOTSET", outputPadding: [Int]? = nil, outputShape: [Int]? = nil) {
        self.kernelShape = kernelShape
        self.strides = strides
        self.pads = pads
        self.dilations = dilations
        self.group = group
        self.autoPad = autoPad
        self.outputPadding = outputPadding
        self.outputShape = outputShape
    }

    /// Reads the attributes of a Conv or ConvTranspose node.
    public init(node: Node) throws {
        self.init(kernelShape: try node.ints("kernel_shape"), strides: try node.ints("strides"),
                  pads: try node.ints("pads"), dilations: try node.ints("dilations"),
                  group: try node.int("group", default: 1),
                  autoPad: try node.string("auto_pad", default: "NOTSET"),
                  outputPadding: try node.ints("output_padding"), outputShape: try node.ints("output_shape"))
        guard ["NOTSET", "", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            throw KernelError.invalid("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
        guard group >= 1 else { throw KernelError.invalid("group \(group) must be positive") }
    }

    /// Strides, dilations and the kernel for `rank`-D tensors, checked.
    private func window(input: [Int], weights: [Int]) throws -> (n: Int, kernel: [Int], strides: [Int], dilations: [Int]) {
        guard input.count >= 3, weights.count == input.count else {
            throw KernelError.invalid("input \(input) and weights \(weights) must have the same rank, at least 3")
        }
        let n = input.count - 2
        let kernel = Array(weights[2...])
        if let kernelShape, kernelShape != kernel {
            throw KernelError.invalid("kernel_shape \(kernelShape) differs from the weights' spatial dims \(kernel)")
        }
        let strides = self.strides ?? Array(repeating: 1, count: n)
        let dilations = self.dilations ?? Array(repeating: 1, count: n)
        guard strides.count == n, dilations.count == n, (pads?.count ?? 2 * n) == 2 * n,
              (outputPadding?.count ?? n) == n else {
            throw KernelError.invalid("strides \(strides), dilations \(dilations), pads \(pads ?? []) or output_padding "
                                      + "\(outputPadding ?? []) do not match \(n) spatial dims")
        }
        guard strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }) else {
            throw KernelError.invalid("strides \(strides) and dilations \(dilations) must be positive")
        }
        return (n, kernel, strides, dilations)
    }

    /// Conv geometry for concrete shapes (auto_pad applied).
    public func convGeometry(input: [Int], weights: [Int]) throws -> ConvGeometry {
        let (n, kernel, strides, dilations) = try window(input: input, weights: weights)
        var pads: [Int]
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            // Output ceil(D / stride); the padding that takes, the odd one at the end
            // (UPPER) or at the beginning (LOWER).
            pads = Array(repeating: 0, count: 2 * n)
            for axis in 0..<n {
                let size = input[2 + axis]
                let out = (size + strides[axis] - 1) / strides[axis]
                let extent = dilations[axis] * (kernel[axis] - 1) + 1
                let total = max(0, (out - 1) * strides[axis] + extent - size)
                let small = total / 2
                pads[axis] = autoPad == "SAME_UPPER" ? small : total - small
                pads[n + axis] = total - pads[axis]
            }
        case "VALID":
            pads = Array(repeating: 0, count: 2 * n)
        default:
            pads = self.pads ?? Array(repeating: 0, count: 2 * n)
        }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw KernelError.invalid("pads \(pads) must not be negative") }
        let geometry = ConvGeometry(strides: strides, pads: pads, dilations: dilations, group: group)
        guard geometry.outputShape(input: input, weights: weights) != nil else {
            throw KernelError.invalid("Conv input \(input) and weights \(weights) do not fit with group \(group), "
                                      + "strides \(strides), pads \(pads), dilations \(dilations)")
        }
        return geometry
    }

    /// ConvTranspose geometry for concrete shapes: `output_shape` or auto_pad turned
    /// into explicit pads (ONNX's formulas: total padding
    /// `stride * (D - 1) + output_padding + dilation * (k - 1) + 1 - O`, split in half,
    /// the odd one at the end for SAME_UPPER and at the beginning otherwise). A
    /// negative end padding (an `output_shape` larger than the natural output) becomes
    /// extra output padding; a negative begin padding is unsupported.
    public func transposedGeometry(input: [Int], weights: [Int]) throws -> ConvGeometry {
        let (n, kernel, strides, dilations) = try window(input: input, weights: weights)
        var outputPadding = self.outputPadding ?? Array(repeating: 0, count: n)
        var pads = self.pads ?? Array(repeating: 0, count: 2 * n)
        var targets: [Int]?
        if let outputShape {
            let spatial = outputShape.count == n + 2 ? Array(outputShape[2...]) : outputShape
            guard spatial.count == n else {
                throw KernelError.invalid("output_shape \(outputShape) does not match \(n) spatial dims")
            }
            targets = spatial
        } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            targets = (0..<n).map { input[2 + $0] * strides[$0] }
        } else if autoPad == "VALID" {
            pads = Array(repeating: 0, count: 2 * n)
        }
        if let targets {
            for axis in 0..<n {
                let extent = dilations[axis] * (kernel[axis] - 1) + 1
                let total = strides[axis] * (input[2 + axis] - 1) + outputPadding[axis] + extent - targets[axis]
                let half = floorDivide(total, 2)
                pads[axis] = autoPad == "SAME_UPPER" ? half : total - half
                pads[n + axis] = total - pads[axis]
            }
        }
        for axis in 0..<n where pads[n + axis] < 0 {
            outputPadding[axis] -= pads[n + axis]
            pads[n + axis] = 0
        }
        guard pads.allSatisfy({ $0 >= 0 }) else {
            throw KernelError.unsupported("ConvTranspose with negative padding at the start (pads \(pads))")
        }
        let geometry = ConvGeometry(strides: strides, pads: pads, dilations: dilations, group: group,
                                    outputPadding: outputPadding)
        guard geometry.transposedOutputShape(input: input, weights: weights) != nil else {
            throw KernelError.invalid("ConvTranspose input \(input) and weights \(weights) do not fit with group "
                                      + "\(group), strides \(strides), pads \(pads), output_padding \(outputPadding)")
        }
        return geometry
    }
}

/// Integer division rounding toward negative infinity (Python's `//`, which ONNX's
/// formulas assume for negative totals).
@inline(__always)
func floorDivide(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
