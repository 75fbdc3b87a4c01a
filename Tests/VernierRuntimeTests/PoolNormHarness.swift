import Foundation
import VernierGraph
@testable import VernierRuntime

/// Runs one kernel through its registered factory, as the executor would, for the
/// Pool, Normalization and Reduce kernel tests.
enum PoolNormHarness {
    /// Output tensors of `op` on `inputs` (nil = omitted optional input). `inPlace` puts
    /// output 0 over input 0's memory, as the memory planner may.
    static func run(_ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue] = [:],
                    opset: Int = 17, outputs: Int = 1, inPlace: Bool = false) throws -> [Tensor] {
        let node = Node(name: op, opType: op, inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: (0..<outputs).map { "out\($0)" },
                        attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
        guard let factory = KernelRegistry.factory(for: node) else { throw KernelError.unsupported("no kernel for \(op)") }
        let context = KernelContext(node: node, opset: opset, inputTypes: [], outputTypes: [], constantInputs: [],
                                    compileSubgraph: { _ in throw KernelError.unsupported("no subgraphs here") })
        let kernel = try factory(context)
        let slots = OutputSlots(count: outputs, maxBytes: 1 << 32)
        if inPlace, let x = inputs.first ?? nil {
            slots.slots[0] = OutputSlots.Slot(buffer: x.buffer, offset: x.byteOffset, capacity: x.byteCount)
        }
        try kernel.run(inputs, slots)
        return try slots.results.enumerated().map { index, tensor in
            guard let tensor else { throw KernelError.invalid("output \(index) was not produced") }
            return tensor
        }
    }

    /// A closure that runs `op` once more on the same inputs, as a compiled plan does:
    /// the kernel built once, outputs in buffers allocated once (the arena's role).
    static func prepared(_ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue] = [:],
                         opset: Int = 17, outputs: Int = 1) throws -> () throws -> Void {
        let first = try run(op, inputs, attributes, opset: opset, outputs: outputs)
        let node = Node(name: op, opType: op, inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: (0..<outputs).map { "out\($0)" },
                        attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
        guard let factory = KernelRegistry.factory(for: node) else { throw KernelError.unsupported("no kernel for \(op)") }
        let kernel = try factory(KernelContext(node: node, opset: opset, inputTypes: [], outputTypes: [], constantInputs: [],
                                               compileSubgraph: { _ in throw KernelError.unsupported("no subgraphs here") }))
        let slots = OutputSlots(count: outputs, maxBytes: 1 << 32)
        for (i, t) in first.enumerated() {
            slots.slots[i] = OutputSlots.Slot(buffer: TensorBuffer(byteCount: t.byteCount), offset: 0, capacity: t.byteCount)
        }
        return { try kernel.run(inputs, slots) }
    }

    /// Runs per measurement: debug builds only check that the measurement runs.
    #if DEBUG
    static let timedRuns = 1
    #else
    static let timedRuns = 30
    #endif

    /// Median and best seconds per call of `body` over `runs` runs after warm-up.
    static func seconds(runs: Int = timedRuns, _ body: () throws -> Void) rethrows -> (median: Double, best: Double) {
        for _ in 0..<min(runs, 3) { try body() }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        times.sort()
        return (times[times.count / 2], times[0])
    }

    /// GB/s of `body` at 1 and 2 threads, `bytes` moved per call (input read + output written).
    static func throughput(_ label: String, bytes: Int, _ body: () throws -> Void) rethrows -> String {
        let saved = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(saved) }
        var parts: [String] = []
        for threads in [1, 2] {
            ThreadPool.setThreadCount(threads)
            let (median, best) = try seconds(body)
            parts.append(String(format: "%d thread%@ median %.3f ms = %.1f GB/s (best %.1f GB/s)", threads, threads == 1 ? "" : "s",
                                median * 1e3, Double(bytes) / median / 1e9, Double(bytes) / best / 1e9))
        }
        let line = "\(label): " + parts.joined(separator: ", ")
        print(line)
        return line
    }

    /// max |a - b| / max(1, max |b|) over two float tensors of equal shape.
    static func error(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return relativeError(a, b)
    }

    /// A float tensor with values uniform in [-scale, scale).
    static func random(_ shape: [Int], _ rng: inout SeededGenerator, scale: Float = 1) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<count).map { _ in Float.random(in: -scale..<scale, using: &rng) })
    }

    static func int64s(_ values: [Int]) -> Tensor { Tensor(.int64, shape: [values.count], values: values.map { Int64($0) }) }
}
