import Testing
@testable import VernierGraph

/// Our shapes against libonnx's shape inference on every model in Models/: wherever
/// libonnx gives a concrete shape, ours must be the same.
struct LibONNXCrossCheckTests {
    @Test(arguments: TestPaths.goodModels)
    func ourShapesAgreeWithLibONNX(path: String) throws {
        var options = InferenceOptions()
        if path.hasSuffix("bert_mini.onnx") { options.dimBindings = ["batch": 2, "seq": 7] }
        let loader = ModelLoader()
        let model = try GraphValidator.validate(try loader.load(path: path))
        let ours = try ShapeInference(options: options).infer(model)
        let reference = LibONNX.inferTypes(strippedBytes: try loader.strippedBytes(path: path), dimBindings: options.dimBindings)
        #expect(reference.note == nil, "libonnx: \(reference.note ?? "")")
        var compared = 0
        for (name, theirs) in reference.types {
            guard theirs.isFullyKnown, let mine = ours.type(of: name) else { continue }
            #expect(mine.shape == theirs.shape, "\(name): ours \(mine), libonnx \(theirs)")
            #expect(mine.elementType == theirs.elementType, "\(name)")
            compared += 1
        }
        #expect(compared > 0)
        // Every node output of ours is known and concrete once inputs are bound.
        for node in model.graph.nodes {
            for o in node.outputs where !o.isEmpty {
                #expect(ours.type(of: o)?.isFullyKnown == true, "\(node.displayName) output \(o)")
            }
        }
    }

    @Test func checkerAcceptsTheModelsAndRejectsAnUndefinedInput() throws {
        for path in TestPaths.goodModels {
            let verdict = LibONNX.check(strippedBytes: try ModelLoader().strippedBytes(path: path))
            #expect(verdict == .valid, "\(path): \(verdict)")
        }
        let broken = LibONNX.check(strippedBytes: try ModelLoader().strippedBytes(path: TestPaths.model("broken/undefined_input.onnx")))
        guard case .invalid = broken else {
            Issue.record("expected invalid, got \(broken)")
            return
        }
    }
}
