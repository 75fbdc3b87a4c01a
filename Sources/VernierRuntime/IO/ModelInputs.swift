import VernierGraph

/// Why the inputs given for a run do not fit the model.
public enum ModelInputError: Error, CustomStringConvertible, Equatable {
    case unboundShape(name: String, type: String, symbols: [String])
    case unknownInput(name: String, inputs: [String])
    case missing(name: String)
    case mismatch(name: String, message: String)
    case unsupportedType(name: String, type: String)

    public var description: String {
        switch self {
        case let .unboundShape(name, type, symbols):
            return "input '\(name)' has shape \(type) with unbound dims \(symbols.joined(separator: ", ")); "
                + "bind them with --dim SYMBOL=N or --input \(name)=DIMS"
        case let .unknownInput(name, inputs):
            return "'\(name)' is not an input of the model (its inputs: \(inputs.joined(separator: ", ")))"
        case .missing(let name): return "no data for input '\(name)'"
        case let .mismatch(name, message): return "input '\(name)': \(message)"
        case let .unsupportedType(name, type): return "input '\(name)' has type \(type), which cannot be generated or run"
        }
    }
}

/// The inputs a run feeds the model: made up (random, fixed seed, within the ranges the
/// model can take) or checked against the model when the user gives them.
public enum ModelInputs {
    /// Random inputs for every runtime input of `inferred`, whose shapes must be bound.
    /// Floats are uniform in [-1, 1); integers stay in the range the model can index:
    /// an input used as `Gather` indices (token ids into an embedding) is drawn below the
    /// table's size on that axis; an input named like a mask is all ones; other integer
    /// inputs are 0 or 1. Booleans are true.
    public static func random(for inferred: InferredGraph, seed: UInt64 = 0x5EED) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: seed)
        var result: [String: Tensor] = [:]
        for input in inferred.graph.runtimeInputs {
            let type = try concreteType(of: input, in: inferred)
            let shape = type.shape?.compactMap(\.constantValue) ?? []
            let count = shape.reduce(1, *)
            switch type.elementType {
            case .float:
                result[input.name] = Tensor(.float, shape: shape, values: (0..<count).map { _ in generator.signedUnit() })
            case .double:
                result[input.name] = Tensor(.double, shape: shape, values: (0..<count).map { _ in Double(generator.signedUnit()) })
            case .float16:
                result[input.name] = Tensor(.float16, shape: shape, values: (0..<count).map { _ in Float16(generator.signedUnit()) })
            case .bool:
                result[input.name] = Tensor(.bool, shape: shape, values: [UInt8](repeating: 1, count: count))
            case .int64, .int32, .int16, .int8, .uint8, .uint16, .uint32, .uint64:
                let upper = indexBound(of: input.name, in: inferred)
                let isMask = input.name.lowercased().contains("mask")
                let values: [Int] = (0..<count).map { _ in isMask ? 1 : generator.below(max(upper ?? 2, 1)) }
                result[input.name] = integerTensor(type.elementType, shape: shape, values: values)
            default:
                throw ModelInputError.unsupportedType(name: input.name, type: "\(type.elementType)")
            }
        }
        return result
    }

    /// Checks user-given arrays against the model's inputs (names, element types, shapes)
    /// and returns them by name.
    public static func check(_ given: [(name: String, tensor: Tensor)], against inferred: InferredGraph) throws -> [String: Tensor] {
        let inputs = inferred.graph.runtimeInputs
        let names = inputs.map(\.name)
        var result: [String: Tensor] = [:]
        for (name, tensor) in given {
            guard names.contains(name) else { throw ModelInputError.unknownInput(name: name, inputs: names) }
            result[name] = tensor
        }
        for input in inputs {
            guard let tensor = result[input.name] else { throw ModelInputError.missing(name: input.name) }
            let type = try concreteType(of: input, in: inferred)
            guard tensor.elementType == type.elementType else {
                throw ModelInputError.mismatch(name: input.name, message: "the data is \(tensor.elementType), the model takes \(type.elementType)")
            }
            let shape = type.shape?.compactMap(\.constantValue) ?? []
            guard tensor.shape == shape else {
                throw ModelInputError.mismatch(name: input.name, message: "the data has shape \(tensor.shape), the model takes \(shape)")
            }
        }
        return result
    }

    /// The input's inferred type, which must have a concrete shape.
    static func concreteType(of input: ValueInfo, in inferred: InferredGraph) throws -> TensorType {
        guard let type = inferred.type(of: input.name) ?? input.type?.tensorType else {
            throw ModelInputError.unsupportedType(name: input.name, type: input.type.map { "\($0)" } ?? "unknown")
        }
        guard let dims = type.shape else {
            throw ModelInputError.unboundShape(name: input.name, type: "\(type)", symbols: ["(rank unknown)"])
        }
        let symbols = Set(dims.flatMap(\.symbols)).sorted()
        guard symbols.isEmpty else { throw ModelInputError.unboundShape(name: input.name, type: "\(type)", symbols: symbols) }
        return type
    }

    /// The exclusive upper bound for an integer input that some `Gather` uses as indices
    /// (the smallest such table), or nil.
    static func indexBound(of name: String, in inferred: InferredGraph) -> Int? {
        var bound: Int?
        for node in inferred.graph.nodes where node.opType == "Gather" && node.input(1) == name {
            guard let data = node.input(0), let dims = inferred.type(of: data)?.shape else { continue }
            var axis = (try? node.int("axis", default: 0)) ?? 0
            if axis < 0 { axis += dims.count }
            guard axis >= 0, axis < dims.count, let size = dims[axis].constantValue, size > 0 else { continue }
            bound = min(bound ?? size, size)
        }
        return bound
    }

    static func integerTensor(_ type: ElementType, shape: [Int], values: [Int]) -> Tensor {
        switch type {
        case .int64: return Tensor(.int64, shape: shape, values: values.map { Int64($0) })
        case .int32: return Tensor(.int32, shape: shape, values: values.map { Int32(truncatingIfNeeded: $0) })
        case .int16: return Tensor(.int16, shape: shape, values: values.map { Int16(truncatingIfNeeded: $0) })
        case .int8: return Tensor(.int8, shape: shape, values: values.map { Int8(truncatingIfNeeded: $0) })
        case .uint16: return Tensor(.uint16, shape: shape, values: values.map { UInt16(truncatingIfNeeded: $0) })
        case .uint32: return Tensor(.uint32, shape: shape, values: values.map { UInt32(truncatingIfNeeded: $0) })
        case .uint64: return Tensor(.uint64, shape: shape, values: values.map { UInt64(truncatingIfNeeded: $0) })
        default: return Tensor(.uint8, shape: shape, values: values.map { UInt8(truncatingIfNeeded: $0) })
        }
    }
}
