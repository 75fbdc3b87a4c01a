import Foundation
import VernierCost

/// A profile's timeline in the Trace Event Format that Perfetto and chrome://tracing
/// open (the format ONNX Runtime's profiler writes too): one complete event (`"ph": "X"`)
/// per kernel per measured run on the executor's thread, with the op, the fused nodes,
/// shapes and costs in `args`; one event per run on a second track; timestamps in
/// microseconds from the first measured run.
public struct ChromeTrace {
    public let profile: Profile

    public init(_ profile: Profile) { self.profile = profile }

    /// Track ids: kernels, and whole runs.
    static let kernelThread = 1
    static let runThread = 2

    /// The trace as compact JSON (one event per line keeps big traces diffable).
    public func render() -> String {
        let steps = profile.measurements.steps
        let runs = steps.first?.starts.count ?? 0
        let origin = steps.first?.starts.min() ?? 0
        func micros(_ ns: UInt64) -> JSON { .double(Double(ns &- origin) / 1e3) }
        func duration(_ ns: UInt64) -> JSON { .double(Double(ns) / 1e3) }

        let model = profile.table.analyzed.model.path ?? "model"
        var events: [JSON] = [
            .object([("name", .string("process_name")), ("ph", .string("M")), ("pid", .int(1)),
                     ("args", .object([("name", .string("vernier: \(model)"))]))]),
            .object([("name", .string("thread_name")), ("ph", .string("M")), ("pid", .int(1)), ("tid", .int(Self.kernelThread)),
                     ("args", .object([("name", .string("kernels"))]))]),
            .object([("name", .string("thread_name")), ("ph", .string("M")), ("pid", .int(1)), ("tid", .int(Self.runThread)),
                     ("args", .object([("name", .string("runs"))]))]),
        ]
        let rows = Dictionary(profile.rows.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let args: [JSON] = steps.map { step in
            var fields: [(String, JSON)] = [("op_name", .string(step.opType)), ("fused", .array(step.sourceNodes.map(JSON.string)))]
            if let row = rows[step.name] {
                fields += [
                    ("input_shapes", .array(row.inputTypes.map(Format.jsonShape))),
                    ("output_shapes", .array(row.outputTypes.map(Format.jsonShape))),
                    ("params", .int(row.params)),
                    ("macs", row.costKnown ? .double(row.macs + row.intMacs) : .null),
                    ("flops", row.costKnown ? .double(row.flops) : .null),
                    ("bytes_moved", row.costKnown ? .double(row.bytesMoved) : .null),
                ]
            }
            return .object(fields)
        }
        for run in 0..<runs {
            guard let first = steps.first, let last = steps.last, run < last.ends.count else { continue }
            events.append(.object([
                ("name", .string("run \(run + 1)")), ("cat", .string("Run")), ("ph", .string("X")),
                ("ts", micros(first.starts[run])), ("dur", duration(last.ends[run] &- first.starts[run])),
                ("pid", .int(1)), ("tid", .int(Self.runThread)), ("args", .object([("run", .int(run + 1))])),
            ]))
            for (index, step) in steps.enumerated() where run < step.starts.count && run < step.ends.count {
                guard case .object(var fields) = args[index] else { continue }
                fields.append(("run", .int(run + 1)))
                events.append(.object([
                    ("name", .string(step.name)), ("cat", .string("Node")), ("ph", .string("X")),
                    ("ts", micros(step.starts[run])), ("dur", duration(step.ends[run] &- step.starts[run])),
                    ("pid", .int(1)), ("tid", .int(Self.kernelThread)), ("args", .object(fields)),
                ]))
            }
        }
        var out = "{\"displayTimeUnit\": \"ms\",\n\"otherData\": "
        out += JSON.object([("model", .string(model)), ("threads", .int(profile.threads)), ("runs", .int(runs)),
                            ("schema", .string("vernier.trace/1"))]).serialized(pretty: false)
        out += ",\n\"traceEvents\": [\n"
        out += events.map { $0.serialized(pretty: false) }.joined(separator: ",\n")
        out += "\n]}\n"
        return out
    }
}
