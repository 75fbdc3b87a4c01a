import VernierGraph

/// A cost that may depend on symbolic dims: a polynomial in the symbols.
public typealias Cost = Polynomial<Double>

extension Polynomial where Coefficient == Double {
    /// A dim as a cost polynomial.
    public init(_ dim: Dim) { self = dim.mapCoefficients(Double.init) }

    /// The value when no symbol remains.
    public var value: Double? { constantValue }
}

/// The arithmetic work of one node; bytes are derived from its tensors.
public struct OpCost: Sendable {
    /// Floating-point multiply-adds.
    public var macs: Cost = .zero
    /// Floating-point operations: 2 x MACs plus bias adds, plus element-wise work.
    public var flops: Cost = .zero
    /// Integer multiply-adds of quantized ops (QLinearConv, MatMulInteger, ...).
    public var intMacs: Cost = .zero

    public init(macs: Cost = .zero, flops: Cost = .zero, intMacs: Cost = .zero) {
        self.macs = macs
        self.flops = flops
        self.intMacs = intMacs
    }

    /// Multiply-add work: FLOPs = 2 x MACs (+ `extraFlops`, e.g. bias adds).
    public static func multiplyAdd(_ macs: Cost, extraFlops: Cost = .zero) -> OpCost {
        OpCost(macs: macs, flops: macs * Cost(2) + extraFlops)
    }

    public static let free = OpCost()

    static func + (a: OpCost, b: OpCost) -> OpCost {
        OpCost(macs: a.macs + b.macs, flops: a.flops + b.flops, intMacs: a.intMacs + b.intMacs)
    }

    static func * (a: OpCost, n: Cost) -> OpCost {
        OpCost(macs: a.macs * n, flops: a.flops * n, intMacs: a.intMacs * n)
    }
}

/// What a cost formula sees of one node.
public struct CostContext {
    public let node: Node
    public let inputs: [TensorType?]
    public let outputs: [TensorType?]
    /// Costs of the node's subgraphs (If branches, Loop/Scan bodies) by attribute.
    public let subgraphCosts: [String: [OpCost]]

    /// Shape of input `i`; nil when unknown, which makes the cost unknown.
    public func shape(input i: Int) -> [Dim]? { inputs.indices.contains(i) ? inputs[i]?.shape : nil }
    public func shape(output i: Int) -> [Dim]? { outputs.indices.contains(i) ? outputs[i]?.shape : nil }
    public func hasInput(_ i: Int) -> Bool { node.input(i) != nil }

    /// Element count of output `i` as a cost polynomial.
    public func elements(output i: Int = 0) -> Cost? { shape(output: i).map { Cost($0.product) } }
    public func elements(input i: Int) -> Cost? { shape(input: i).map { Cost($0.product) } }
}

/// One op's cost formula; nil when the shapes it needs are unknown.
public typealias CostFormula = (CostContext) -> OpCost?

/// The registry of cost formulas, one entry per op type, kept in files named after
/// the op family exactly as the shape rules are (`Formulas/Conv.swift` ...).
public enum CostFormulas {
    static let table: [String: CostFormula] = {
        opRegistry([
            ElementwiseCosts.all, ConvCosts.all, MatMulCosts.all, PoolCosts.all, NormalizationCosts.all,
            ReduceCosts.all, ShapeOpCosts.all, DataMovementCosts.all, RecurrentCosts.all,
            QuantizationCosts.all, ControlFlowCosts.all,
        ], kind: "cost formula")
    }()

    /// The formula for a default-domain op.
    public static func formula(for opType: String) -> CostFormula? { table[opType] }

    static func customFormula(domain: String, op: String) -> CostFormula? {
        domain == "com.microsoft" ? CustomDomainCosts.all[op] : nil
    }

    /// Every op type with a formula, sorted.
    public static var supportedOps: [String] { table.keys.sorted() }
}
