import VernierGraph

extension GraphBuilder {
    /// A transformer feed-forward block as PyTorch exports it: Linear (MatMul + bias Add,
    /// the bias first), the exact GELU written with Erf (`Div` by sqrt 2, Erf, Add 1,
    /// Mul x, Mul `halfScale`), Linear, residual Add, LayerNormalization. Input `x` of
    /// `shape` (last dim the model width), output `y`; `weights` makes each initializer.
    public static func feedForward(_ shape: [Int], hidden: Int, halfScale: Float = 0.5,
                                   weights: (_ name: String, _ dims: [Int]) -> TensorData) -> GraphBuilder {
        let width = shape[shape.count - 1]
        var b = GraphBuilder()
        b.input("x", .float, shape.map(Dim.value))
        for (name, dims) in [("W1", [width, hidden]), ("b1", [hidden]), ("W2", [hidden, width]), ("b2", [width]),
                             ("gamma", [width]), ("beta", [width])] {
            b.initializers.append(weights(name, dims))
        }
        for (name, value) in [("sqrt2", Float(2).squareRoot()), ("one", 1), ("half", halfScale)] {
            b.initializers.append(TensorData(floats: [value], name: name, dims: []))
        }
        b.node("MatMul", ["x", "W1"], ["h0"])
        b.node("Add", ["b1", "h0"], ["h"])
        b.node("Div", ["h", "sqrt2"], ["d"])
        b.node("Erf", ["d"], ["e"])
        b.node("Add", ["e", "one"], ["e1"])
        b.node("Mul", ["h", "e1"], ["m"])
        b.node("Mul", ["m", "half"], ["g"])
        b.node("MatMul", ["g", "W2"], ["o0"])
        b.node("Add", ["o0", "b2"], ["o"])
        b.node("Add", ["x", "o"], ["r"])
        b.node("LayerNormalization", ["r", "gamma", "beta"], ["y"], ["axis": .int(-1)])
        b.output("y")
        return b
    }
}
