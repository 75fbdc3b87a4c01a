import VernierGraph

/// One compiled node (or fused group of nodes): created once at plan time by the op's
/// `KernelFactory`, run many times. A kernel computes its output shapes from the input
/// tensors it is given (shapes are data at run time, so data-dependent ops work), asks
/// `outputs` for memory, and writes every element of it.
public protocol Kernel: AnyObject {
    /// Computes the node. `inputs[i]` is nil for an omitted optional input.
    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws

    /// Constant inputs the kernel copied into its own layout at plan time and never
    /// reads again: the plan then drops them (and passes nil), so weights are not held
    /// twice. Default: none.
    var packedInputs: [Int] { get }

    /// Bytes of activations the kernel reorders between the planned layouts and its
    /// primitive's on each run (`ConvPlan.relayoutBytes`), as far as known at plan time.
    /// Default: none.
    var relayoutBytes: Int { get }

    /// The library's name for the implementation that runs the kernel, as far as known
    /// at plan time (oneDNN's `jit_wino_4x3:avx512_core` for a convolution); nil for
    /// Vernier's own kernels. Prediction tells Winograd variants apart by it.
    var implementation: String? { get }
}

extension Kernel {
    public var packedInputs: [Int] { [] }
    public var relayoutBytes: Int { 0 }
    public var implementation: String? { nil }
}

/// Builds a kernel for one node at plan time (checks attributes, packs weights).
public typealias KernelFactory = (KernelContext) throws -> Kernel

/// A kernel from a closure, for ops with nothing to prepare at plan time.
public final class FunctionKernel: Kernel {
    private let body: ([Tensor?], OutputSlots) throws -> Void
    public init(_ body: @escaping ([Tensor?], OutputSlots) throws -> Void) { self.body = body }
    public func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws { try body(inputs, outputs) }
}

/// What a kernel factory knows about its node at plan time.
public struct KernelContext {
    public let node: Node
    /// The opset version of the node's domain (e.g. 13 for a default-domain node of an
    /// opset-13 model); attribute-vs-input forms depend on it.
    public let opset: Int
    /// Inferred types of the inputs and outputs (shapes may hold symbols or be absent).
    public let inputTypes: [TensorType?]
    public let outputTypes: [TensorType?]
    /// Input values known at plan time (initializers and folded constants), by index.
    public let constantInputs: [Tensor?]
    /// The layouts the node's inputs arrive in and its outputs must be written in, as
    /// `LayoutPlanner` decided (plain unless a kernel reads or writes channel-blocked).
    public var inputLayouts: [TensorLayout] = []
    public var outputLayouts: [TensorLayout] = []
    /// Values of the enclosing graph that the node's subgraphs read. The kernel receives
    /// them after its declared inputs, in this order (`inputs[node.inputs.count + i]`),
    /// and passes them to the subgraph plans as `outer`.
    public let implicitInputs: [String]
    /// Compiles one of the node's subgraphs (If branches, Loop/Scan bodies).
    public let compileSubgraph: (Graph) throws -> ExecutionPlan
    /// Most iterations a Loop kernel may run (`ExecutionOptions.maxLoopIterations`).
    public var maxLoopIterations = ExecutionOptions.defaultMaxLoopIterations

    public init(node: Node, opset: Int, inputTypes: [TensorType?], outputTypes: [TensorType?],
                constantInputs: [Tensor?], implicitInputs: [String] = [],
                compileSubgraph: @escaping (Graph) throws -> ExecutionPlan) {
        self.implicitInputs = implicitInputs
        self.node = node
        self.opset = opset
        self.inputTypes = inputTypes
        self.outputTypes = outputTypes
        self.constantInputs = constantInputs
        self.compileSubgraph = compileSubgraph
    }

    /// The plan-time value of input `index`, or nil when it is computed at run time.
    public func constant(_ index: Int) -> Tensor? {
        index < constantInputs.count ? constantInputs[index] : nil
    }

    /// The planned layout of input `index` / output `index`.
    public func inputLayout(_ index: Int) -> TensorLayout { index < inputLayouts.count ? inputLayouts[index] : .plain }
    public func outputLayout(_ index: Int) -> TensorLayout { index < outputLayouts.count ? outputLayouts[index] : .plain }

    /// Input `index`'s concrete shape when inference knows every dim.
    public func knownInputShape(_ index: Int) -> [Int]? {
        index < inputTypes.count ? inputTypes[index]?.concreteDims : nil
    }
}

/// Why a kernel could not run. Kernels throw these without naming their node; the
/// executor adds the node's name and op.
public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// The op is known but this form of it is not (an element type, an attribute value).
    case unsupported(String)
    /// The inputs or attributes break the op's contract (shapes that do not broadcast,
    /// an index out of range, a missing required input).
    case invalid(String)

    public var description: String {
        switch self {
        case .unsupported(let message): return "not supported: \(message)"
        case .invalid(let message): return message
        }
    }
}

/// Required input `index`, or a `KernelError` naming it.
@inline(__always)
public func requiredInput(_ inputs: [Tensor?], _ index: Int) throws -> Tensor {
    guard index < inputs.count, let tensor = inputs[index] else {
        throw KernelError.invalid("required input \(index) is missing")
    }
    return tensor
}

/// Where a kernel's outputs go. The executor prepares one per step: each output has the
/// arena slot the memory planner gave it, and `allocate` hands out a view of that slot
/// when the tensor fits (it always does when the shapes were known at plan time), or a
/// buffer of its own otherwise (data-dependent shapes, plans without an arena).
public final class OutputSlots {
    struct Slot {
        var buffer: TensorBuffer?
        var offset: Int
        var capacity: Int
    }

    /// The layout each output is planned in (`LayoutPlanner`); `allocate` tags tensors with it.
    var layouts: [TensorLayout]

    var slots: [Slot]
    var results: [Tensor?]
    var requested: [Bool]
    let maxBytes: Int

    init(count: Int, maxBytes: Int) {
        slots = Array(repeating: Slot(buffer: nil, offset: 0, capacity: 0), count: count)
        results = Array(repeating: nil, count: count)
        requested = Array(repeating: true, count: count)
        layouts = Array(repeating: .plain, count: count)
        self.maxBytes = maxBytes
    }

    /// The number of outputs the node has (trailing optional outputs included).
    public var count: Int { results.count }

    /// Memory for output `index`: `shape` elements of `type`, contents undefined (the
    /// kernel writes all of it). Throws when the size is absurd rather than exhausting
    /// the machine.
    public func allocate(_ index: Int, _ type: ElementType, _ shape: [Int]) throws -> Tensor {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw KernelError.invalid("negative dimension in output shape \(shape)") }
        // A channel-blocked output takes its padding channels too.
        let layout = index < layouts.count ? layouts[index] : .plain
        var elements = 1
        for d in layout.storageShape(shape) {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw KernelError.invalid("output shape \(shape) overflows") }
            elements = product
        }
        guard let bytes = type.byteCount(elements: elements) else {
            throw KernelError.unsupported("element type \(type)")
        }
        guard bytes <= maxBytes else {
            throw KernelError.invalid("output shape \(shape) needs \(bytes) bytes, over the limit of \(maxBytes)")
        }
        var tensor: Tensor
        if index < slots.count, let buffer = slots[index].buffer, bytes <= slots[index].capacity {
            tensor = Tensor(elementType: type, shape: shape, buffer: buffer, byteOffset: slots[index].offset)
        } else {
            let own = Tensor(elementType: type, shape: layout.storageShape(shape))
            tensor = Tensor(elementType: type, shape: shape, buffer: own.buffer, byteOffset: 0)
        }
        tensor.layout = layout
        if index < results.count { results[index] = tensor }
        return tensor
    }

    /// Sets output `index` to an existing tensor: a view of an input (Reshape, Identity)
    /// or memory this step allocated. Only the ops the memory planner treats as aliases
    /// (`MemoryPlanner.aliasOps`) may return a view of an input: for any other op the
    /// planner may reuse the input's buffer while the output is still read.
    public func set(_ index: Int, _ tensor: Tensor) {
        if index < results.count { results[index] = tensor }
    }

    /// Whether output `index` is wanted (named in the node's output list, not omitted):
    /// kernels skip computing optional outputs nobody reads.
    public func isRequested(_ index: Int) -> Bool { index < requested.count && requested[index] }

    func reset() {
        for i in results.indices { results[i] = nil }
    }
}
