import Testing
import VernierGraph
import VernierTestSupport

/// Subgraphs nested deeper than the limits (an If inside an If, `levels` deep) are
/// refused with the limit named, by the loader from the file's bytes and by shape
/// inference on an in-memory model, instead of recursing until the stack runs out.
struct NestingDepthTests {
    /// `levels` Ifs, each the then-branch of the one above; every branch reads the outer
    /// `cond` and `x`, and each level's else-branch is one Identity.
    static func nestedIfs(_ levels: Int) -> Model {
        func leaf(_ name: String) -> Graph {
            Graph(name: name, nodes: [Node(name: name, opType: "Identity", inputs: ["x"], outputs: [name])],
                  outputs: [ValueInfo(name: name, type: .tensor(TensorType(.float, [.value(2)])))])
        }
        var inner = leaf("leaf")
        for level in 1...levels {
            let out = "y\(level)"
            let node = Node(name: out, opType: "If", inputs: ["cond"], outputs: [out],
                            attributes: [Attribute(name: "then_branch", value: .graph(inner)),
                                         Attribute(name: "else_branch", value: .graph(leaf("else\(level)")))])
            inner = Graph(name: "g\(level)", nodes: [node], outputs: [ValueInfo(name: out, type: .tensor(TensorType(.float, [.value(2)])))])
        }
        var b = GraphBuilder()
        b.input("cond", .bool, [])
        b.input("x", .float, [.value(2)])
        b.nodes = inner.nodes
        b.output(inner.outputs[0].name)
        return b.model
    }

    @Test func inferenceRefusesSubgraphsNestedBeyondItsLimit() throws {
        let options = InferenceOptions()
        // Within the limit: inferred, the output's shape known through every level.
        let shallow = try ShapeInference(options: options).infer(try GraphValidator.validate(Self.nestedIfs(8)))
        #expect(shallow.type(of: "y8")?.shape == [.value(2)])
        let deep = try GraphValidator.validate(Self.nestedIfs(options.maxSubgraphDepth + 2))
        #expect(throws: InferenceError.subgraphsTooDeep(limit: options.maxSubgraphDepth)) {
            try ShapeInference(options: options).infer(deep)
        }
    }

    @Test func loaderRefusesFilesNestedBeyondItsLimit() throws {
        let limit = LoadOptions().maxNestingDepth
        // Each If adds node -> attribute -> graph: three protobuf levels.
        let file = try TemporaryModelFile(bytes: try ModelWriter().serialize(Self.nestedIfs(limit / 3 + 4)))
        #expect(throws: LoadError.nestingTooDeep(limit: limit)) { try ModelLoader().load(path: file.path) }
        let fine = try TemporaryModelFile(bytes: try ModelWriter().serialize(Self.nestedIfs(4)))
        #expect(try ModelLoader().load(path: fine.path).graph.nodes.count == 1)
    }
}
