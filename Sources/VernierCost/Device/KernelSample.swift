import Foundation

/// One kernel as prediction sees it: its class, its work and traffic, and (when it was
/// measured) its time: the median over runs, or the fastest run (`MeasuredStatistic`).
/// Calibration fits on measured samples; prediction fills in the time of unmeasured ones.
public struct KernelSample: Sendable, Equatable {
    public var name: String
    public var opClass: OpClass
    /// Arithmetic operations: FLOPs plus two per integer multiply-add.
    public var ops: Double
    /// Bytes read and written.
    public var bytes: Double
    /// Integer arithmetic dominates (measured against the int8 roof).
    public var integer: Bool
    public var measuredUs: Double?
    /// What a kernel cost model (`KernelCostModel`) weighs besides ops and bytes; zero
    /// or empty when the source did not say.
    public var shape: Shape
    /// Bytes the kernel's whole model keeps between runs (weights and planned
    /// activations); nil when the source did not say. A model that fits in the
    /// last-level cache finds them there on the next run (`KernelCostModel.residentBytes`).
    public var modelBytes: Double?
    /// Bytes the kernel reorders between layouts on each run (`KernelCosts.relayoutBytes`).
    public var relayoutBytes: Double
    /// The implementation the kernel ran or runs on (`KernelCosts.implementation`); nil
    /// when the source did not say (ONNX Runtime's traces, older profiles).
    public var implementation: String?

    /// The output tile of the Winograd kernel the implementation names: 4 for oneDNN's
    /// `wino_4x3` (F(4x4, 3x3)), 2 for another Winograd one (`wino_2x3`), 0 for a direct
    /// kernel; nil when the implementation is unknown.
    public var winogradTile: Int? {
        guard let implementation else { return nil }
        return implementation.contains("wino_4x3") ? 4 : implementation.contains("wino") ? 2 : 0
    }

    /// The work of a kernel in the terms its time is built from.
    public struct Shape: Sendable, Equatable {
        /// Multiply-adds, floating-point and integer.
        public var macs: Double
        /// Elements of the first output and of the first activation input.
        public var outputElements: Double
        public var inputElements: Double
        /// Dim 1 of the first activation input (channels of an NCHW tensor).
        public var inputChannels: Double
        /// Dim 1 of the first output; 0 when the source did not say.
        public var outputChannels: Double
        /// The first output's last dim (a map's width) when it has spatial dims (rank 3
        /// or more); 0 otherwise.
        public var outputWidth: Double
        /// The op whose work the kernel follows (`Conv` of a Conv+Relu, and of a QDQ
        /// group's DequantizeLinear x3 + Conv + QuantizeLinear); empty when unknown.
        public var anchor: String
        /// Op types fused after the anchor (`Sigmoid`, `Mul` of a Conv+Sigmoid+Mul; the
        /// requantizing QuantizeLinear of a QDQ group), each run once per output element.
        public var epilogue: [String]
        /// An integer product whose activation has a zero point other than 0.
        public var sourceZeroPoint: Bool

        public init(macs: Double = 0, outputElements: Double = 0, inputElements: Double = 0, inputChannels: Double = 0,
                    outputChannels: Double = 0, outputWidth: Double = 0, anchor: String = "", epilogue: [String] = [],
                    sourceZeroPoint: Bool = false) {
            self.sourceZeroPoint = sourceZeroPoint
            self.outputWidth = outputWidth
            self.macs = macs
            self.outputElements = outputElements
            self.inputElements = inputElements
            self.inputChannels = inputChannels
            self.outputChannels = outputChannels
            self.anchor = anchor
            self.epilogue = epilogue
        }

        /// The shape of a kernel from its first input's and first output's dims and its
        /// fused op types (`Conv+Sigmoid+Mul`; domain prefixes dropped). The anchor is the
        /// main op, as for the class (`OpClass.mainOpIndex`).
        public init(macs: Double, inputDims: [Int]?, outputDims: [Int]?, fusedOpTypes: String, sourceZeroPoint: Bool = false) {
            func elements(_ dims: [Int]?) -> Double { dims.map { $0.reduce(1.0) { $0 * Double(max(0, $1)) } } ?? 0 }
            let channels = inputDims.flatMap { $0.count >= 2 ? Double($0[1]) : nil } ?? 0
            let outputChannels = outputDims.flatMap { $0.count >= 2 ? Double($0[1]) : nil } ?? 0
            let width = outputDims.flatMap { $0.count >= 3 ? $0.last.map { Double(max(0, $0)) } : nil } ?? 0
            let ops = fusedOpTypes.split(separator: "+").map { OpClass.bare(String($0)) }
            let main = OpClass.mainOpIndex(ops)
            self.init(macs: macs, outputElements: elements(outputDims), inputElements: elements(inputDims),
                      inputChannels: channels, outputChannels: outputChannels, outputWidth: width, anchor: main.map { ops[$0] } ?? "",
                      epilogue: main.map { Array(ops.dropFirst($0 + 1)) } ?? [], sourceZeroPoint: sourceZeroPoint)
        }
    }

    public init(name: String, opClass: OpClass, ops: Double, bytes: Double, integer: Bool, measuredUs: Double? = nil,
                shape: Shape = Shape(), modelBytes: Double? = nil, relayoutBytes: Double = 0, implementation: String? = nil) {
        self.implementation = implementation
        self.modelBytes = modelBytes
        self.relayoutBytes = relayoutBytes
        self.name = name
        self.opClass = opClass
        self.ops = ops
        self.bytes = bytes
        self.integer = integer
        self.measuredUs = measuredUs
        self.shape = shape
    }
}

/// The kernels of one model at one thread count, with the whole-run latency when it was
/// measured: one Vernier profile, or one ONNX Runtime profile.
public struct ModelSamples: Sendable, Equatable {
    /// Which runtime measured the kernels.
    public enum Runtime: String, Sendable {
        case vernier
        case onnxRuntime = "onnxruntime"
    }

    /// The model's name (file stem), which leave-one-out holds out by.
    public var model: String
    public var runtime: Runtime
    public var threads: Int
    public var kernels: [KernelSample]
    /// End-to-end latency (the median run, or the fastest: `MeasuredStatistic`).
    public var endToEndUs: Double?

    public init(model: String, runtime: Runtime, threads: Int, kernels: [KernelSample], endToEndUs: Double?) {
        self.model = model
        self.runtime = runtime
        self.threads = threads
        self.kernels = kernels
        self.endToEndUs = endToEndUs
    }

    /// Sum of the measured kernel times.
    public var kernelSumUs: Double { kernels.reduce(0) { $0 + ($1.measuredUs ?? 0) } }
}

/// Problems reading a profile to calibrate or evaluate on.
public enum CalibrationInputError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case unrecognized(path: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .unrecognized(path):
            return "\(path) is neither a Vernier profile (`vernier profile --format json`) nor an ONNX Runtime profile (SessionOptions.enable_profiling)"
        case let .invalid(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Which figure of a kernel's (and a run's) measured times calibration and accuracy read.
public enum MeasuredStatistic: String, Sendable, CaseIterable {
    /// The median over runs: the latency the profile reports.
    case median
    /// The fastest run. Other load on a shared machine only ever slows runs down, so on
    /// such a machine the fastest run is the best estimate of the machine's own speed;
    /// medians there move with the load from one profile to the next.
    case min
}

extension ModelSamples {
    /// Reads a profile file: a Vernier JSON profile (`vernier.profile/1`) or an ONNX
    /// Runtime profiler trace (a JSON array of events). ONNX Runtime's trace does not
    /// say how many threads ran, so `ortThreads` gives it. `statistic` picks which
    /// figure of each kernel's and of the run's times is read.
    public static func read(path: String, ortThreads: Int = 1, statistic: MeasuredStatistic = .median) throws -> ModelSamples {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CalibrationInputError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw CalibrationInputError.unrecognized(path: path)
        }
        let model = modelName(path: path)
        if let dict = object as? [String: Any], let schema = dict["schema"] as? String, schema.hasPrefix("vernier.profile/") {
            return try fromVernierProfile(dict, model: model, path: path, statistic: statistic)
        }
        if let events = object as? [[String: Any]] {
            return try fromONNXRuntimeTrace(events, model: model, threads: ortThreads, path: path, statistic: statistic)
        }
        if let dict = object as? [String: Any], let events = dict["traceEvents"] as? [[String: Any]] {
            return try fromONNXRuntimeTrace(events, model: model, threads: ortThreads, path: path, statistic: statistic)
        }
        throw CalibrationInputError.unrecognized(path: path)
    }

    /// The file name up to its first dot: `resnet18.t2.json` is model `resnet18`.
    static func modelName(path: String) -> String {
        let file = (path as NSString).lastPathComponent
        return file.split(separator: ".").first.map(String.init) ?? file
    }

    // MARK: Vernier profiles

    static func fromVernierProfile(_ json: [String: Any], model: String, path: String,
                                   statistic: MeasuredStatistic = .median) throws -> ModelSamples {
        guard let totals = json["totals"] as? [String: Any], let nodes = json["nodes"] as? [[String: Any]] else {
            throw CalibrationInputError.invalid(path: path, reason: "no totals or nodes")
        }
        let threads = (totals["threads"] as? NSNumber)?.intValue ?? 1
        let shares = nodes.reduce(0.0) { $0 + ((($1["share"] as? NSNumber)?.doubleValue) ?? 0) }
        if !nodes.isEmpty, shares < 0.999 {
            throw CalibrationInputError.invalid(path: path, reason: "the profile lists only some kernels (written with --top); write it without --top")
        }
        let modelBytes = (totals["planned_bytes"] as? NSNumber)?.doubleValue
        var kernels: [KernelSample] = []
        for node in nodes {
            // Rows whose costs are unknown (null) cannot be placed on the roofline.
            guard let name = node["name"] as? String, let op = node["op"] as? String,
                  let flops = (node["flops"] as? NSNumber)?.doubleValue,
                  let read = (node["bytes_read"] as? NSNumber)?.doubleValue,
                  let written = (node["bytes_written"] as? NSNumber)?.doubleValue,
                  let latency = node["latency_ms"] as? [String: Any],
                  let measuredMs = (latency[statistic.rawValue] as? NSNumber)?.doubleValue else { continue }
            let intMacs = (node["int_macs"] as? NSNumber)?.doubleValue ?? 0
            let macs = (node["macs"] as? NSNumber)?.doubleValue ?? 0
            // Profiles written before quantized element-wise groups had a class of their
            // own say element-wise.
            let fusedOps = (node["fused_ops"] as? String ?? op).split(separator: "+").map(String.init)
            let opClass = OpClass.ofGroup(anchorClass: (node["op_class"] as? String).flatMap(OpClass.init(rawValue:))
                                              ?? OpClass.classify(opType: op), opTypes: fusedOps)
            func firstDims(_ key: String) -> [Int]? {
                (node[key] as? [Any])?.first.flatMap { $0 as? [NSNumber] }.map { $0.map(\.intValue) }
            }
            let shape = KernelSample.Shape(macs: macs + intMacs, inputDims: firstDims("input_shapes"),
                                           outputDims: firstDims("output_shapes"), fusedOpTypes: node["fused_ops"] as? String ?? op,
                                           sourceZeroPoint: node["source_zero_point"] as? Bool ?? false)
            // A kernel that copied nothing (an in-place Concat, a view) moved no bytes.
            let moved = node["copies_nothing"] as? Bool == true ? 0 : read + written
            kernels.append(KernelSample(name: name, opClass: opClass, ops: flops + 2 * intMacs, bytes: moved,
                                        integer: intMacs > 0 && 2 * intMacs >= flops, measuredUs: measuredMs * 1e3, shape: shape,
                                        modelBytes: modelBytes, relayoutBytes: (node["relayout_bytes"] as? NSNumber)?.doubleValue ?? 0,
                                        implementation: node["implementation"] as? String))
        }
        let e2e = ((totals["latency_ms"] as? [String: Any])?[statistic.rawValue] as? NSNumber)?.doubleValue
        return ModelSamples(model: model, runtime: .vernier, threads: max(1, threads), kernels: kernels,
                            endToEndUs: e2e.map { $0 * 1e3 })
    }

    // MARK: ONNX Runtime traces

    /// Kernels from ONNX Runtime's profiler: `Node` events named `<node>_kernel_time`
    /// (median or fastest over runs), costs from the shapes in their args (the trace has
    /// shapes but no attributes), and the median or fastest `model_run` after the first
    /// as end to end.
    static func fromONNXRuntimeTrace(_ events: [[String: Any]], model: String, threads: Int, path: String,
                                     statistic: MeasuredStatistic = .median) throws -> ModelSamples {
        var order: [String] = []
        var durations: [String: [Double]] = [:]
        var costs: [String: ORTKernelCost.Estimate] = [:]
        var runs: [Double] = []
        // The model's bytes: each node's parameters once, and the most its arena held.
        var parameterBytes: [String: Double] = [:]
        var arenaBytes = 0.0
        func number(_ value: Any?) -> Double? {
            (value as? NSNumber)?.doubleValue ?? (value as? String).flatMap(Double.init)
        }
        for event in events {
            guard let name = event["name"] as? String, let dur = (event["dur"] as? NSNumber)?.doubleValue else { continue }
            let category = event["cat"] as? String
            if category == "Session", name == "model_run" { runs.append(dur); continue }
            guard category == "Node", name.hasSuffix("_kernel_time"), let args = event["args"] as? [String: Any],
                  let op = args["op_name"] as? String else { continue }
            let node = String(name.dropLast("_kernel_time".count))
            if durations[node] == nil {
                order.append(node)
                costs[node] = ORTKernelCost.estimate(op: op, inputs: ORTKernelCost.shapes(args["input_type_shape"]),
                                                     outputs: ORTKernelCost.shapes(args["output_type_shape"]))
            }
            durations[node, default: []].append(dur)
            parameterBytes[node] = number(args["parameter_size"]) ?? parameterBytes[node]
            arenaBytes = max(arenaBytes, number(args["mem_arena_held"]) ?? 0)
        }
        let modelBytes = parameterBytes.isEmpty ? nil : parameterBytes.values.reduce(0, +) + arenaBytes
        guard !order.isEmpty else {
            throw CalibrationInputError.invalid(path: path, reason: "no kernel events (profile a session with enable_profiling and run it)")
        }
        let kernels = order.compactMap { node -> KernelSample? in
            guard let times = durations[node], let c = costs[node] else { return nil }
            return KernelSample(name: node, opClass: c.opClass, ops: c.ops, bytes: c.bytes, integer: c.integer,
                                measuredUs: statistic.of(times), shape: c.shape, modelBytes: modelBytes)
        }
        // The first run of a session warms caches and allocators.
        let measuredRuns = runs.count > 1 ? Array(runs.dropFirst()) : runs
        let e2e = measuredRuns.isEmpty ? nil : statistic.of(measuredRuns)
        return ModelSamples(model: model, runtime: .onnxRuntime, threads: max(1, threads), kernels: kernels, endToEndUs: e2e)
    }
}

extension MeasuredStatistic {
    /// The statistic of non-empty `times`.
    func of(_ times: [Double]) -> Double {
        let stats = LatencyStats(milliseconds: times)
        switch self {
        case .median: return stats.median
        case .min: return stats.min
        }
    }
}

/// Costs of an ONNX Runtime kernel from the tensor shapes its trace event lists.
enum ORTKernelCost {
    struct Shape {
        var elementBytes: Double
        var dims: [Int]
        var elements: Double { dims.reduce(1.0) { $0 * Double(max(0, $1)) } }
        var bytes: Double { elements * elementBytes }
    }

    /// `[{"float": [1, 3, 224, 224]}, ...]` as shapes.
    static func shapes(_ value: Any?) -> [Shape] {
        guard let list = value as? [[String: Any]] else { return [] }
        return list.compactMap { entry in
            guard let (type, dims) = entry.first, let numbers = dims as? [NSNumber] else { return nil }
            return Shape(elementBytes: elementBytes(type), dims: numbers.map(\.intValue))
        }
    }

    static func elementBytes(_ type: String) -> Double {
        switch type {
        case "double", "int64", "uint64": return 8
        case "float", "int32", "uint32": return 4
        case "float16", "bfloat16", "int16", "uint16": return 2
        default: return 1
        }
    }

    static let integerOps: Set<String> = [
        "QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm",
    ]

    struct Estimate {
        var opClass: OpClass
        var ops: Double
        var bytes: Double
        var integer: Bool
        /// The trace names no fused activations (FusedConv keeps them in attributes).
        var shape: KernelSample.Shape
    }

    /// The costs of one kernel.
    static func estimate(op: String, inputs: [Shape], outputs: [Shape]) -> Estimate {
        let bytes = inputs.reduce(0) { $0 + $1.bytes } + outputs.reduce(0) { $0 + $1.bytes }
        let outElements = outputs.first?.elements ?? 0
        let weightIndex = op == "QLinearConv" ? 3 : 1
        let weight = inputs.count > weightIndex ? inputs[weightIndex].dims : nil
        let channels = inputs.first.flatMap { $0.dims.count >= 2 ? $0.dims[1] : nil }
        let opClass = OpClass.classify(opType: op, weightShape: weight, inputChannels: channels)
        var macs = 0.0, extraFlops = 0.0
        switch opClass {
        case .conv, .depthwiseConv:
            if let w = weight, w.count >= 2 { macs = outElements * w.dropFirst().reduce(1.0) { $0 * Double($1) } }
        case .convTranspose:
            if let x = inputs.first, inputs.count > 1 { macs = x.elements * inputs[1].dims.dropFirst().reduce(1.0) { $0 * Double($1) } }
        case .matmul:
            // MatMul [.., M, K] x [.., K, N]; Gemm [M, K] (or transposed): K = elements / M.
            if let a = inputs.first, let k = a.dims.last {
                if op.contains("Gemm"), let m = outputs.first?.dims.first, m > 0 {
                    macs = outElements * (a.elements / Double(m))
                } else {
                    macs = outElements * Double(k)
                }
            }
        case .recurrent:
            // Every step and direction multiplies the input (X's last dim) and the hidden
            // state (Y's last dim) by each gate's weights, as `RecurrentCosts` counts it;
            // Y [seq, dirs, batch, hidden] (or batch first) has one element per step,
            // direction, batch row and unit. From X and Y alone: the trace leaves out W
            // and R, which ONNX Runtime packs as initializers.
            if let x = inputs.first, let features = x.dims.last, let y = outputs.first, y.dims.count == 4,
               let hidden = y.dims.last, let gates = RecurrentCosts.gates[op] {
                macs = y.elements * Double(gates) * Double(features + hidden)
                extraFlops = y.elements * (RecurrentCosts.gateFlops[op] ?? 0)
            }
        default:
            break
        }
        let integer = integerOps.contains(op)
        let ops = macs > 0 ? 2 * macs + extraFlops : outElements
        return Estimate(opClass: opClass, ops: ops, bytes: bytes, integer: integer,
                        shape: KernelSample.Shape(macs: macs, inputDims: inputs.first?.dims, outputDims: outputs.first?.dims,
                                                  fusedOpTypes: op))
    }
}

extension KernelSample {
    /// The channels a CPU with `block`-channel layouts computes for `channels`: whole
    /// blocks when the padding is at most half a block, else the channels themselves.
    /// oneDNN's blocked convolutions compute padded channels whatever layout the tensor
    /// is kept in (8 output channels in blocks of 16 ran as slow as 24); a larger padding
    /// (3 input channels of a first layer, which oneDNN reads plain) is not counted. The
    /// rule is fitted to those cases, not read from oneDNN's choices.
    static func computedChannels(_ channels: Double, block: Int) -> Double {
        let b = Double(block)
        guard channels > 0, block > 1 else { return channels }
        let padded = (channels / b).rounded(.up) * b
        return (padded - channels) * 2 <= b ? padded : channels
    }

    /// This kernel's work as a CPU whose fp32 convolutions work on `block`-channel layouts
    /// does it: a dense convolution's multiply-adds (and operations) scaled by the padding
    /// of its input and output channels, a depthwise one's by its channels'. MobileNetV2's
    /// 1x1 conv from 144 to 8 channels at 56x56 ran 0.143 ms, against 0.147 ms to 24
    /// channels, on AVX-512 (blocks of 16). Other kernels, int8 ones (channels-last) and
    /// devices without such layouts (`block` nil) are unchanged.
    public func paddedToChannelBlocks(_ block: Int?) -> KernelSample {
        guard let block, !integer, shape.inputChannels > 0, shape.outputChannels > 0 else { return self }
        let factor: Double
        switch opClass {
        case .conv:
            factor = Self.computedChannels(shape.inputChannels, block: block) / shape.inputChannels
                * Self.computedChannels(shape.outputChannels, block: block) / shape.outputChannels
        case .depthwiseConv:
            factor = Self.computedChannels(shape.outputChannels, block: block) / shape.outputChannels
        default:
            return self
        }
        guard factor != 1 else { return self }
        var padded = self
        padded.ops *= factor
        padded.shape.macs *= factor
        return padded
    }
}
