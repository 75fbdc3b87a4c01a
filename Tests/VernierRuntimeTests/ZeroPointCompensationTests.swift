import CDNNL
import Testing
import VernierGraph
@testable import VernierRuntime

/// `ZeroPointCompensation` against oneDNN's own (reference) reorder into the same
/// descriptor: every byte of the blocked weights and of the column sums after them.
struct ZeroPointCompensationTests {
    /// oneDNN's AMX int8 matmul weight layout with the zero-point flag, as its matmul
    /// asks for it.
    func compensatedDescriptor(rows: Int, columns: Int) throws -> dnnl_memory_desc_t {
        var md = try descriptor([rows, columns], tag: dnnl_BA16a64b4a, type: dnnl_s8)
        md.extra.flags = UInt64(dnnl_memory_extra_flag_compensation_conv_asymmetric_src.rawValue)
        md.extra.asymm_compensation_mask = 2
        return md
    }

    @Test(arguments: [(rows: 768, columns: 768, transposed: false), (rows: 100, columns: 1000, transposed: false),
                      (rows: 64, columns: 24, transposed: true), (rows: 300, columns: 130, transposed: true)])
    func sameBytesAsOneDNN(_ shape: (rows: Int, columns: Int, transposed: Bool)) throws {
        let engine = try DNNLEngine.shared()
        let (k, n) = (shape.rows, shape.columns)
        var random = SplitMix64(seed: UInt64(k * 7919 + n))
        let stored = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: random.next()) }
        // Logical [K, N]; transposed weights are stored [N, K].
        let strides = shape.transposed ? (row: 1, column: k) : (row: n, column: 1)
        let full = try compensatedDescriptor(rows: k, columns: n)
        try stored.withUnsafeBytes { raw in
            let base = try #require(raw.baseAddress)
            let user = try DNNLMemory(unbound: try stridedDescriptor([k, n], strides: [strides.row, strides.column], type: dnnl_s8),
                                      engine: engine)
            try user.bind(UnsafeMutableRawPointer(mutating: base))
            let reference = try DNNLMemory(owning: full, engine: engine)
            try makeReorder(from: user, to: reference, engine: engine).execute(on: engine)
            try engine.wait()
            let ours = try DNNLMemory(owning: full, engine: engine)
            // Garbage where the sums go: they must be written, not left from zeroing.
            let size = ours.byteCount
            try #require(size == reference.byteCount)
            let oursBytes = try #require(ours.buffer).baseAddress, referenceBytes = try #require(reference.buffer).baseAddress
            oursBytes.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)
            #expect(try ZeroPointCompensation.reorder(from: user, weights: base, rows: k, columns: n, strides: strides,
                                                      into: ours, engine: engine))
            let a = UnsafeRawBufferPointer(start: oursBytes, count: size), b = UnsafeRawBufferPointer(start: referenceBytes, count: size)
            let firstDifference = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(firstDifference == nil, "of \(size) bytes")
            // The sums are there and not all zero (so the comparison covers them).
            var plain = full
            plain.extra = dnnl_memory_extra_desc_t()
            let sums = UnsafeRawPointer(oursBytes + dnnl_memory_desc_get_size(&plain)).assumingMemoryBound(to: Int32.self)
            let column0 = (0..<k).reduce(Int32(0)) { $0 - Int32(stored[$1 * strides.row]) }
            #expect(sums[0] == column0 && column0 != 0)
        }
    }

    /// Descriptors it does not handle are left to oneDNN, untouched.
    @Test func declinesOtherLayouts() throws {
        let engine = try DNNLEngine.shared()
        let weights = [Int8](repeating: 3, count: 64 * 64)
        let noFlag = try descriptor([64, 64], tag: dnnl_BA16a64b4a, type: dnnl_s8)
        var s8s8 = noFlag
        s8s8.extra.flags = UInt64(dnnl_memory_extra_flag_compensation_conv_s8s8.rawValue)
        s8s8.extra.compensation_mask = 2
        for md in [noFlag, s8s8] {
            let owned = try DNNLMemory(owning: md, engine: engine)
            let user = try DNNLMemory(unbound: try descriptor([64, 64], tag: dnnl_ab, type: dnnl_s8), engine: engine)
            try weights.withUnsafeBytes { raw in
                let base = try #require(raw.baseAddress)
                try user.bind(UnsafeMutableRawPointer(mutating: base))
                #expect(try !ZeroPointCompensation.reorder(from: user, weights: base, rows: 64, columns: 64,
                                                           strides: (64, 1), into: owned, engine: engine))
            }
            #expect(UnsafeRawBufferPointer(start: try #require(owned.buffer).baseAddress, count: owned.byteCount).allSatisfy { $0 == 0 })
        }
    }
}
