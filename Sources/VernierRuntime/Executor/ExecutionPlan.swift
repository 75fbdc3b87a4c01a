import Foundation
import Glibc
import VernierCost
import VernierGraph

/// How a graph is compiled into an `ExecutionPlan`.
public struct ExecutionOptions: Sendable {
    /// Place activations in one arena laid out by the memory planner (the default; the
    /// peak Vernier reports is then the memory the run uses). Off: every value gets a
    /// buffer of its own, freed after its last use.
    public var useArena = true
    /// Evaluate nodes whose inputs are all constants once, at plan time.
    public var foldConstants = true
    /// Run the graph passes first (`GraphPasses.optimize`: Identity removal,
    /// BatchNormalization folding, residual-Add and activation fusion).
    public var optimizeGraph = true
    /// Keep activations between oneDNN convolutions in the channel-blocked layout
    /// (`LayoutPlanner`), with blocked pooling, broadcast and concat kernels between them.
    public var blockedLayouts = true
    /// Largest tensor a kernel may allocate, in bytes: absurd shapes become an error
    /// instead of an out-of-memory kill.
    public var maxTensorBytes = 1 << 33
    /// Most iterations a Loop may run, whatever its trip count says: a Loop with an
    /// absurd M (or PyTorch's INT64_MAX with a condition that never turns false) ends
    /// with an error instead of running for hours.
    public var maxLoopIterations = ExecutionOptions.defaultMaxLoopIterations
    public static let defaultMaxLoopIterations = 1 << 20
    /// Largest planned footprint (activation arena plus weights) the plan may allocate,
    /// checked before anything is allocated, so a model that would need a terabyte is
    /// refused with a message rather than killed by the OS. Default: 80% of physical
    /// memory.
    public var maxMemoryBytes = ExecutionOptions.defaultMemoryLimit

    public init() {}

    /// 80% of the machine's physical memory (8 GiB when the OS does not say).
    public static var defaultMemoryLimit: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 1 << 33 }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : Int(Double(bytes) * 0.8)
    }
}

/// Why a graph could not be compiled or run.
public enum ExecutionError: Error, CustomStringConvertible {
    /// Ops without a kernel: op type -> the nodes that use it.
    case unsupportedOps([String: [String]])
    /// A kernel failed; `node` is its display name.
    case kernel(node: String, opType: String, message: String)
    case missingInput(String)
    case unexpectedInput(name: String, expected: [String])
    case inputMismatch(name: String, message: String)
    case outputNotProduced(node: String, opType: String, output: String)
    /// The planned footprint exceeds `ExecutionOptions.maxMemoryBytes`.
    case memoryLimit(activationBytes: Int, weightBytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .unsupportedOps(let ops):
            let list = ops.keys.sorted().map { op in
                let nodes = ops[op] ?? []
                let shown = nodes.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
                return "\(op) (\(nodes.count) node\(nodes.count == 1 ? "" : "s"): \(shown)\(nodes.count > 3 ? ", ..." : ""))"
            }
            return "no kernel for \(ops.count == 1 ? "op" : "ops") \(list.joined(separator: "; ")); "
                + "`vernier summary` still gives the static costs"
        case let .kernel(node, op, message): return "node '\(node)' (\(op)): \(message)"
        case .missingInput(let name): return "no value given for graph input '\(name)'"
        case let .unexpectedInput(name, expected):
            return "'\(name)' is not an input of the graph (inputs: \(expected.joined(separator: ", ")))"
        case let .inputMismatch(name, message): return "input '\(name)': \(message)"
        case let .outputNotProduced(node, op, output): return "node '\(node)' (\(op)) did not produce output '\(output)'"
        case let .memoryLimit(activations, weights, limit):
            func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
            return "running this model needs \(mib(activations)) of activations plus \(mib(weights)) of weights, "
                + "over the \(mib(limit)) limit; raise it with --max-memory MB, or bind smaller dims (--dim, --input)"
        }
    }
}

/// A graph compiled for execution: one kernel per node (or fused group), value slots
/// numbered at plan time, constants folded, activations placed in one arena by the
/// memory planner. `run` executes it; nothing is allocated on the way when every shape
/// was known at plan time.
public final class ExecutionPlan {
    /// One kernel invocation.
    public struct Step {
        /// The node's display name, and the original ONNX nodes it stands for (more than
        /// one after fusion), so a profile can name them.
        public let name: String
        public let opType: String
        public let sourceNodes: [String]
        let kernel: Kernel
        let inputIDs: [Int]
        let outputIDs: [Int]
        let slots: OutputSlots
        /// Values whose last reader is this step; released when no arena holds them.
        let releases: [Int]
    }

    public let steps: [Step]
    /// The memory plan the arena follows (nil when the plan could not be made, e.g. a
    /// shape known only at run time, or when the arena is off).
    public let memoryPlan: MemoryPlan?
    /// Bytes of the arena (activations), and of the constant tensors (weights, folded).
    public var arenaBytes: Int { arena?.byteCount ?? 0 }
    public let constantBytes: Int
    /// Nodes folded away at plan time.
    public let foldedNodeCount: Int
    /// Activations kept in the channel-blocked layout between convolutions.
    public internal(set) var channelBlockedValues: Set<String> = []
    /// The activations kept channels-last between int8 convolutions.
    public internal(set) var channelsLastValues: Set<String> = []
    /// Steps (by name) that copy nothing: Concats whose inputs their producers wrote in
    /// place in the output (`MemoryPlanner`), Reshape-like ops returning views.
    public internal(set) var copyFreeSteps: Set<String> = []
    /// Bytes each step (by name) reorders between layouts on each run
    /// (`Kernel.relayoutBytes`); steps that reorder nothing are left out.
    public var relayoutBytes: [String: Int] {
        Dictionary(steps.compactMap { $0.kernel.relayoutBytes > 0 ? ($0.name, $0.kernel.relayoutBytes) : nil }, uniquingKeysWith: +)
    }
    /// The implementation each step (by name) runs on (`Kernel.implementation`); steps
    /// of Vernier's own kernels are left out.
    public var implementations: [String: String] {
        Dictionary(steps.compactMap { step in step.kernel.implementation.map { (step.name, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    /// The nodes of `optimized` (a graph after `GraphPasses.optimize`, by display name)
    /// that a plan would run without copying (`copyFreeSteps`), with activations
    /// channel-blocked in blocks of `channelBlock` channels (nil: plain), as `compile`
    /// lays them out. For predictions, which run no plan.
    public static func copyFreeSteps(_ optimized: InferredGraph, channelBlock: Int?) -> Set<String> {
        let compiler = PlanCompiler(inferred: optimized, opsets: [], options: ExecutionOptions(), isSubgraph: false)
        let layouts = compiler.activationLayouts(block: channelBlock)
        return PlanCompiler.copyFreeSteps(optimized.graph, plan: compiler.arenaPlan(layouts), layouts: layouts)
    }

    let arena: TensorBuffer?
    let valueNames: [String]
    let constants: [(id: Int, tensor: Tensor)]
    let inputs: [(name: String, id: Int, type: TensorType?)]
    let outputs: [(name: String, id: Int)]
    let outerReads: [(name: String, id: Int)]
    let inputSlots: [Int: OutputSlots.Slot]
    /// Buffers the last run's outputs were copied out of the arena into, by output
    /// position (`copyOut`); guarded by `runLock`.
    private var outputBuffers: [TensorBuffer?]

    /// A planned buffer holding graph outputs (`PlanCompiler.outputRegions`): the steps
    /// that write into it write into a buffer of its own instead of the arena, so the
    /// outputs need no copy out of the arena.
    struct OutputRegion {
        struct Slot {
            let step: Int
            let output: Int
            /// Bytes from the region's start, and the bytes the value may use.
            let offset: Int
            let capacity: Int
        }
        let bytes: Int
        var slots: [Slot]
    }
    let outputRegions: [OutputRegion]
    /// The buffer each region's steps write into; the caller gets the outputs in it.
    /// Guarded by `runLock`.
    private var regionBuffers: [TensorBuffer?]

    init(steps: [Step], memoryPlan: MemoryPlan?, arena: TensorBuffer?, constantBytes: Int, foldedNodeCount: Int,
         valueNames: [String], constants: [(id: Int, tensor: Tensor)], inputs: [(name: String, id: Int, type: TensorType?)],
         outputs: [(name: String, id: Int)], outerReads: [(name: String, id: Int)], inputSlots: [Int: OutputSlots.Slot],
         outputRegions: [OutputRegion] = []) {
        self.steps = steps
        self.memoryPlan = memoryPlan
        self.arena = arena
        self.constantBytes = constantBytes
        self.foldedNodeCount = foldedNodeCount
        self.valueNames = valueNames
        self.constants = constants
        self.inputs = inputs
        self.outputs = outputs
        self.outerReads = outerReads
        self.inputSlots = inputSlots
        outputBuffers = Array(repeating: nil, count: outputs.count)
        self.outputRegions = outputRegions
        regionBuffers = Array(repeating: nil, count: outputRegions.count)
    }

    /// Points the steps of every output region at its buffer: the last run's buffer when
    /// the caller has let go of its outputs (then this plan holds the only reference),
    /// else a new one, so outputs a caller keeps are never overwritten.
    private func bindOutputRegions() {
        for (r, region) in outputRegions.enumerated() {
            // The slots and the last run's results hold the buffer too; let go of them
            // before asking whether anyone else does.
            for slot in region.slots {
                steps[slot.step].slots.slots[slot.output].buffer = nil
                steps[slot.step].slots.reset()
            }
            if regionBuffers[r]?.byteCount != region.bytes || !isKnownUniquelyReferenced(&regionBuffers[r]) {
                regionBuffers[r] = TensorBuffer(byteCount: region.bytes)
            }
            for slot in region.slots {
                steps[slot.step].slots.slots[slot.output] = OutputSlots.Slot(buffer: regionBuffers[r], offset: slot.offset,
                                                                             capacity: slot.capacity)
            }
        }
    }

    /// Names and declared types of the inputs the caller must give.
    public var inputSignature: [(name: String, type: TensorType?)] { inputs.map { ($0.name, $0.type) } }
    public var outputNames: [String] { outputs.map(\.name) }

    /// One run at a time per process: every plan shares oneDNN's stream and scratchpad
    /// and the one thread pool, and a plan owns one arena, so two runs on different
    /// threads would overwrite each other's buffers (seen as intermittently wrong outputs
    /// when test suites ran plans in parallel). Recursive, because If/Loop/Scan kernels
    /// run their subgraphs' plans inside the enclosing run, on the same thread.
    private static let runLock = NSRecursiveLock()

    /// Runs the graph. `inputs` by graph input name; `outer` holds values of enclosing
    /// graphs that a subgraph reads. `stepTimes`, when given, receives each step's start
    /// and end (monotonic clock), indexed like `steps`. Runs from several threads are
    /// serialized.
    public func run(_ inputs: [String: Tensor], outer: [String: Tensor] = [:],
                    stepTimes: UnsafeMutableBufferPointer<StepTime>? = nil) throws -> [String: Tensor] {
        Self.runLock.lock()
        defer { Self.runLock.unlock() }
        var values = [Tensor?](repeating: nil, count: valueNames.count)
        for (id, tensor) in constants { values[id] = tensor }
        for (name, id) in outerReads { values[id] = outer[name] }
        let expected = self.inputs.map(\.name)
        for name in inputs.keys where !expected.contains(name) {
            throw ExecutionError.unexpectedInput(name: name, expected: expected)
        }
        for input in self.inputs {
            guard let tensor = inputs[input.name] else { throw ExecutionError.missingInput(input.name) }
            try checkInput(tensor, input.name, input.type)
            // Read where the caller keeps it when kernels can take it from there (plain,
            // on a 64-byte boundary like every arena slot): no kernel writes its inputs,
            // and a copy costs a pass over it every run (4.9 MB for a 640x640 image).
            // Otherwise copied into its arena slot.
            if tensor.layout == .plain, Int(bitPattern: tensor.rawPointer) % TensorBuffer.alignment == 0 {
                values[input.id] = tensor
            } else if let slot = inputSlots[input.id], let buffer = slot.buffer, tensor.byteCount <= slot.capacity {
                let placed = Tensor(elementType: tensor.elementType, shape: tensor.shape, buffer: buffer, byteOffset: slot.offset)
                if tensor.byteCount > 0 { placed.rawPointer.copyMemory(from: tensor.rawPointer, byteCount: tensor.byteCount) }
                values[input.id] = placed
            } else {
                values[input.id] = tensor
            }
        }
        bindOutputRegions()
        var inputTensors: [Tensor?] = []
        for (index, step) in steps.enumerated() {
            // A step's time covers its whole share of the loop, freeing the values it
            // was the last to read included (a large heap tensor's munmap is not free),
            // so the steps add up to the run.
            let start = stepTimes == nil ? 0 : monotonicNanoseconds()
            for id in step.inputIDs { inputTensors.append(id < 0 ? nil : values[id]) }
            step.slots.reset()
            do {
                try step.kernel.run(inputTensors, step.slots)
            } catch let error as ExecutionError {
                throw error
            } catch {
                throw ExecutionError.kernel(node: step.name, opType: step.opType, message: "\(error)")
            }
            for (k, id) in step.outputIDs.enumerated() where id >= 0 {
                guard let result = step.slots.results[k] else {
                    throw ExecutionError.outputNotProduced(node: step.name, opType: step.opType, output: valueNames[id])
                }
                values[id] = result
            }
            inputTensors.removeAll(keepingCapacity: true)
            for id in step.releases { values[id] = nil }
            if let times = stepTimes, index < times.count { times[index] = StepTime(start: start, end: monotonicNanoseconds()) }
        }
        var result: [String: Tensor] = [:]
        for (index, (name, id)) in outputs.enumerated() {
            // Outputs leave the arena (the next run overwrites it); those of an output
            // region are already out.
            guard let tensor = values[id] else { throw ExecutionError.missingInput(name) }
            result[name] = tensor.buffer === arena ? copyOut(tensor, output: index) : tensor
        }
        return result
    }

    /// `tensor` copied into the buffer the last run's output `index` went to when the
    /// caller has let go of it (this plan holds the only reference), else into a new
    /// one. A detector's 2 MB output otherwise costs a fresh allocation, its zeroing and
    /// its page faults on every run.
    private func copyOut(_ tensor: Tensor, output index: Int) -> Tensor {
        let bytes = tensor.byteCount
        if outputBuffers[index]?.byteCount != bytes || !isKnownUniquelyReferenced(&outputBuffers[index]) {
            outputBuffers[index] = TensorBuffer(byteCount: bytes)
        }
        guard let buffer = outputBuffers[index] else { return tensor.copy() }
        let copied = Tensor(elementType: tensor.elementType, shape: tensor.shape, buffer: buffer, byteOffset: 0)
        if bytes > 0 { copied.rawPointer.copyMemory(from: tensor.rawPointer, byteCount: bytes) }
        return copied
    }

    private func checkInput(_ tensor: Tensor, _ name: String, _ type: TensorType?) throws {
        guard let type else { return }
        guard tensor.elementType == type.elementType else {
            throw ExecutionError.inputMismatch(name: name, message: "element type \(tensor.elementType), the graph declares \(type.elementType)")
        }
        guard let dims = type.shape else { return }
        guard dims.count == tensor.rank else {
            throw ExecutionError.inputMismatch(name: name, message: "shape \(tensor.shape) has rank \(tensor.rank), the graph declares rank \(dims.count) (\(type))")
        }
        for (axis, dim) in dims.enumerated() {
            if let value = dim.constantValue, value != tensor.shape[axis] {
                throw ExecutionError.inputMismatch(name: name, message: "shape \(tensor.shape), the graph declares \(type)")
            }
        }
    }
}

/// When one step of a run started and ended (monotonic clock, ns).
public struct StepTime: Sendable {
    public var start: UInt64
    public var end: UInt64

    public init(start: UInt64 = 0, end: UInt64 = 0) {
        self.start = start
        self.end = end
    }
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC: never steps back, unaffected by
/// wall-clock changes).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
