// Coverage-guided fuzz target for load -> validate -> infer shapes -> cost table.
//
// Built two ways (see Scripts/fuzz.sh and Tests/Fuzz/README.md):
//  - normally (`swift build`): a small `vernier-fuzz FILE...` replay tool that runs each
//    file through the same function, used to reproduce crashes;
//  - with `-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING`: the entry point hands
//    the command line to libFuzzer's driver, which calls `LLVMFuzzerTestOneInput` for
//    every input.
//
// This file must stay the target's only source file and must not be named main.swift:
// SwiftPM then compiles it with -parse-as-library (so `@main` works, no top-level code).
//
// Errors thrown by the pipeline are expected (the input is usually garbage); only crashes,
// hangs, and sanitizer reports are findings.
//
// Environment:
//   VERNIER_FUZZ_LIBONNX=1   also run the libonnx shape-inference fallback (C++).
//   VERNIER_FUZZ_VERBOSE=1   print the outcome of each input (replay tool).

import Foundation
import VernierCost
import VernierGraph
#if canImport(Glibc)
import Glibc
#endif

enum FuzzHarness {
    static let useLibONNX = ProcessInfo.processInfo.environment["VERNIER_FUZZ_LIBONNX"] == "1"
    static let verbose = ProcessInfo.processInfo.environment["VERNIER_FUZZ_VERBOSE"] == "1"

    /// A per-process folder in /dev/shm (tmpfs; falls back to the temp dir) holding the
    /// one file the loader maps. External-data references resolve inside this folder.
    static let folder: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = "\(base)/vernier-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: FuzzHarness.folder) }
        return dir
    }()
    static let modelPath = folder + "/model.onnx"

    /// Writes `bytes` to the model file, replacing what was there.
    static func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let fd = open(modelPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// Runs the whole static pipeline on the model file. Returns a one-line outcome.
    @discardableResult
    static func run() -> String {
        let analyzer = ModelAnalyzer(useLibONNXFallback: useLibONNX)
        let analyzed: AnalyzedModel
        do {
            analyzed = try analyzer.analyze(path: modelPath)
        } catch {
            return "error: \(error)"
        }
        var outcome = describe(CostModel.table(for: analyzed))

        // Symbolic dims leave the memory plan out; bind every input symbol to a small
        // value and run inference and costing again, so the planner sees the model too.
        let symbols = Set(analyzed.model.graph.runtimeInputs.flatMap {
            $0.type?.tensorType?.shape?.flatMap(\.symbols) ?? []
        }).sorted()
        if !symbols.isEmpty {
            var options = InferenceOptions()
            for (i, s) in symbols.enumerated() { options.dimBindings[s] = 1 + i % 3 }
            do {
                let inferred = try ShapeInference(options: options).infer(analyzed.model)
                let bound = AnalyzedModel(model: analyzed.model, inferred: inferred)
                outcome += "; bound " + describe(CostModel.table(for: bound))
            } catch {
                outcome += "; bound error: \(error)"
            }
        }
        return outcome
    }

    static func describe(_ table: CostTable) -> String {
        var s = "ok: \(table.nodes.count) rows, params \(table.totals.params), macs \(table.totals.macs)"
        if let m = table.memory { s += ", planned peak \(m.arenaBytes)" } else { s += ", no plan" }
        return s
    }

    /// Replays each file through `run()` (the normal build's entry point).
    static func replay(_ paths: [String]) -> Int32 {
        if paths.isEmpty {
            FileHandle.standardError.write(Data("usage: vernier-fuzz FILE...\n".utf8))
            return 2
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                return 2
            }
            let ok = data.withUnsafeBytes { write($0) }
            guard ok else { return 2 }
            let outcome = run()
            if verbose { print("\(path): \(outcome)") }
        }
        if !verbose { print("replayed \(paths.count) file(s) without crashing") }
        return 0
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func vernierFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    guard FuzzHarness.write(bytes) else { return 0 }
    FuzzHarness.run()
    return 0
}

#if FUZZING
/// libFuzzer's driver (`-sanitize=fuzzer` links it). SwiftPM renames an executable's
/// entry point and aliases `main` to it, so libFuzzer's own `main` is not used: ours
/// hands the command line to the driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

@main
struct VernierFuzzMain {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { data, size in vernierFuzzTestOneInput(data, size) }))
        #else
        exit(FuzzHarness.replay(Array(CommandLine.arguments.dropFirst())))
        #endif
    }
}
