import ArgumentParser
import Foundation
import VernierCost
import VernierGraph
import VernierPlanner
import VernierReport
import VernierRuntime

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a quantized model: int8 QDQ (calibrated activations) or float16 weight storage.",
        discussion: """
        --int8 writes the QDQ format that ONNX Runtime and TensorRT read: the weight of \
        every Conv, Gemm and MatMul whose weight is a stored float32 tensor becomes an \
        int8 initializer (symmetric: scale = max|w| / 127, zero point 0; one scale per \
        output channel with --per-channel, else one per tensor) with a DequantizeLinear \
        in front of the op. The op's data input gets a QuantizeLinear -> DequantizeLinear \
        pair (uint8, asymmetric): its range is recorded by running the original model in \
        Vernier's executor on the calibration inputs, widened to include 0, and \
        scale = (max - min) / 255, zero point = round(-min / scale). Biases and every other \
        op stay float32. Per-channel needs opset 13 or later.

        Calibration inputs: --calibration-data F.npz (arrays named after the inputs; an \
        array of the input's shape is one sample, a batch along the first axis is split \
        into samples), or --calibration-runs N random inputs (seeds --seed + 1 ...), which \
        the report calls random-input calibration: ranges from random data fit real data \
        only roughly.

        --fp16 stores the same weights as float16 with a Cast to float in front: the \
        weights take half the bytes, compute stays fp32, nothing is calibrated.

        The report lists the quantized nodes, the ones left alone and why, params and \
        sizes before and after, and the fidelity on probe inputs (--input-data, or random \
        ones with --seed): cosine similarity, largest absolute difference and top-1 \
        agreement of each output against the original. That is agreement on those inputs, \
        not task accuracy.

        Examples:
          vernier quantize Models/resnet_mini.onnx --int8 --per-channel -o resnet_int8.onnx
          vernier quantize model.onnx --int8 --calibration-data calib.npz -o int8.onnx
          vernier quantize Models/bert_mini.onnx --dim batch=1 --dim seq=32 --fp16 -o bert_fp16.onnx
        """
    )

    @OptionGroup var model: ModelOptions

    @Flag(help: "int8 weights and uint8 activations in QDQ form.")
    var int8 = false

    @Flag(help: "float16 weight storage (fp32 compute).")
    var fp16 = false

    @Flag(name: .customLong("per-channel"), help: "With --int8: one weight scale per output channel.")
    var perChannel = false

    @Option(name: .customLong("calibration-data"), help: ArgumentHelp(
        "Calibrate activation ranges on these arrays (.npz named after the inputs).", valueName: "FILE.npz"))
    var calibrationData: String?

    @Option(name: .customLong("calibration-runs"), help: ArgumentHelp(
        "Without --calibration-data: calibrate on this many random inputs.", valueName: "N"))
    var calibrationRuns: Int = 8

    @OptionGroup var probe: InputDataOptions
    @OptionGroup var threading: RuntimeOptions

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the quantized model.", valueName: "OUT.onnx"))
    var output: String

    func validate() throws {
        if int8 == fp16 { throw ValidationError("give exactly one of --int8 and --fp16") }
        if perChannel && !int8 { throw ValidationError("--per-channel applies to --int8 only") }
        if calibrationRuns < 1 { throw ValidationError("--calibration-runs must be at least 1") }
        if fp16 && calibrationData != nil { throw ValidationError("--calibration-data applies to --int8 only (float16 needs no calibration)") }
    }

    func run() throws {
        threading.apply()
        let analyzer = ModelAnalyzer(inferenceOptions: try model.inferenceOptions())
        let (analyzed, probeFeeds) = try probe.analyzeAndFeed(model)
        let storage: WeightStorage = int8 ? .int8(perChannel: perChannel) : .float16

        var samples: [[String: Tensor]] = []
        var calibrationSource = "none (float16 storage is not calibrated)"
        if int8 {
            if let calibrationData {
                samples = try ActivationCalibration.samples(from: try NumPyFormat.read(path: calibrationData), for: analyzed)
                calibrationSource = "\(calibrationData): \(samples.count) sample\(samples.count == 1 ? "" : "s")"
            } else {
                samples = try ActivationCalibration.randomSamples(for: analyzed, count: calibrationRuns, seed: probe.seed &+ 1)
                calibrationSource = "random-input calibration: \(calibrationRuns) random input set\(calibrationRuns == 1 ? "" : "s") "
                    + "(seeds \(probe.seed &+ 1)...\(probe.seed &+ UInt64(calibrationRuns))); ranges from random data fit real data only roughly"
            }
        }
        // The analyzer with the probe data's shapes bound, so the result re-infers as the original did.
        var bound = analyzer
        for input in analyzed.inferred.graph.runtimeInputs where bound.inferenceOptions.inputShapes[input.name] == nil {
            if let shape = probeFeeds[input.name]?.shape, probe.inputData != nil { bound.inferenceOptions.inputShapes[input.name] = shape }
        }
        let quantized = try ModelQuantizer.quantize(analyzed, storage: storage, samples: samples, analyzer: bound)
        let bytes = try ModelWriter().serialize(quantized.analyzed.model)
        // Run before writing: a model the executor refuses leaves no file behind.
        let fidelity = try Self.fidelity(original: analyzed, candidate: quantized.analyzed, feeds: probeFeeds, options: threading.executionOptions)
        try AtomicFile.write(Data(bytes), to: output)
        let probeSource = probe.inputData.map { "--input-data \($0)" } ?? "random inputs, seed \(probe.seed)"
        let text = Self.report(model: model.model, storage: storage, quantized: quantized, original: analyzed,
                               sizeAfter: bytes.count, calibration: calibrationSource, fidelity: fidelity,
                               probeSource: probeSource, output: output)
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Both models run on the same probe inputs; their outputs compared by name.
    static func fidelity(original: AnalyzedModel, candidate: AnalyzedModel, feeds: [String: Tensor],
                         options: ExecutionOptions) throws -> [OutputAgreement] {
        let before = try ExecutionPlan.compile(original.inferred, opsets: original.model.opsets, options: options)
        let expected = try before.run(feeds)
        let after = try ExecutionPlan.compile(candidate.inferred, opsets: candidate.model.opsets, options: options)
        let actual = try after.run(feeds)
        return before.outputNames.compactMap { name in
            guard let a = expected[name], let b = actual[name] else { return nil }
            return OutputAgreement.compare(name, baseline: a, candidate: b)
        }
    }

    static func report(model: String, storage: WeightStorage, quantized: QuantizedModel, original: AnalyzedModel, sizeAfter: Int,
                       calibration: String, fidelity: [OutputAgreement], probeSource: String, output: String) -> String {
        let targets = quantized.targets
        var lines: [String] = []
        switch storage {
        case .int8(let perChannel):
            lines.append("\(model): int8 QDQ: \(perChannel ? "per-channel" : "per-tensor") symmetric int8 weights, uint8 asymmetric activations")
        case .float16:
            lines.append("\(model): float16 weight storage, Cast to float before each op (compute stays fp32)")
        }
        lines.append("calibration: \(calibration)")
        lines.append("")
        lines.append("quantized (\(targets.targets.count) nodes):")
        for t in targets.targets {
            var line = "  \(t.nodeName)  \(t.opType)  weight \(t.weightName)"
            if let range = quantized.ranges[t.activation] {
                let p = range.uint8Parameters
                line += String(format: "  input %@ range [%.4g, %.4g] scale %.4g zero point %d", t.activation, range.min, range.max, p.scale, Int(p.zeroPoint))
            }
            lines.append(line)
        }
        if !targets.skipped.isEmpty {
            lines.append("not quantized (\(targets.skipped.count) Conv/Gemm/MatMul nodes):")
            for s in targets.skipped { lines.append("  \(s.nodeName)  \(s.opType)  \(s.reason)") }
        }
        let others = targets.otherOps.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
        if !others.isEmpty { lines.append("other ops stay float32 (no weights to quantize): \(others)") }
        lines.append("")
        let before = CostModel.table(for: original).totals
        let after = CostModel.table(for: quantized.analyzed).totals
        lines.append(Prune.totals(before: before, after: after, sizeBefore: original.model.fileBytes, sizeAfter: sizeAfter)
            .trimmingCharacters(in: .newlines))
        // The cost model counts a Conv/Gemm/MatMul whose operands both come from
        // DequantizeLinear as int8 work (runtimes fuse the QDQ pattern into int8 kernels).
        func pad(_ s: String) -> String { s.count >= 13 ? s + " " : s.padding(toLength: 14, withPad: " ", startingAt: 0) }
        lines.append(pad("int8 MACs") + pad(Format.cost(before.intMacs)) + pad(Format.cost(after.intMacs)))
        if case .int8 = storage {
            lines.append("  (MACs: float work; int8 MACs: the QDQ ops runtimes run in int8. Params after: int8 weights plus scales and zero points)")
        }
        lines.append("")
        lines.append("fidelity on probe inputs (\(probeSource)), quantized vs original; agreement on these inputs, not task accuracy:")
        if fidelity.isEmpty { lines.append("  no output could be compared") }
        for f in fidelity {
            var line = String(format: "  %@  cosine %.6f  max abs diff %.4g", f.output, f.cosineSimilarity, f.maxAbsDifference)
            if let top1 = f.top1Agreement { line += String(format: "  top-1 agreement %.1f%%", top1 * 100) }
            lines.append(line)
        }
        lines.append("written: \(output)")
        return lines.joined(separator: "\n") + "\n"
    }
}
