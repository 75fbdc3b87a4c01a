/// Why a model could not be loaded. Each message names the file, tensor or node and
/// says what is wrong, so the user can act on it.
public enum LoadError: Error, CustomStringConvertible, Sendable, Equatable {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case malformedProtobuf(path: String, detail: String)
    case noGraph(path: String)
    case nestingTooDeep(limit: Int)
    case unsupportedTensorType(tensor: String, code: Int)
    case tensorSizeMismatch(tensor: String, dims: [Int], elementType: String, expectedBytes: Int, actualBytes: Int)
    case tensorTooLarge(tensor: String, dims: [Int])
    case negativeDim(tensor: String, dims: [Int])
    case externalDataEscapes(tensor: String, location: String)
    case externalDataMissing(tensor: String, path: String)
    case externalDataOutOfRange(tensor: String, path: String, offset: Int, length: Int, fileSize: Int)
    case externalDataMalformed(tensor: String, detail: String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): return "\(p): no such file"
        case .unreadable(let p, let r): return "\(p): cannot read: \(r)"
        case .emptyFile(let p): return "\(p): the file is empty, not an ONNX model"
        case .malformedProtobuf(let p, let d): return "\(p): not a valid ONNX model (protobuf decoding failed: \(d)); the file may be truncated or not ONNX"
        case .noGraph(let p): return "\(p): the model has no graph"
        case .nestingTooDeep(let l): return "subgraphs are nested more than \(l) levels deep; refusing to load"
        case .unsupportedTensorType(let t, let c): return "tensor '\(t)': unknown element type code \(c)"
        case .tensorSizeMismatch(let t, let d, let e, let x, let a):
            return "tensor '\(t)': shape \(d) of \(e) needs \(x) bytes but the file holds \(a)"
        case .tensorTooLarge(let t, let d): return "tensor '\(t)': shape \(d) has more elements than Int64 can count"
        case .negativeDim(let t, let d): return "tensor '\(t)': shape \(d) has a negative dim"
        case .externalDataEscapes(let t, let l):
            return "tensor '\(t)': external data location '\(l)' leaves the model's folder (absolute paths, '..' and symlinks out of the folder are refused)"
        case .externalDataMissing(let t, let p): return "tensor '\(t)': external data file \(p) does not exist"
        case .externalDataOutOfRange(let t, let p, let o, let l, let s):
            return "tensor '\(t)': external data range offset \(o) length \(l) exceeds \(p) (\(s) bytes)"
        case .externalDataMalformed(let t, let d): return "tensor '\(t)': external data \(d)"
        }
    }
}
