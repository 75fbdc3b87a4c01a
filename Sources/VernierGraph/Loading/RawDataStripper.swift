/// Rewrites serialized ModelProto bytes so that large `TensorProto.raw_data` payloads
/// are left out, each replaced by a marker field holding the payload's offset and
/// length in the original bytes. swift-protobuf copies `bytes` fields when it decodes,
/// so decoding the stripped copy and reading weights from the memory-mapped file keeps
/// the weights in memory once.
///
/// The walk follows only the fields that can hold tensors (graphs, nodes, attributes,
/// initializers, sparse tensors, functions, training info) and copies everything else
/// verbatim. Payload bytes are skipped, never touched, so their pages stay unread.
struct RawDataStripper {
    /// Field number of the marker in TensorProto: a nested message {1: offset, 2: length}.
    /// Chosen far above any number ONNX uses (the maximum is 2^29 - 1).
    static let markerField = 536_870_000

    /// Payloads shorter than this stay inline (shape constants, scalars).
    var threshold: Int = 1024
    /// Messages nested deeper than this are refused (a hostile file could nest forever).
    var maxDepth: Int = 96

    enum Failure: Error, Equatable {
        case truncated(at: Int)
        case badWireType(Int, at: Int)
        case tooDeep
    }

    private enum Kind {
        case model, graph, node, attribute, tensor, sparseTensor, function, trainingInfo
    }

    /// Field number to submessage kind, for each message kind that can contain tensors.
    private static func child(of kind: Kind, field: Int) -> Kind? {
        switch (kind, field) {
        case (.model, 7): return .graph
        case (.model, 20): return .trainingInfo
        case (.model, 25): return .function
        case (.trainingInfo, 1), (.trainingInfo, 2): return .graph
        case (.graph, 1): return .node
        case (.graph, 5): return .tensor
        case (.graph, 15): return .sparseTensor
        case (.node, 5): return .attribute
        case (.function, 7): return .node
        case (.function, 11): return .attribute
        case (.attribute, 5), (.attribute, 10): return .tensor
        case (.attribute, 6), (.attribute, 11): return .graph
        case (.attribute, 22), (.attribute, 23): return .sparseTensor
        case (.sparseTensor, 1), (.sparseTensor, 2): return .tensor
        default: return nil
        }
    }

    /// The stripped ModelProto bytes.
    func strip(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(bytes.count, 1 << 20))
        try rewrite(bytes, range: 0..<bytes.count, kind: .model, depth: 0, into: &out)
        return out
    }

    private func rewrite(_ bytes: UnsafeRawBufferPointer, range: Range<Int>, kind: Kind, depth: Int,
                         into out: inout [UInt8]) throws {
        guard depth <= maxDepth else { throw Failure.tooDeep }
        var pos = range.lowerBound
        let end = range.upperBound
        while pos < end {
            let fieldStart = pos
            let tag = try readVarint(bytes, &pos, end)
            let field = Int(truncatingIfNeeded: tag >> 3)
            let wireType = Int(tag & 7)
            switch wireType {
            case 0:
                _ = try readVarint(bytes, &pos, end)
                out.append(contentsOf: bytes[fieldStart..<pos])
            case 1, 5:
                let width = wireType == 1 ? 8 : 4
                guard end - pos >= width else { throw Failure.truncated(at: pos) }
                pos += width
                out.append(contentsOf: bytes[fieldStart..<pos])
            case 2:
                let rawLength = try readVarint(bytes, &pos, end)
                guard rawLength <= UInt64(end - pos) else { throw Failure.truncated(at: pos) }
                let length = Int(rawLength)
                let payload = pos..<(pos + length)
                pos += length
                if kind == .tensor && field == 9 && length >= threshold {
                    var marker: [UInt8] = []
                    appendVarint(UInt64(1 << 3), to: &marker)
                    appendVarint(UInt64(payload.lowerBound), to: &marker)
                    appendVarint(UInt64(2 << 3), to: &marker)
                    appendVarint(UInt64(length), to: &marker)
                    appendVarint(UInt64(Self.markerField << 3 | 2), to: &out)
                    appendVarint(UInt64(marker.count), to: &out)
                    out.append(contentsOf: marker)
                } else if let childKind = Self.child(of: kind, field: field) {
                    var inner: [UInt8] = []
                    try rewrite(bytes, range: payload, kind: childKind, depth: depth + 1, into: &inner)
                    appendVarint(tag, to: &out)
                    appendVarint(UInt64(inner.count), to: &out)
                    out.append(contentsOf: inner)
                } else {
                    out.append(contentsOf: bytes[fieldStart..<pos])
                }
            default:
                // Groups (3, 4) are not used by ONNX; anything else is not protobuf.
                throw Failure.badWireType(wireType, at: fieldStart)
            }
        }
    }

    private func readVarint(_ bytes: UnsafeRawBufferPointer, _ pos: inout Int, _ end: Int) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end, shift < 64 else { throw Failure.truncated(at: pos) }
            let byte = bytes[pos]
            pos += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Reads the marker's offset and length back from a TensorProto's unknown fields.
    static func decodeMarker(_ unknown: [UInt8]) -> (offset: Int, length: Int)? {
        let stripper = RawDataStripper()
        return unknown.withUnsafeBytes { raw -> (Int, Int)? in
            var pos = 0
            while pos < raw.count {
                guard let tag = try? stripper.readVarint(raw, &pos, raw.count) else { return nil }
                guard tag & 7 == 2, let len = try? stripper.readVarint(raw, &pos, raw.count),
                      len <= UInt64(raw.count - pos) else { return nil }
                let start = pos
                pos += Int(len)
                guard Int(tag >> 3) == markerField else { continue }
                var p = start
                var offset: UInt64?
                var length: UInt64?
                while p < pos {
                    guard let t = try? stripper.readVarint(raw, &p, pos), t & 7 == 0,
                          let v = try? stripper.readVarint(raw, &p, pos) else { return nil }
                    if t >> 3 == 1 { offset = v } else if t >> 3 == 2 { length = v }
                }
                guard let offset, let length, offset <= UInt64(Int.max), length <= UInt64(Int.max) else { return nil }
                return (Int(offset), Int(length))
            }
            return nil
        }
    }
}

func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(v & 0x7F) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}
