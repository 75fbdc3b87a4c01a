import Testing
import VernierGraph
import VernierTestSupport
@testable import VernierRuntime

/// A Loop is bounded whatever its trip count says: iterations by
/// `ExecutionOptions.maxLoopIterations`, its stacked scan outputs by the output-size
/// limit as they accumulate, so an absurd Loop ends with an error, not a hang or an
/// out-of-memory kill.
struct LoopLimitTests {
    /// Loop(M, cond = true, x0): the body adds 1 to x (float[4]) and emits x as a scan
    /// slice; its condition output stays true, so only M stops it. `trips` nil leaves M
    /// out. With `computedCondition` the body computes it (Or of itself), so inference
    /// cannot take M as the trip count, as with a PyTorch while loop.
    static func counter(trips: Int?, computedCondition: Bool = false) -> GraphBuilder {
        var b = GraphBuilder()
        b.input("x0", .float, [.value(4)])
        if let trips { b.ints("M", [trips]) }
        b.initializers.append(TensorData(name: "cond", elementType: .bool, dims: [], storage: .bytes([1])))
        b.initializers.append(TensorData(floats: [1], name: "one", dims: [1]))
        let four = TensorType(.float, [.value(4)])
        let body = Graph(
            name: "body",
            nodes: [computedCondition ? Node(name: "keep", opType: "Or", inputs: ["c_in", "c_in"], outputs: ["c_out"])
                                      : Node(name: "keep", opType: "Identity", inputs: ["c_in"], outputs: ["c_out"]),
                    Node(name: "step", opType: "Add", inputs: ["x_in", "one"], outputs: ["x_out"]),
                    Node(name: "slice", opType: "Identity", inputs: ["x_in"], outputs: ["x_scan"])],
            inputs: [ValueInfo(name: "i", type: .tensor(TensorType(.int64, []))),
                     ValueInfo(name: "c_in", type: .tensor(TensorType(.bool, []))),
                     ValueInfo(name: "x_in", type: .tensor(four))],
            outputs: [ValueInfo(name: "c_out", type: .tensor(TensorType(.bool, []))),
                      ValueInfo(name: "x_out", type: .tensor(four)),
                      ValueInfo(name: "x_scan", type: .tensor(four))])
        b.node("Loop", [trips == nil ? "" : "M", "cond", "x0"], ["x", "scan"], ["body": .graph(body)])
        b.output("x")
        b.output("scan")
        return b
    }

    func run(trips: Int?, computedCondition: Bool = false, _ options: ExecutionOptions) throws -> [String: Tensor] {
        let b = Self.counter(trips: trips, computedCondition: computedCondition)
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: options)
        return try plan.run(["x0": Tensor(shape: [4], values: [0, 1, 2, 3])])
    }

    @Test func aLoopWithinTheLimitsRunsItsTripCount() throws {
        var options = ExecutionOptions()
        options.maxLoopIterations = 100
        let out = try run(trips: 100, options)
        #expect(out["x"]?.scalars(as: Float.self) == [100, 101, 102, 103])
        #expect(out["scan"]?.shape == [100, 4])
    }

    @Test func anAbsurdTripCountStopsAtTheIterationLimit() throws {
        var options = ExecutionOptions()
        options.maxLoopIterations = 100
        for trips in [Int(Int64.max), 101, nil] as [Int?] {
            do {
                _ = try run(trips: trips, computedCondition: true, options)
                Issue.record("a Loop of \(trips.map(String.init) ?? "no M") trips ran past the limit of 100")
            } catch {
                #expect("\(error)".contains("ran 100 iterations"), "\(error)")
            }
        }
        // With the condition passed through, M is the trip count: inference sees the
        // scan output's absurd size and refuses before anything runs.
        #expect(throws: InferenceError.self) { try Self.counter(trips: Int(Int64.max)).infer() }
    }

    @Test func scanOutputsCountAgainstTheOutputLimitAsTheyGrow() throws {
        var options = ExecutionOptions()
        options.maxTensorBytes = 1000  // 62 slices of 16 bytes fit, the 63rd does not
        do {
            _ = try run(trips: 1_000, options)
            Issue.record("1,000 scan slices of 16 bytes passed a 1,000-byte limit")
        } catch {
            #expect("\(error)".contains("1008 bytes after 63 iterations"), "\(error)")
        }
    }
}

/// A kernel's output larger than `ExecutionOptions.maxTensorBytes` is refused when the
/// kernel asks for it, with the shape and the limit named: shapes only known at run
/// time (data-dependent, or from symbolic inputs) cannot slip past the planner's check.
struct OutputLimitTests {
    @Test func anOutputOverTheLimitIsRefusedBeforeItIsAllocated() throws {
        var b = GraphBuilder()
        b.input("x", .float, [.symbol("n")])
        b.ints("repeats", [1_000])
        b.node("Tile", ["x", "repeats"], ["y"])
        b.output("y")
        var options = ExecutionOptions()
        options.maxTensorBytes = 10_000
        let plan = try ExecutionPlan.compile(try b.infer(), opsets: b.model.opsets, options: options)
        // 2 x 1,000 floats fit in 10,000 bytes; 4 x 1,000 do not.
        #expect(try plan.run(["x": Tensor(shape: [2], values: [1, 2])])["y"]?.shape == [2_000])
        do {
            _ = try plan.run(["x": Tensor(shape: [4], values: [1, 2, 3, 4])])
            Issue.record("a 16,000-byte output passed a 10,000-byte limit")
        } catch {
            #expect("\(error)".contains("output shape [4000] needs 16000 bytes, over the limit of 10000"), "\(error)")
        }
    }
}
