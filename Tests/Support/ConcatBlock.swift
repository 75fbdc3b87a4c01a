import VernierGraph

extension GraphBuilder {
    /// Concats whose inputs a memory plan may write in place, from input `x` (`[1, C, ...]`):
    /// `d = Concat(a, s, n)` of three element-wise ops of x along axis 1, nested in
    /// `e = Concat(d, t)`, and `f = Abs(n)`, a second reader of `n`, which must keep a
    /// buffer of its own. `a` stays free for a later Concat to read.
    public mutating func nestedConcats(of x: String) {
        node("Relu", [x], ["a"])
        node("Sigmoid", [x], ["s"])
        node("Neg", [x], ["n"])
        node("Concat", ["a", "s", "n"], ["d"], ["axis": .int(1)])
        node("Tanh", [x], ["t"])
        node("Concat", ["d", "t"], ["e"], ["axis": .int(1)])
        node("Abs", ["n"], ["f"])
    }
}
