import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierPlanner
import VernierReport
import VernierRuntime

struct Distill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a student model built from the teacher's own structure: thinner (--width) and shallower (--depth).",
        discussion: """
        Width: every prunable channel group (see `vernier prune --list-groups`) keeps \
        --width of its channels, the ones with the largest weight norm, so the student's \
        weights start as slices of the teacher's.

        Depth: a residual block is the subgraph from a value to the Add that adds it back \
        (with the ReLU or LayerNorm right after it), when its output has its input's \
        shape; removing it lets the input flow on. Consecutive blocks form a stage; where \
        their kinds alternate (a transformer's attention and MLP blocks) each period is one \
        layer. Each stage keeps --depth of its blocks or layers (rounded to nearest, a \
        downsampling block that opens the stage counted and always kept, at least one \
        per stage); the later ones go. The report names them.

        The student still needs training (distillation from the teacher's outputs); this \
        command gives it the teacher's architecture and weights to start from. The report \
        compares teacher and student: params, MACs, file size, latency measured here (a \
        short measurement) and predicted on --device.

        Examples:
          vernier distill Models/resnet_mini.onnx --width 0.5 -o student.onnx
          vernier distill Models/bert_mini.onnx --dim batch=1 --dim seq=32 --width 0.5 --depth 0.5 -o student.onnx
          vernier distill resnet50.onnx --dim batch=1 --width 0.75 --depth 0.75 --device rpi5 -o student.onnx
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "Share of each prunable channel group's channels the student keeps, in (0, 1].")
    var width: Double = 1

    @Option(help: "Share of each stage's repeated blocks (transformer layers) the student keeps, in (0, 1].")
    var depth: Double = 1

    @Option(name: .customLong("round-to"), help: "Keep a multiple of N channels in each group (at least N).")
    var roundTo: Int = 1

    @Option(help: ArgumentHelp("Predict latencies on this device: host (default), a built-in or a stored profile (see `vernier predict`).", valueName: "NAME"))
    var device: String = DeviceProfileStore.hostName

    @Option(name: .customLong("measure-time"), help: ArgumentHelp("Seconds to measure each model's latency here (0: do not measure).", valueName: "SECONDS"))
    var measureTime: Double = 1

    @OptionGroup var probe: InputDataOptions
    @OptionGroup var threading: RuntimeOptions

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the student.", valueName: "STUDENT.onnx"))
    var output: String

    func validate() throws {
        if !(width > 0 && width <= 1) { throw ValidationError("--width must be more than 0 and at most 1") }
        if !(depth > 0 && depth <= 1) { throw ValidationError("--depth must be more than 0 and at most 1") }
        if width == 1 && depth == 1 { throw ValidationError("give --width or --depth below 1, or the student is the teacher") }
        if roundTo < 1 { throw ValidationError("--round-to must be 1 or more") }
        if !(measureTime >= 0 && measureTime <= 600) { throw ValidationError("--measure-time must be between 0 and 600 seconds") }
    }

    func run() throws {
        let threads = threading.apply()
        // The teacher, then the device, before the student is written: a bad path fails
        // before any measuring, an unknown device leaves no student behind.
        let analyzer = ModelAnalyzer(inferenceOptions: try model.inferenceOptions())
        let teacher = try analyzer.analyze(path: model.model)
        let device = try DeviceSelection.load(self.device)
        let student = try StudentBuilder.build(teacher, options: StudentOptions(width: width, depth: depth, roundTo: roundTo),
                                               analyzer: analyzer)
        let bytes = try ModelWriter().serialize(student.analyzed.model)
        try AtomicFile.write(Data(bytes), to: output)

        var lines = ["\(model.model): student at width \(width), depth \(depth)", ""]
        lines += Self.depthLines(student, depth: depth)
        if width < 1 {
            let thinned = student.groups.filter { $0.kept < $0.group.channels }
            let channels = student.groups.reduce((0, 0)) { ($0.0 + $1.group.channels, $0.1 + $1.kept) }
            lines.append("width: \(thinned.count) of \(student.groups.count) channel groups thinned, "
                         + "\(channels.0) -> \(channels.1) channels in all (largest-norm channels kept; `vernier prune --list-groups` shows why a group cannot be)")
        }
        lines.append("")

        let before = CostModel.table(for: teacher).totals
        let after = CostModel.table(for: student.analyzed).totals
        lines.append(Prune.totals(before: before, after: after, sizeBefore: teacher.model.fileBytes, sizeAfter: bytes.count)
            .trimmingCharacters(in: .newlines).replacingOccurrences(of: "before        after         after/before",
                                                                     with: "teacher       student       student/teacher"))
        lines.append("")
        lines += try latencyLines(teacher: teacher, student: student.analyzed, device: device, threads: threads)
        lines.append("")
        lines.append("written: \(output) (untrained: train it against the teacher's outputs before use)")
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    static func depthLines(_ student: StudentModel, depth: Double) -> [String] {
        guard depth < 1 else { return [] }
        let stages = student.stages
        if stages.isEmpty { return ["depth: no residual blocks whose input and output shapes match; nothing removed"] }
        var lines = ["depth: \(stages.count) stage\(stages.count == 1 ? "" : "s") of repeated blocks"]
        for (i, outcome) in stages.enumerated() {
            let units = outcome.stage.units
            let kind = (units.first?.blocks.count ?? 1) > 1 ? "layers" : "blocks"
            let opening = outcome.stage.opensWithTransition ? " after a downsampling block (kept)" : ""
            lines.append("  stage \(i + 1): \(units.count) \(units.count == 1 ? String(kind.dropLast()) : kind)\(opening), kept \(outcome.keptUnits)")
            for (k, unit) in units.enumerated() {
                lines.append("    \(k < outcome.keptUnits ? "kept   " : "removed") \(unit.name)")
            }
        }
        return lines
    }

    func latencyLines(teacher: AnalyzedModel, student: AnalyzedModel, device: (DeviceProfile, String), threads: Int) throws -> [String] {
        var lines: [String] = []
        let (profile, origin) = device
        let predictThreads = threading.threads ?? profile.cores
        let predicted = [teacher, student].map { DeviceSelection.predict($0, on: profile, threads: predictThreads).totalMs }
        lines.append(String(format: "predicted latency on %@ (%d threads; %@):  teacher %.3f ms  student %.3f ms  (%.1f%%)",
                            profile.name, predictThreads, origin, predicted[0], predicted[1], 100 * predicted[1] / max(predicted[0], 1e-9)))
        guard measureTime > 0 else { return lines + ["measured latency: not measured (--measure-time 0)"] }
        let feeds = try probe.inputData == nil ? ModelInputs.random(for: teacher.inferred, seed: probe.seed)
            : probe.analyzeAndFeed(model).feeds
        let medians = try [teacher, student].map { analyzed -> LatencyStats in
            let plan = try ExecutionPlan.compile(analyzed.inferred, opsets: analyzed.model.opsets, options: threading.executionOptions)
            return try Self.measure(plan, feeds: feeds, seconds: measureTime)
        }
        lines.append(String(format: "measured latency on this machine (%d threads, median of %d / %d runs):  teacher %.3f ms  student %.3f ms  (%.1f%%)",
                            threads, medians[0].count, medians[1].count, medians[0].median, medians[1].median,
                            100 * medians[1].median / max(medians[0].median, 1e-9)))
        return lines
    }

    /// A short measurement: 2 warm-up runs, then runs for `seconds` (at least 5, at most 500).
    static func measure(_ plan: ExecutionPlan, feeds: [String: Tensor], seconds: Double) throws -> LatencyStats {
        for _ in 0..<2 { _ = try plan.run(feeds) }
        var milliseconds: [Double] = []
        let began = DispatchTime.now().uptimeNanoseconds
        while milliseconds.count < 5 || (Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9 < seconds && milliseconds.count < 500) {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try plan.run(feeds)
            milliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return LatencyStats(milliseconds: milliseconds)
    }
}
