import CDNNL
import Foundation
import VernierGraph

/// What a fused Conv / ConvTranspose / Gemm / MatMul node does after its product, as
/// the graph passes record it on the node:
///
/// - `fused_sum` (int 1): the node has one extra LAST input, a tensor of the output's
///   shape, added to the result (a residual Add folded into the producer);
/// - `fused_activation` (string) with `fused_alpha` / `fused_beta` (floats), applied
///   after the sum.
///
/// The oneDNN plans map it onto post-ops (`appendPostOps`); the reference kernels apply
/// it element by element (`apply`).
public struct FusedEpilogue: Sendable, Hashable {
    /// The activations a graph pass may fuse, with their ONNX parameters.
    public enum Activation: Sendable, Hashable {
        case relu
        /// `x < 0 ? alpha * x : x`.
        case leakyRelu(alpha: Float)
        /// `min(max(x, min), max)`.
        case clip(min: Float, max: Float)
        case sigmoid
        /// `max(0, min(1, alpha * x + beta))`.
        case hardSigmoid(alpha: Float, beta: Float)
        /// `x * max(0, min(1, x / 6 + 1 / 2))`.
        case hardSwish
        /// `x * sigmoid(x)` (Swish with beta 1).
        case silu
        case tanh
        /// The exact (erf) GELU.
        case gelu
    }

    public var activation: Activation?
    /// Whether the node's last input is an addend of the output's shape.
    public var addsResidual: Bool

    public init(activation: Activation? = nil, addsResidual: Bool = false) {
        self.activation = activation
        self.addsResidual = addsResidual
    }

    /// Nothing fused.
    public static let none = FusedEpilogue()

    public var isEmpty: Bool { activation == nil && !addsResidual }

    /// Reads `fused_activation`, `fused_alpha`, `fused_beta` and `fused_sum` from a node.
    /// Throws `KernelError.unsupported` for an activation name it does not know.
    public init(node: Node) throws {
        addsResidual = try node.int("fused_sum", default: 0) != 0
        guard node.hasAttribute("fused_activation") else {
            activation = nil
            return
        }
        let name = try node.string("fused_activation")
        let alpha = node.hasAttribute("fused_alpha") ? try node.float("fused_alpha") : nil
        let beta = node.hasAttribute("fused_beta") ? try node.float("fused_beta") : nil
        switch name {
        case "Relu": activation = .relu
        case "LeakyRelu": activation = .leakyRelu(alpha: alpha ?? 0.01)
        case "Clip": activation = .clip(min: alpha ?? -.infinity, max: beta ?? .infinity)
        case "Sigmoid": activation = .sigmoid
        case "HardSigmoid": activation = .hardSigmoid(alpha: alpha ?? 0.2, beta: beta ?? 0.5)
        case "HardSwish": activation = .hardSwish
        case "Silu": activation = .silu
        case "Tanh": activation = .tanh
        case "Gelu": activation = .gelu
        default:
            throw KernelError.unsupported("fused_activation '\(name)' (known: Relu, LeakyRelu, Clip, Sigmoid, "
                                          + "HardSigmoid, HardSwish, Silu, Tanh, Gelu)")
        }
        if case .clip(let lo, let hi)? = activation, lo > hi {
            throw KernelError.invalid("fused Clip has min \(lo) above max \(hi)")
        }
    }

    /// The activation of one value, in Double (the reference kernels' precision).
    public func activate(_ x: Double) -> Double {
        guard let activation else { return x }
        switch activation {
        case .relu: return max(x, 0)
        case .leakyRelu(let alpha): return x < 0 ? Double(alpha) * x : x
        case .clip(let lo, let hi): return min(max(x, Double(lo)), Double(hi))
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .hardSigmoid(let alpha, let beta): return max(0, min(1, Double(alpha) * x + Double(beta)))
        case .hardSwish: return x * max(0, min(1, x / 6 + 0.5))
        case .silu: return x / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .gelu: return 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot()))
        }
    }

    /// Appends the oneDNN post-ops for this epilogue: first the residual sum (when
    /// fused), then the activation, the order of the fused ONNX nodes (Add, then the
    /// activation).
    ///
    /// The residual is a `sum` post-op: the plan writes the addend into the primitive's
    /// destination before running it, and the primitive adds its result on top
    /// (`dst = 1 * dst + result`). The alternative, a `binary_add` post-op reading the
    /// addend as an extra argument, was probed on oneDNN 2.6.3 (AVX2): with the addend in
    /// plain NCHW, 3x3, 1x1 and depthwise convs all fall from `jit:avx2` / `jit_1x1` /
    /// `jit_dw` to `gemm:jit` with plain layouts (the slow path `ConvPlan`'s comment
    /// measures); with the addend's layout left to oneDNN (`any`) the JIT kernels stay
    /// but want the addend blocked, i.e. the same plain-to-blocked reorder that `sum`
    /// needs. So `sum` costs the same one O(output) pass, keeps the JIT kernels, is
    /// implemented by every conv, deconv and matmul implementation, and needs no extra
    /// execution argument.
    ///
    /// `sumScale` scales the prior destination contents (Gemm uses it for `beta * C`).
    func appendPostOps(to ops: dnnl_post_ops_t, sum: Bool, sumScale: Float = 1) throws {
        if sum {
            try dnnlCheck(dnnl_post_ops_append_sum(ops, sumScale), "dnnl_post_ops_append_sum")
        }
        guard let activation else { return }
        func eltwise(_ alg: dnnl_alg_kind_t, _ alpha: Float = 0, _ beta: Float = 0) throws {
            try dnnlCheck(dnnl_post_ops_append_eltwise(ops, 1, alg, alpha, beta),
                          "dnnl_post_ops_append_eltwise(\(alg.rawValue))")
        }
        switch activation {
        case .relu: try eltwise(dnnl_eltwise_relu)
        case .leakyRelu(let alpha): try eltwise(dnnl_eltwise_relu, alpha)
        case .clip(let lo, let hi): try eltwise(dnnl_eltwise_clip, lo, hi)
        case .sigmoid: try eltwise(dnnl_eltwise_logistic)
        // oneDNN 2.6 has no hardsigmoid algorithm: a linear post-op then a clip to [0, 1].
        case .hardSigmoid(let alpha, let beta):
            try eltwise(dnnl_eltwise_linear, alpha, beta)
            try eltwise(dnnl_eltwise_clip, 0, 1)
        // oneDNN 2.6's hardswish is x * relu6(x + 3) / 6, ONNX's HardSwish exactly.
        case .hardSwish: try eltwise(dnnl_eltwise_hardswish)
        case .silu: try eltwise(dnnl_eltwise_swish, 1)
        case .tanh: try eltwise(dnnl_eltwise_tanh)
        case .gelu: try eltwise(dnnl_eltwise_gelu_erf)
        }
    }
}
