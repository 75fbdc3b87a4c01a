import VernierGraph
import VernierRuntime

/// The smallest and largest value an activation took during calibration.
public struct ActivationRange: Sendable, Equatable {
    public var min: Float
    public var max: Float

    public init(min: Float, max: Float) {
        self.min = min
        self.max = max
    }

    /// uint8 asymmetric parameters: the range widened to include 0 (so zero padding and
    /// ReLU zeros are exact), `scale = (max - min) / 255`, `zeroPoint = round(-min / scale)`.
    /// An all-zero range gets scale 1 and zero point 0.
    public var uint8Parameters: (scale: Float, zeroPoint: UInt8) {
        let low = Swift.min(min, 0), high = Swift.max(max, 0)
        let scale = (high - low) / 255
        guard scale > 0, scale.isFinite else { return (1, 0) }
        let zero = (-low / scale).rounded(.toNearestOrEven)
        return (scale, UInt8(Swift.max(0, Swift.min(255, zero))))
    }

    mutating func include(_ other: ActivationRange) {
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
    }
}

/// Why calibration could not be done. Each message says what to change.
public enum CalibrationError: Error, CustomStringConvertible, Sendable, Equatable {
    case noSamples
    case sampleShape(input: String, dataShape: [Int], modelShape: [Int])
    case missingInput(name: String, given: [String])
    case missingValue(name: String)
    case notFloat(name: String)
    /// The inputs' arrays hold different numbers of samples.
    case sampleCounts([String: Int])

    public var description: String {
        switch self {
        case .noSamples:
            return "no calibration samples: give --calibration-data F.npz or --calibration-runs N (N >= 1)"
        case .sampleShape(let input, let data, let model):
            return "calibration array '\(input)' has shape \(data), which is neither the model's input shape \(model), "
                + "a batch of such samples along the first axis, nor one sample without the batch axis"
        case .missingInput(let name, let given):
            return "the calibration data has no array named '\(name)' (it has: \(given.joined(separator: ", "))); "
                + "name the .npz arrays after the model's inputs"
        case .missingValue(let name):
            return "the calibration run did not produce '\(name)'; this is a bug in Vernier, please report it"
        case .sampleCounts(let counts):
            let list = counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            return "the calibration arrays hold different numbers of samples (\(list)); give every input the same number"
        case .notFloat(let name):
            return "the calibration run produced '\(name)' with a non-float type; this is a bug in Vernier, please report it"
        }
    }
}

/// Records the range of chosen activations by running the original model in Vernier's
/// executor: a copy of the graph that also outputs those values runs on every sample.
public enum ActivationCalibration {
    /// Min and max of each of `values` over all `samples` (feeds by input name, shapes
    /// matching `analyzed`'s inputs). Throws `CalibrationError`, analysis or execution errors.
    public static func ranges(of values: [String], in analyzed: AnalyzedModel, samples: [[String: Tensor]],
                              analyzer: ModelAnalyzer = ModelAnalyzer()) throws -> [String: ActivationRange] {
        guard !samples.isEmpty else { throw CalibrationError.noSamples }
        var model = analyzed.model
        let existing = Set(model.graph.outputs.map(\.name))
        for name in values where !existing.contains(name) {
            model.graph.outputs.append(ValueInfo(name: name, type: analyzed.inferred.type(of: name).map { .tensor($0) }))
        }
        let probe = try analyzer.analyze(model: model)
        let plan = try ExecutionPlan.compile(probe.inferred, opsets: probe.model.opsets)
        var ranges: [String: ActivationRange] = [:]
        for feeds in samples {
            let outputs = try plan.run(feeds)
            for name in values {
                guard let tensor = outputs[name] else { throw CalibrationError.missingValue(name: name) }
                guard tensor.elementType.isFloatingPoint, let doubles = tensor.doubles() else { throw CalibrationError.notFloat(name: name) }
                guard let low = doubles.min(), let high = doubles.max() else { continue }
                let range = ActivationRange(min: Float(low), max: Float(high))
                if ranges[name] == nil { ranges[name] = range } else { ranges[name]?.include(range) }
            }
        }
        return ranges
    }

    /// `count` random input sets (see `ModelInputs.random`), seeds `seed`, `seed + 1`, ...
    public static func randomSamples(for analyzed: AnalyzedModel, count: Int, seed: UInt64) throws -> [[String: Tensor]] {
        try (0..<count).map { try ModelInputs.random(for: analyzed.inferred, seed: seed &+ UInt64($0)) }
    }

    /// Splits user arrays into samples the model takes: an array of the input's shape is
    /// one sample; `[k*N, ...]` for an input of `[N, ...]` is k samples; an array without
    /// the leading batch axis of a batch-1 input is one sample. Every input must yield the
    /// same number of samples.
    public static func samples(from arrays: [(name: String, tensor: Tensor)], for analyzed: AnalyzedModel) throws -> [[String: Tensor]] {
        let given = Dictionary(arrays.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        var perInput: [String: [Tensor]] = [:]
        for input in analyzed.inferred.graph.runtimeInputs {
            guard let array = given[input.name] else { throw CalibrationError.missingInput(name: input.name, given: arrays.map(\.name)) }
            let shape = analyzed.inferred.type(of: input.name)?.shape?.compactMap(\.constantValue) ?? []
            perInput[input.name] = try split(array, into: shape, name: input.name)
        }
        let counts = Set(perInput.values.map(\.count))
        guard counts.count == 1, let count = counts.first, count > 0 else {
            if counts.count > 1 { throw CalibrationError.sampleCounts(perInput.mapValues(\.count)) }
            throw CalibrationError.noSamples
        }
        return (0..<count).map { i in perInput.mapValues { $0[i] } }
    }

    static func split(_ array: Tensor, into shape: [Int], name: String) throws -> [Tensor] {
        if array.shape == shape { return [array] }
        if shape.first == 1, array.shape == Array(shape.dropFirst()) { return [array.reshaped(shape)] }
        guard let batch = shape.first, batch > 0, array.shape.count == shape.count,
              Array(array.shape.dropFirst()) == Array(shape.dropFirst()), array.shape[0] % batch == 0 else {
            throw CalibrationError.sampleShape(input: name, dataShape: array.shape, modelShape: shape)
        }
        let sampleElements = shape.reduce(1, *)
        let bytesPerSample = array.elementType.byteCount(elements: sampleElements) ?? 0
        return (0..<(array.shape[0] / batch)).map { k in
            let piece = Tensor(elementType: array.elementType, shape: shape)
            piece.rawPointer.copyMemory(from: array.rawPointer + k * bytesPerSample, byteCount: bytesPerSample)
            return piece
        }
    }
}
