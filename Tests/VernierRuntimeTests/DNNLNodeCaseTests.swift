import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

/// The ONNX backend node tests of this family's ops (Conv, ConvTranspose, Gemm, MatMul),
/// compiled and run through `ExecutionPlan` and compared with the expected outputs
/// (rtol 1e-3, atol 1e-5, as the suite-wide runner does). A stand-in until the shared
/// NodeSuiteExecutionTests runner lands; it reads the .pb tensors itself because this
/// test target does not link ONNXProto.
enum NodeCase {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/Tests/Data/node"
    }()

    static let families = ["test_conv", "test_basic_conv", "test_convtranspose", "test_gemm", "test_matmul"]
    /// Cases of those prefixes that belong to other ops.
    static let otherOps = ["test_convinteger", "test_matmulinteger"]

    static var names: [String] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return all.filter { name in
            families.contains { name.hasPrefix($0 + "_") || name == $0 } && !otherOps.contains { name.hasPrefix($0) }
        }.sorted()
    }

    /// A TensorProto's name, dims and fp32 values (raw_data or float_data); nil for other
    /// element types.
    static func readTensor(_ path: String) -> (name: String, tensor: Tensor)? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        var i = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0, shift: UInt64 = 0
            while i < bytes.count {
                let byte = bytes[i]
                i += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }
        var dims: [Int] = [], type: UInt64 = 0, name = "", floats: [Float] = [], raw: [UInt8]?
        while i < bytes.count {
            guard let key = varint() else { return nil }
            let (field, wire) = (key >> 3, key & 7)
            switch wire {
            case 0:
                guard let v = varint() else { return nil }
                if field == 1 { dims.append(Int(Int64(bitPattern: v))) }
                if field == 2 { type = v }
            case 1: i += 8
            case 5:
                guard i + 4 <= bytes.count else { return nil }
                if field == 4 {
                    floats.append(Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8
                                        | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24))
                }
                i += 4
            case 2:
                guard let length = varint(), i + Int(length) <= bytes.count else { return nil }
                let chunk = Array(bytes[i..<(i + Int(length))])
                i += Int(length)
                switch field {
                case 1:
                    var j = 0
                    while j < chunk.count {
                        var value: UInt64 = 0, shift: UInt64 = 0
                        while j < chunk.count {
                            let byte = chunk[j]
                            j += 1
                            value |= UInt64(byte & 0x7F) << shift
                            if byte & 0x80 == 0 { break }
                            shift += 7
                        }
                        dims.append(Int(Int64(bitPattern: value)))
                    }
                case 4:
                    for k in stride(from: 0, to: chunk.count - 3, by: 4) {
                        floats.append(Float(bitPattern: UInt32(chunk[k]) | UInt32(chunk[k + 1]) << 8
                                            | UInt32(chunk[k + 2]) << 16 | UInt32(chunk[k + 3]) << 24))
                    }
                case 8: name = String(decoding: chunk, as: UTF8.self)
                case 9: raw = chunk
                default: break
                }
            default: return nil
            }
        }
        guard type == 1 else { return nil }
        if let raw {
            floats = stride(from: 0, to: raw.count - 3, by: 4).map { k in
                Float(bitPattern: UInt32(raw[k]) | UInt32(raw[k + 1]) << 8 | UInt32(raw[k + 2]) << 16 | UInt32(raw[k + 3]) << 24)
            }
        }
        guard floats.count == dims.reduce(1, *) else { return nil }
        return (name, Tensor(shape: dims, values: floats))
    }

    /// nil when the case passes, else what went wrong.
    static func run(_ name: String) -> String? {
        let folder = root + "/" + name
        do {
            let model = try GraphValidator.validate(try ModelLoader().load(path: folder + "/model.onnx"))
            let plan = try ExecutionPlan.compile(model)
            var inputs: [String: Tensor] = [:]
            let set = folder + "/test_data_set_0"
            for (index, input) in model.graph.runtimeInputs.enumerated() {
                guard let (_, tensor) = readTensor("\(set)/input_\(index).pb") else { return "input \(index) unreadable" }
                inputs[input.name] = tensor
            }
            let results = try plan.run(inputs)
            for (index, output) in model.graph.outputs.enumerated() {
                guard let (_, expected) = readTensor("\(set)/output_\(index).pb") else { return "output \(index) unreadable" }
                guard let got = results[output.name] else { return "output \(output.name) missing" }
                guard got.shape == expected.shape else { return "shape \(got.shape), expected \(expected.shape)" }
                for (g, e) in zip(got.scalars(as: Float.self), expected.scalars(as: Float.self))
                where abs(g - e) > 1e-5 + 1e-3 * abs(e) {
                    return "value \(g), expected \(e)"
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}

extension DNNLKernelTests {
@Suite struct NodeCases {
    @Test func familyCasesAreFound() {
        #expect(NodeCase.names.count >= 29, "node tests missing: link Tests/Data to /work/main/Tests/Data")
    }

    @Test(arguments: NodeCase.names)
    func nodeCasePasses(_ name: String) {
        let failure = NodeCase.run(name)
        #expect(failure == nil, "\(name): \(failure ?? "")")
    }
}
}
