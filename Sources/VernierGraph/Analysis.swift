import Dispatch
import Foundation

/// A model loaded, validated and shape-inferred: the value every later stage starts from.
public struct AnalyzedModel: Sendable {
    public var model: Model
    public var inferred: InferredGraph
    /// Why libonnx could not serve as the fallback, when it was needed and failed.
    public var libONNXNote: String?
    /// Wall time of each stage (load, validate, libonnx fallback, infer), in seconds.
    public var stageSeconds: [(stage: String, seconds: Double)] = []

    public init(model: Model, inferred: InferredGraph, libONNXNote: String? = nil) {
        self.model = model
        self.inferred = inferred
        self.libONNXNote = libONNXNote
    }

    /// Op types (qualified with their domain) that have no shape rule and that libonnx
    /// could not infer either, sorted.
    public var unknownOps: [String] {
        Set(allIssues.filter { $0.kind == .unknownOp }.map(\.opType)).sorted()
    }

    /// Issues of the graph and its subgraphs.
    public var allIssues: [ShapeIssue] {
        func collect(_ g: InferredGraph) -> [ShapeIssue] {
            g.issues + g.subgraphs.values.flatMap { $0.values.flatMap { $0.flatMap(collect) } }
        }
        return collect(inferred)
    }
}

/// Load -> validate -> infer shapes, in one call.
public struct ModelAnalyzer: Sendable {
    public var loadOptions: LoadOptions
    public var inferenceOptions: InferenceOptions
    /// Ask libonnx for the shapes of ops without a rule of ours.
    public var useLibONNXFallback: Bool

    public init(loadOptions: LoadOptions = LoadOptions(), inferenceOptions: InferenceOptions = InferenceOptions(),
                useLibONNXFallback: Bool = true) {
        self.loadOptions = loadOptions
        self.inferenceOptions = inferenceOptions
        self.useLibONNXFallback = useLibONNXFallback
    }

    /// Throws `LoadError`, `ValidationError` or `InferenceError`.
    public func analyze(path: String) throws -> AnalyzedModel {
        var clock = StageClock()
        let loader = ModelLoader(options: loadOptions)
        let loaded = try loader.load(path: path)
        clock.lap("load")
        let model = try GraphValidator.validate(loaded)
        clock.lap("validate")
        var fallback: [String: TensorType] = [:]
        var note: String?
        if useLibONNXFallback && needsFallback(model.graph) {
            let result = LibONNX.inferTypes(strippedBytes: try loader.strippedBytes(path: path),
                                            inputShapes: inferenceOptions.inputShapes,
                                            dimBindings: inferenceOptions.dimBindings)
            fallback = result.types
            note = result.note
            clock.lap("libonnx fallback")
        }
        let inferred = try ShapeInference(options: inferenceOptions, fallbackTypes: fallback).infer(model)
        clock.lap("infer shapes")
        var analyzed = AnalyzedModel(model: model, inferred: inferred, libONNXNote: note)
        analyzed.stageSeconds = clock.laps
        return analyzed
    }

    /// Validates and infers a model built or transformed in memory (a pruned variant).
    /// libonnx's fallback sees the model as `ModelWriter` would write it, without its weights.
    /// Throws `ValidationError`, `InferenceError` or `WriteError`.
    public func analyze(model: Model) throws -> AnalyzedModel {
        var clock = StageClock()
        let validated = try GraphValidator.validate(model)
        clock.lap("validate")
        var fallback: [String: TensorType] = [:]
        var note: String?
        if useLibONNXFallback && needsFallback(validated.graph) {
            var proto = try ModelWriter().proto(validated)
            // libonnx only needs the types, and the weights may be large.
            for i in proto.graph.initializer.indices where proto.graph.initializer[i].rawData.count >= loadOptions.inlineThreshold {
                proto.graph.initializer[i].clearRawData()
            }
            let bytes: [UInt8] = (try? proto.serializedBytes()) ?? []
            let result = LibONNX.inferTypes(strippedBytes: bytes, inputShapes: inferenceOptions.inputShapes,
                                            dimBindings: inferenceOptions.dimBindings)
            fallback = result.types
            note = result.note
            clock.lap("libonnx fallback")
        }
        let inferred = try ShapeInference(options: inferenceOptions, fallbackTypes: fallback).infer(validated)
        clock.lap("infer shapes")
        var analyzed = AnalyzedModel(model: validated, inferred: inferred, libONNXNote: note)
        analyzed.stageSeconds = clock.laps
        return analyzed
    }

    private func needsFallback(_ graph: Graph) -> Bool {
        graph.nodes.contains { node in
            let hasRule = node.isDefaultDomain ? ShapeRules.rule(for: node.opType) != nil
                : ShapeRules.customRule(domain: node.domain, op: node.opType) != nil
            return !hasRule || node.subgraphs.contains { needsFallback($0.graph) }
        }
    }
}

/// Wall-clock laps on a monotonic clock.
public struct StageClock: Sendable {
    private var last = DispatchTime.now().uptimeNanoseconds
    public private(set) var laps: [(stage: String, seconds: Double)] = []

    public init() {}

    /// Records the time since the previous lap under `stage`.
    public mutating func lap(_ stage: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        laps.append((stage, Double(now - last) / 1e9))
        last = now
    }
}
