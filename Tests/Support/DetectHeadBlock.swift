import VernierGraph

extension GraphBuilder {
    /// A YOLO detection head: 1x1 Conv to `anchors * fields` channels, Reshape to
    /// [1, anchors, fields, size, size], Transpose to fields last, Sigmoid. Input `x` is
    /// [1, channels, size, size], output `y`; `weights` makes the conv weight `W`.
    public static func detectHead(channels: Int, anchors: Int, fields: Int, size: Int, batch: Int = 1,
                                  weights: (_ name: String, _ dims: [Int]) -> TensorData) -> GraphBuilder {
        var b = GraphBuilder()
        b.input("x", .float, [batch, channels, size, size].map(Dim.value))
        b.initializers.append(weights("W", [anchors * fields, channels, 1, 1]))
        b.ints("shape", [batch, anchors, fields, size, size])
        b.node("Conv", ["x", "W"], ["c"])
        b.node("Reshape", ["c", "shape"], ["r"])
        b.node("Transpose", ["r"], ["t"], ["perm": .ints([0, 1, 3, 4, 2])])
        b.node("Sigmoid", ["t"], ["y"])
        b.output("y")
        return b
    }
}
