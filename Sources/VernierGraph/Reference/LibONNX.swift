import CONNX
import ONNXProto
import SwiftProtobuf

/// libonnx (the ONNX C++ reference library, Debian's 1.12) behind the CONNX C API:
/// its checker and its shape inference, used as a cross-check and as the fallback
/// for ops that have no Vernier shape rule.
public enum LibONNX {
    /// libonnx's verdict on a model.
    public enum Verdict: Equatable, Sendable {
        case valid
        case invalid(String)
        /// IR or opset newer than libonnx 1.12 knows: not a verdict on the model.
        case newerThanLibONNX(String)
        case failed(String)
    }

    /// The libonnx version linked in.
    public static var version: String { String(cString: connx_onnx_version()) }

    /// Runs libonnx's checker on stripped model bytes (weights cut out, which the
    /// checker is told to tolerate).
    public static func check(strippedBytes: [UInt8], full: Bool = false) -> Verdict {
        var message = [CChar](repeating: 0, count: 4096)
        let flags = CONNX_CHECK_SKIP_TENSOR_DATA | (full ? CONNX_CHECK_FULL : 0)
        let code = strippedBytes.withUnsafeBytes { raw in
            connx_check_model(raw.baseAddress, raw.count, Int32(flags), &message, message.count)
        }
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch code {
        case CONNX_OK: return .valid
        case CONNX_INVALID, CONNX_PARSE_ERROR: return .invalid(text)
        case CONNX_UNSUPPORTED_VERSION: return .newerThanLibONNX(text)
        default: return .failed(text)
        }
    }

    /// Output types libonnx infers for every value of the top-level graph, after
    /// replacing the inputs' dims with `inputShapes` and binding `dimBindings`.
    /// Returns an empty map when libonnx cannot infer (its reason in `note`).
    public static func inferTypes(strippedBytes: [UInt8], inputShapes: [String: [Int]] = [:],
                                  dimBindings: [String: Int] = [:]) -> (types: [String: TensorType], note: String?) {
        var bytes = strippedBytes
        if !inputShapes.isEmpty || !dimBindings.isEmpty {
            guard var proto = try? Onnx_ModelProto(serializedBytes: strippedBytes) else { return ([:], "cannot re-read the model") }
            for i in proto.graph.input.indices where proto.graph.input[i].type.tensorType.hasShape {
                let name = proto.graph.input[i].name
                var shape = proto.graph.input[i].type.tensorType.shape
                for d in shape.dim.indices {
                    if let dims = inputShapes[name], d < dims.count {
                        shape.dim[d].dimValue = Int64(dims[d])
                    } else if case .dimParam(let p)? = shape.dim[d].value, let v = dimBindings[p] {
                        shape.dim[d].dimValue = Int64(v)
                    }
                }
                proto.graph.input[i].type.tensorType.shape = shape
            }
            guard let serialized: [UInt8] = try? proto.serializedBytes() else { return ([:], "cannot re-write the model") }
            bytes = serialized
        }
        var out: UnsafeMutableRawPointer?
        var outLength = 0
        var message = [CChar](repeating: 0, count: 4096)
        let code = bytes.withUnsafeBytes { raw in
            connx_infer_shapes(raw.baseAddress, raw.count, 0, 1, &out, &outLength, &message, message.count)
        }
        defer { if let out { connx_free(out) } }
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard code == CONNX_OK, let out else { return ([:], text.isEmpty ? "libonnx shape inference failed" : text) }
        let result = UnsafeRawBufferPointer(start: out, count: outLength)
        guard let inferred = try? Onnx_ModelProto(serializedBytes: Array(result)) else { return ([:], "cannot read libonnx's result") }
        var types: [String: TensorType] = [:]
        for v in inferred.graph.valueInfo + inferred.graph.output where { if case .tensorType? = v.type.value { return true } else { return false } }() {
            let t = v.type.tensorType
            types[v.name] = TensorType(elementCode: t.elemType, shape: t.hasShape ? t.shape : nil, value: v.name)
        }
        return (types, nil)
    }
}
