/// How Vernier counts, written once and printed by `--help` and in the README.
public enum CountingConventions {
    public static let text = """
    Counting conventions: one MAC is one multiply-add. FLOPs = 2 x MACs for multiply-add work \
    (Conv, ConvTranspose, Gemm, MatMul, Einsum, LSTM/GRU/RNN gates) plus one per bias add. \
    Element-wise ops cost FLOPs per output element, each arithmetic step or elementary function \
    (exp, log, erf, tanh, sqrt) counting 1: Add/Mul/Relu 1, Clip 2, Sigmoid 3, HardSwish 4, \
    GELU 5, Softmax 5, BatchNormalization 2 (scale and shift), LayerNormalization 7. Data movement \
    (Reshape, Transpose, Concat, Gather, Slice, Pad, nearest Resize) costs 0 FLOPs and its bytes. \
    Quantized ops count integer MACs separately (int_macs), and so do QDQ-form Conv, MatMul \
    and Gemm (both operands straight from DequantizeLinear), which runtimes execute in int8. \
    Values computed from weights alone (dequantized weights) are folded, not activations. If counts its larger branch; Loop \
    and Scan one body run per iteration. Params count weight elements (floating-point and 8-bit), \
    each shared weight once; bytes count every input read (weights included) and every output \
    written; intensity is FLOPs per byte moved.
    """
}
