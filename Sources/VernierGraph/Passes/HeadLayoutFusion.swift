extension FusedAttributes {
    /// `fused_split_transpose = A` on a Conv: its output `[N, C, H, W]` is written as
    /// `Transpose(Reshape(y, [N, A, C/A, H, W]), perm [0, 1, 3, 4, 2])`, i.e. `[N, A, H, W, C/A]`.
    public static let splitTranspose = "fused_split_transpose"
}

extension GraphPasses {
    /// Fuses the layout change of a YOLO-style detection head,
    ///
    ///     Transpose(Reshape(Conv(x), [N, A, K, H, W]), perm [0, 1, 3, 4, 2]) -> [N, A, H, W, K]
    ///
    /// (A anchors of K values per cell: YOLOv5's `view(bs, na, no, ny, nx).permute(0, 1,
    /// 3, 4, 2)`), into the Conv (`fused_split_transpose = A`). The kernel then writes the
    /// anchors' rows straight from the convolution's channel-blocked result, one pass
    /// instead of a reorder to plain NCHW and a Transpose (YOLO's 40x40 head: 0.26 ms
    /// for oneDNN's reorder of its 255 channels plus 0.29 ms for the Transpose, at 1
    /// thread). Needs every shape known, the Conv's and the Reshape's results read by the
    /// next op alone, and the Conv's activation (if any) already fused.
    public static func fuseSplitTranspose(_ inferred: InferredGraph) -> InferredGraph {
        let graph = inferred.graph
        let uses = ValueUses(graph)
        var removed = Set<Int>()
        var replaced: [Int: Node] = [:]
        func dims(_ value: String) -> [Int]? { inferred.type(of: value)?.concreteDims }
        for (ci, conv) in graph.nodes.enumerated()
        where conv.isDefaultDomain && conv.opType == "Conv" && !conv.hasFusedSum && !conv.hasAttribute(FusedAttributes.splitTranspose) {
            guard let y = conv.outputs.first, conv.outputs.count == 1, let ri = uses.soleReader(of: y),
                  graph.nodes[ri].isDefaultDomain, graph.nodes[ri].opType == "Reshape", graph.nodes[ri].inputs.first == y,
                  let r = graph.nodes[ri].outputs.first, let ti = uses.soleReader(of: r) else { continue }
            let transpose = graph.nodes[ti]
            guard transpose.isDefaultDomain, transpose.opType == "Transpose", transpose.inputs.first == r,
                  (try? transpose.ints("perm")) == [0, 1, 3, 4, 2],
                  let out = transpose.outputs.first, let outDims = dims(out),
                  let c = dims(y), c.count == 4, inferred.type(of: y)?.elementType == .float,
                  let split = dims(r), split.count == 5, split[0] == c[0], split[3] == c[2], split[4] == c[3],
                  split[1] > 0, split[1] * split[2] == c[1], outDims == [c[0], split[1], c[2], c[3], split[2]]
            else { continue }
            var fused = conv
            fused.outputs = [out]
            fused.attributes.append(Attribute(name: FusedAttributes.splitTranspose, value: .int(split[1])))
            fused.sourceNodes = conv.absorbing([graph.nodes[ri], transpose])
            replaced[ci] = fused
            removed.formUnion([ri, ti])
        }
        return rewritten(inferred, graph: graph, removed: removed, replaced: replaced)
    }
}
