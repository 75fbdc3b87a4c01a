import CZlib
import Foundation
import VernierGraph

/// Why a .npy / .npz file could not be read or written.
public enum NumPyFormatError: Error, CustomStringConvertible, Equatable {
    case notNumPy(String)
    case unsupportedType(String)
    case malformed(String)
    case unsupportedArchive(String)

    public var description: String {
        switch self {
        case .notNumPy(let m): return "not a NumPy .npy array: \(m)"
        case .unsupportedType(let m): return "unsupported NumPy array: \(m)"
        case .malformed(let m): return "malformed NumPy file: \(m)"
        case .unsupportedArchive(let m): return "unsupported .npz archive: \(m)"
        }
    }
}

/// NumPy's `.npy` format (one array) and `.npz` (a zip of `.npy` members, stored or
/// deflated), as `numpy.save` / `numpy.savez` / `numpy.savez_compressed` write them.
public enum NumPyFormat {
    /// dtype descriptors without the byte-order character, and their ONNX types.
    static let descriptors: [(String, ElementType)] = [
        ("f4", .float), ("f8", .double), ("f2", .float16), ("i1", .int8), ("i2", .int16), ("i4", .int32),
        ("i8", .int64), ("u1", .uint8), ("u2", .uint16), ("u4", .uint32), ("u8", .uint64), ("b1", .bool),
    ]

    // MARK: .npy

    /// Decodes one `.npy` array.
    public static func readArray(_ bytes: [UInt8]) throws -> Tensor {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw NumPyFormatError.notNumPy("missing the \\x93NUMPY magic") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NumPyFormatError.malformed("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw NumPyFormatError.notNumPy("format version \(major) is unknown")
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw NumPyFormatError.malformed("truncated or non-text header")
        }
        let (type, shape, fortran) = try parseHeader(header)
        if fortran && shape.count > 1 { throw NumPyFormatError.unsupportedType("Fortran-ordered arrays (save with np.ascontiguousarray)") }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, d >= 0 else { throw NumPyFormatError.malformed("shape \(shape) overflows") }
            count = p
        }
        guard let byteCount = type.byteCount(elements: count) else { throw NumPyFormatError.unsupportedType("\(type)") }
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart >= byteCount else {
            throw NumPyFormatError.malformed("shape \(shape) needs \(byteCount) bytes of data, the file has \(bytes.count - dataStart)")
        }
        let tensor = Tensor(elementType: type, shape: shape)
        bytes.withUnsafeBytes { raw in
            if byteCount > 0, let base = raw.baseAddress { tensor.rawPointer.copyMemory(from: base + dataStart, byteCount: byteCount) }
        }
        return tensor
    }

    /// The dtype, shape and order from a header such as
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }`.
    static func parseHeader(_ header: String) throws -> (ElementType, [Int], Bool) {
        func field(_ key: String) -> Substring? {
            guard let k = header.range(of: "'\(key)'") else { return nil }
            let rest = header[k.upperBound...].drop { $0 == " " || $0 == ":" }
            return rest
        }
        guard let descrField = field("descr"), descrField.first == "'" else { throw NumPyFormatError.malformed("no descr in header") }
        let descr = descrField.dropFirst().prefix { $0 != "'" }
        guard let order = descr.first, "<>|=".contains(order) else { throw NumPyFormatError.unsupportedType("dtype '\(descr)'") }
        let code = String(descr.dropFirst())
        guard let type = descriptors.first(where: { $0.0 == code })?.1 else {
            throw NumPyFormatError.unsupportedType("dtype '\(descr)' (supported: float16/32/64, int8..64, uint8..64, bool)")
        }
        if order == ">" && code.last != "1" { throw NumPyFormatError.unsupportedType("big-endian dtype '\(descr)'") }
        let fortran = field("fortran_order").map { $0.hasPrefix("True") } ?? false
        guard let shapeField = field("shape"), shapeField.first == "(", let close = shapeField.firstIndex(of: ")") else {
            throw NumPyFormatError.malformed("no shape in header")
        }
        let inside = shapeField[shapeField.index(after: shapeField.startIndex)..<close]
        var shape: [Int] = []
        for part in inside.split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let d = Int(text.hasSuffix("L") ? String(text.dropLast()) : text), d >= 0 else {
                throw NumPyFormatError.malformed("shape entry '\(text)'")
            }
            shape.append(d)
        }
        return (type, shape, fortran)
    }

    /// Encodes one array as `.npy` (format 1.0, little-endian, C order).
    public static func writeArray(_ tensor: Tensor) throws -> [UInt8] {
        guard let code = descriptors.first(where: { $0.1 == tensor.elementType })?.0 else {
            throw NumPyFormatError.unsupportedType("element type \(tensor.elementType) has no NumPy dtype")
        }
        let order = code.hasSuffix("1") ? "|" : "<"
        let shapeText = tensor.shape.isEmpty ? "()" : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)"
            : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(order)\(code)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so the data starts on a 64-byte boundary, ending with a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let length = header.utf8.count
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        bytes += UnsafeRawBufferPointer(start: tensor.rawPointer, count: tensor.byteCount)
        return bytes
    }

    // MARK: .npz

    /// Reads every array of an `.npz` archive, by name (the member name without `.npy`).
    public static func readArchive(_ bytes: [UInt8]) throws -> [(name: String, tensor: Tensor)] {
        try ZipArchive.members(bytes).map { member in
            guard member.name.hasSuffix(".npy") else {
                throw NumPyFormatError.unsupportedArchive("member '\(member.name)' is not a .npy array")
            }
            return (String(member.name.dropLast(4)), try readArray(member.data))
        }
    }

    /// Writes arrays as an uncompressed `.npz` archive (what `numpy.savez` writes).
    public static func writeArchive(_ arrays: [(name: String, tensor: Tensor)]) throws -> [UInt8] {
        try ZipArchive.stored(arrays.map { ($0.name + ".npy", try writeArray($0.tensor)) })
    }

    /// Reads `.npz` or `.npy` by content: a `.npy` file gives one array named after the
    /// file (without extension).
    public static func read(path: String) throws -> [(name: String, tensor: Tensor)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NumPyFormatError.notNumPy("cannot read '\(path)'")
        }
        let bytes = [UInt8](data)
        if bytes.starts(with: [0x50, 0x4B]) { return try readArchive(bytes) }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return [(name, try readArray(bytes))]
    }
}

/// The little of the zip format `.npz` needs: read stored and deflated members, write
/// stored ones. Zip64 archives (over 4 GiB) are refused with a clear error.
enum ZipArchive {
    struct Member {
        var name: String
        var data: [UInt8]
    }

    static func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    static func u32(_ b: [UInt8], _ at: Int) -> Int { u16(b, at) | u16(b, at + 2) << 16 }

    static func members(_ bytes: [UInt8]) throws -> [Member] {
        // End of central directory: 22 bytes plus a comment of up to 64 KiB.
        var eocd = -1
        var i = bytes.count - 22
        while i >= max(0, bytes.count - 22 - 65_535) {
            if bytes[i] == 0x50, bytes[i + 1] == 0x4B, bytes[i + 2] == 5, bytes[i + 3] == 6 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw NumPyFormatError.unsupportedArchive("no zip end-of-directory record (truncated file?)") }
        let count = u16(bytes, eocd + 10)
        let directoryOffset = u32(bytes, eocd + 16)
        if count == 0xFFFF || directoryOffset == 0xFFFF_FFFF { throw NumPyFormatError.unsupportedArchive("zip64 archives") }
        var members: [Member] = []
        var at = directoryOffset
        for _ in 0..<count {
            guard at + 46 <= bytes.count, u32(bytes, at) == 0x0201_4B50 else {
                throw NumPyFormatError.unsupportedArchive("corrupt central directory")
            }
            let method = u16(bytes, at + 10)
            let compressed = u32(bytes, at + 20), size = u32(bytes, at + 24)
            let nameLength = u16(bytes, at + 28), extra = u16(bytes, at + 30), comment = u16(bytes, at + 32)
            let local = u32(bytes, at + 42)
            guard at + 46 + nameLength <= bytes.count,
                  let name = String(bytes: bytes[(at + 46)..<(at + 46 + nameLength)], encoding: .utf8) else {
                throw NumPyFormatError.unsupportedArchive("corrupt member name")
            }
            if compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                throw NumPyFormatError.unsupportedArchive("zip64 member '\(name)'")
            }
            guard local + 30 <= bytes.count, u32(bytes, local) == 0x0403_4B50 else {
                throw NumPyFormatError.unsupportedArchive("corrupt local header of '\(name)'")
            }
            let start = local + 30 + u16(bytes, local + 26) + u16(bytes, local + 28)
            guard start + compressed <= bytes.count else { throw NumPyFormatError.unsupportedArchive("member '\(name)' is truncated") }
            let raw = Array(bytes[start..<(start + compressed)])
            switch method {
            case 0: members.append(Member(name: name, data: raw))
            case 8: members.append(Member(name: name, data: try inflate(raw, expected: size, name: name)))
            default: throw NumPyFormatError.unsupportedArchive("member '\(name)' uses compression method \(method)")
            }
            at += 46 + nameLength + extra + comment
        }
        return members
    }

    /// Raw deflate (zip method 8) to `expected` bytes.
    static func inflate(_ input: [UInt8], expected: Int, name: String) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: expected)
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw NumPyFormatError.unsupportedArchive("zlib failed to start")
        }
        defer { inflateEnd(&stream) }
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = destination.baseAddress
                stream.avail_out = UInt32(destination.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == expected else {
            throw NumPyFormatError.unsupportedArchive("member '\(name)' does not inflate to its recorded size")
        }
        return output
    }

    /// A zip archive of stored (uncompressed) members.
    static func stored(_ files: [(String, [UInt8])]) throws -> [UInt8] {
        var out: [UInt8] = []
        var directory: [UInt8] = []
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16((v >> 16) & 0xFFFF) }
        for (name, data) in files {
            guard data.count < 0xFFFF_FFFF, out.count < 0xFFFF_FFFF else {
                throw NumPyFormatError.unsupportedArchive("arrays over 4 GiB (zip64) cannot be written")
            }
            let nameBytes = Array(name.utf8)
            let crc = data.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, UInt32($0.count))) }
            let offset = out.count
            // version 20, no flags, method 0 (stored), time/date 0.
            let common = le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc) + le32(data.count) + le32(data.count)
                + le16(nameBytes.count)
            out += le32(0x0403_4B50) + common + le16(0) + nameBytes + data
            directory += le32(0x0201_4B50) + le16(20) + common + le16(0) + le16(0) + le16(0) + le16(0) + le32(0)
                + le32(offset) + nameBytes
        }
        let directoryOffset = out.count
        out += directory
        out += le32(0x0605_4B50) + le16(0) + le16(0) + le16(files.count) + le16(files.count) + le32(directory.count)
            + le32(directoryOffset) + le16(0)
        return out
    }
}
