/// Which nodes the executor computes once, when it compiles a plan, rather than on every
/// run: their outputs are constants inference proved, or all their inputs are constants.
/// The executor folds them; the latency predictor leaves them out, so both agree on
/// which kernels a run executes.
public enum PlanTimeConstants {
    /// Ops whose output must not be computed once at plan time.
    public static let nondeterministicOps: Set<String> = [
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli",
    ]

    /// Whether `node` may be folded at all: no subgraph, deterministic.
    public static func isFoldable(_ node: Node) -> Bool {
        node.subgraphs.isEmpty && !nondeterministicOps.contains(node.opType)
    }

    /// Names of the top-level nodes folded at plan time, walking the graph in order:
    /// a foldable node whose outputs inference proved constant (with known shapes), or
    /// whose inputs are all initializers or outputs of folded nodes.
    public static func foldedNodes(_ inferred: InferredGraph) -> Set<String> {
        let graph = inferred.graph
        var constants = Set(graph.initializers.map(\.name))
        var folded = Set<String>()
        for node in graph.nodes where isFoldable(node) {
            let proven = node.outputs.allSatisfy { output in
                output.isEmpty || (inferred.facts[output]?.constant != nil
                                   && inferred.facts[output]?.type?.isFullyKnown == true)
            }
            let fromConstants = node.inputs.allSatisfy { $0.isEmpty || constants.contains($0) }
            guard proven || fromConstants else { continue }
            folded.insert(node.name)
            constants.formUnion(node.outputs.filter { !$0.isEmpty })
        }
        return folded
    }
}
