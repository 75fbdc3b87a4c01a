import VernierGraph
import VernierRuntime

/// How weights are stored after quantization.
public enum WeightStorage: Sendable, Equatable {
    /// Symmetric int8, one scale per output channel (`perChannel`) or per tensor, with a
    /// DequantizeLinear in front of the op; activations get uint8 QuantizeLinear ->
    /// DequantizeLinear pairs from calibrated ranges (QDQ format).
    case int8(perChannel: Bool)
    /// float16 with a Cast to float in front of the op: half the bytes, fp32 compute.
    case float16
}

/// Why a model could not be quantized. Each message says what to change.
public enum QuantizationError: Error, CustomStringConvertible, Sendable, Equatable {
    case opsetTooOld(opset: Int, needed: Int, reason: String)
    case missingRange(activation: String)
    case nothingToQuantize(skipped: [String])

    public var description: String {
        switch self {
        case .opsetTooOld(let opset, let needed, let reason):
            return "the model imports ONNX opset \(opset), and \(reason) needs opset \(needed) or later; "
                + "convert the model first (onnx.version_converter)"
                + (needed == 13 ? " or drop --per-channel" : "")
        case .missingRange(let activation):
            return "no calibrated range for activation '\(activation)'; calibration must cover every quantized op's input"
        case .nothingToQuantize(let skipped):
            let reasons = skipped.prefix(3).joined(separator: "; ")
            return "the model has no Conv, Gemm or MatMul with a stored float32 weight to quantize"
                + (reasons.isEmpty ? "" : " (\(reasons))")
        }
    }
}

/// Rewrites a model's Conv/Gemm/MatMul weights (and, for int8, their activations) into
/// QDQ or float16-storage form. The original ops stay; only their inputs change.
public enum ModelQuantizer {
    /// The rewritten model (not yet re-validated: pass it to `ModelAnalyzer.analyze(model:)`).
    /// `ranges` must hold every target's activation for `.int8`.
    public static func rewrite(_ model: Model, targets: [QuantizationTarget], storage: WeightStorage,
                               ranges: [String: ActivationRange] = [:]) throws -> Model {
        switch storage {
        case .int8(let perChannel):
            let needed = perChannel ? 13 : 10
            if model.defaultOpset < needed {
                throw QuantizationError.opsetTooOld(opset: model.defaultOpset, needed: needed,
                                                    reason: perChannel ? "per-channel DequantizeLinear (its axis attribute)" : "QuantizeLinear")
            }
        case .float16:
            break
        }
        var graph = model.graph
        var names = UniqueNames(graph)
        let stored = graph.initializerIndex
        var replacedWeights = Set<String>()
        // A weight or activation read by several targets gets one rewrite, shared.
        var weightOutputs: [String: String] = [:]
        var activationOutputs: [String: String] = [:]
        let byNode = Dictionary(targets.map { ($0.node, $0) }, uniquingKeysWith: { a, _ in a })
        var nodes: [Node] = []
        var newInitializers: [TensorData] = []

        for (index, original) in graph.nodes.enumerated() {
            guard let target = byNode[index], let weight = stored[target.weightName],
                  let values = WeightQuantization.floats(of: weight) else {
                nodes.append(original)
                continue
            }
            var node = original
            let axisKey = target.weightAxis.map(String.init) ?? "-"
            let key = "\(target.weightName)#\(storage)#\(axisKey)"
            if let existing = weightOutputs[key] {
                node.inputs[target.weightInput] = existing
            } else {
                let output: String
                switch storage {
                case .int8(let perChannel):
                    let axis = perChannel ? target.weightAxis : nil
                    let q = WeightQuantization.quantize(values, dims: weight.dims, axis: axis)
                    let base = target.weightName
                    let qName = names.make(base + "_int8"), scaleName = names.make(base + "_scale")
                    let zeroName = names.make(base + "_zero_point")
                    output = names.make(base + "_dequantized")
                    let scaleDims = axis == nil ? [] : [q.scales.count]
                    newInitializers.append(WeightQuantization.int8Tensor(qName, q.values, dims: weight.dims))
                    newInitializers.append(TensorData(floats: q.scales, name: scaleName, dims: scaleDims))
                    newInitializers.append(WeightQuantization.int8Tensor(zeroName, [Int8](repeating: 0, count: q.scales.count), dims: scaleDims))
                    var dq = Node(name: names.make(base + "_DequantizeLinear"), opType: "DequantizeLinear",
                                  inputs: [qName, scaleName, zeroName], outputs: [output])
                    if let axis { dq.attributes = [Attribute(name: "axis", value: .int(axis))] }
                    nodes.append(dq)
                case .float16:
                    guard var half = WeightQuantization.float16Copy(of: weight) else { nodes.append(original); continue }
                    half.name = names.make(target.weightName + "_fp16")
                    output = names.make(target.weightName + "_fp32")
                    newInitializers.append(half)
                    nodes.append(Node(name: names.make(target.weightName + "_Cast"), opType: "Cast", inputs: [half.name],
                                      outputs: [output], attributes: [Attribute(name: "to", value: .int(ElementType.float.rawValue))]))
                }
                weightOutputs[key] = output
                replacedWeights.insert(target.weightName)
                node.inputs[target.weightInput] = output
            }
            if case .int8 = storage {
                if let existing = activationOutputs[target.activation] {
                    node.inputs[0] = existing
                } else {
                    guard let range = ranges[target.activation] else { throw QuantizationError.missingRange(activation: target.activation) }
                    let (scale, zeroPoint) = range.uint8Parameters
                    let base = target.activation
                    let scaleName = names.make(base + "_scale"), zeroName = names.make(base + "_zero_point")
                    let quantized = names.make(base + "_quantized"), dequantized = names.make(base + "_dequantized")
                    newInitializers.append(TensorData(floats: [scale], name: scaleName, dims: []))
                    newInitializers.append(WeightQuantization.uint8Tensor(zeroName, [zeroPoint], dims: []))
                    nodes.append(Node(name: names.make(base + "_QuantizeLinear"), opType: "QuantizeLinear",
                                      inputs: [base, scaleName, zeroName], outputs: [quantized]))
                    nodes.append(Node(name: names.make(base + "_DequantizeLinear"), opType: "DequantizeLinear",
                                      inputs: [quantized, scaleName, zeroName], outputs: [dequantized]))
                    activationOutputs[target.activation] = dequantized
                    node.inputs[0] = dequantized
                }
            }
            nodes.append(node)
        }
        // A replaced weight that nothing reads any more leaves the file.
        let read = Set(nodes.flatMap(\.inputs)).union(graph.outputs.map(\.name))
        let dropped = replacedWeights.filter { !read.contains($0) }
        graph.initializers.removeAll { dropped.contains($0.name) }
        graph.inputs.removeAll { dropped.contains($0.name) }
        graph.initializers += newInitializers
        if model.irVersion < 4 {
            // Before IR 4 every initializer must also be a graph input.
            graph.inputs += newInitializers.map { ValueInfo(name: $0.name, type: .tensor($0.type)) }
        }
        graph.nodes = nodes
        var result = model
        result.graph = graph
        return result
    }
}

/// Names not yet used in a graph (values, initializers and nodes share one table here,
/// which is stricter than ONNX needs and keeps generated names readable).
struct UniqueNames {
    private var taken: Set<String>

    init(_ graph: Graph) {
        taken = Set(graph.initializers.map(\.name) + graph.inputs.map(\.name) + graph.outputs.map(\.name)
                    + graph.nodes.flatMap(\.outputs) + graph.nodes.flatMap(\.inputs) + graph.nodes.map(\.name))
    }

    /// `base`, or `base_2`, `base_3`, ... whichever is free; the name is then taken.
    mutating func make(_ base: String) -> String {
        var name = base
        var n = 1
        while taken.contains(name) { n += 1; name = "\(base)_\(n)" }
        taken.insert(name)
        return name
    }
}

/// A quantized model, validated and shape-inferred, with what was done.
public struct QuantizedModel: Sendable {
    public var analyzed: AnalyzedModel
    public var targets: QuantizationTargets
    /// The calibrated range of each quantized activation (empty for float16).
    public var ranges: [String: ActivationRange]
}

extension ModelQuantizer {
    /// Finds the targets, calibrates their activations on `samples` (int8 only), rewrites
    /// and re-analyzes the model with `analyzer` (give it the original's dim bindings).
    public static func quantize(_ analyzed: AnalyzedModel, storage: WeightStorage, samples: [[String: Tensor]],
                                analyzer: ModelAnalyzer = ModelAnalyzer()) throws -> QuantizedModel {
        let targets = QuantizationTargets.find(in: analyzed)
        guard !targets.targets.isEmpty else {
            throw QuantizationError.nothingToQuantize(skipped: targets.skipped.map { "\($0.nodeName): \($0.reason)" })
        }
        var ranges: [String: ActivationRange] = [:]
        if case .int8 = storage {
            ranges = try ActivationCalibration.ranges(of: targets.activations, in: analyzed, samples: samples, analyzer: analyzer)
        }
        let model = try rewrite(analyzed.model, targets: targets.targets, storage: storage, ranges: ranges)
        return QuantizedModel(analyzed: try analyzer.analyze(model: model), targets: targets, ranges: ranges)
    }
}
