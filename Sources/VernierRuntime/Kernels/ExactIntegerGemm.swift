/// Integer matrix products computed exactly on fp32 SIMD lanes, for MatMulInteger,
/// QLinearMatMul, ConvInteger and QLinearConv.
///
/// The operands are 8-bit values minus 8-bit zero points, so every operand is an integer
/// of magnitude at most 255 and every product at most 65025. A sum of 64 products stays
/// below 2^22, so fp32 holds it (and every partial sum, in any order) exactly, and the
/// shift by 1.5 * 2^23 turns it into an int32 exactly; the micro-kernel sums 64-deep
/// slices in fp32 and adds the slices in int32. This uses the CPU's fast float
/// multiply-add path instead of int32 multiplies (x86 has no cheap 32-bit integer
/// multiply-accumulate short of VNNI), and the result is bit-identical to int32 loops.
enum ExactIntegerGemm {
    typealias V = SIMD8<Float>
    /// Rows of A per micro-tile, columns of B per packed panel.
    static let tileRows = 6
    static let panelColumns = 16
    /// Depth summed in fp32 before moving to int32: 64 * 255^2 < 2^22.
    static let slice = 64

    /// Rows of A rounded up to whole tiles (the packed A's row count).
    static func paddedRows(_ m: Int) -> Int { (m + tileRows - 1) / tileRows * tileRows }
    /// Columns of B rounded up to whole panels (C's minimum row stride).
    static func paddedColumns(_ n: Int) -> Int { (n + panelColumns - 1) / panelColumns * panelColumns }

    /// C = A · B in int32.
    /// - a: `paddedRows(m)` rows of `depth` floats (rows past `m` zero).
    /// - b: `paddedColumns(n) / 16` panels, each `depth` rows of 16 floats (columns past `n` zero).
    /// - c: `paddedRows(m)` rows of `ldc >= paddedColumns(n)` int32, fully overwritten in the padded region.
    static func multiply(a: UnsafePointer<Float>, rows m: Int, depth k: Int, b: UnsafePointer<Float>, columns n: Int,
                         c: UnsafeMutablePointer<Int32>, ldc: Int) {
        let rowTiles = paddedRows(m) / tileRows, panels = paddedColumns(n) / panelColumns
        let tiles = rowTiles * panels
        guard tiles > 0 else { return }
        // Panel-major order: neighbouring tiles share a B panel, which stays in cache.
        ThreadPool.parallelFor(tiles, minimumPerThread: max(1, 32768 / max(1, k * tileRows * panelColumns))) { range in
            for t in range {
                let panel = t / rowTiles, rowTile = t % rowTiles
                tile(a: a + rowTile * tileRows * k, depth: k, b: b + panel * k * panelColumns,
                     c: c + rowTile * tileRows * ldc + panel * panelColumns, ldc: ldc)
            }
        }
    }

    /// One 6 x 16 tile of C.
    @inline(__always)
    static func tile(a: UnsafePointer<Float>, depth k: Int, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        for r in 0..<tileRows { (c + r * ldc).update(repeating: 0, count: panelColumns) }
        let a0 = a, a1 = a + k, a2 = a + 2 * k, a3 = a + 3 * k, a4 = a + 4 * k, a5 = a + 5 * k
        var start = 0
        while start < k {
            let end = min(k, start + slice)
            var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
            var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
            var row = UnsafeRawPointer(b + start * panelColumns)
            for p in start..<end {
                let b0 = row.loadUnaligned(as: V.self), b1 = row.loadUnaligned(fromByteOffset: 32, as: V.self)
                var x = V(repeating: a0[p]); c00 += x * b0; c01 += x * b1
                x = V(repeating: a1[p]); c10 += x * b0; c11 += x * b1
                x = V(repeating: a2[p]); c20 += x * b0; c21 += x * b1
                x = V(repeating: a3[p]); c30 += x * b0; c31 += x * b1
                x = V(repeating: a4[p]); c40 += x * b0; c41 += x * b1
                x = V(repeating: a5[p]); c50 += x * b0; c51 += x * b1
                row += panelColumns * 4
            }
            accumulate(c00, c01, into: c)
            accumulate(c10, c11, into: c + ldc)
            accumulate(c20, c21, into: c + 2 * ldc)
            accumulate(c30, c31, into: c + 3 * ldc)
            accumulate(c40, c41, into: c + 4 * ldc)
            accumulate(c50, c51, into: c + 5 * ldc)
            start = end
        }
    }

    /// c[0..<16] += the exact integers held in two fp32 vectors (|v| < 2^22).
    @inline(__always)
    static func accumulate(_ v0: V, _ v1: V, into c: UnsafeMutablePointer<Int32>) {
        let shifter = V(repeating: 12_582_912)
        let i0 = unsafeBitCast(v0 + shifter, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let i1 = unsafeBitCast(v1 + shifter, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let raw = UnsafeMutableRawPointer(c)
        raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Int32>.self) &+ i0, as: SIMD8<Int32>.self)
        raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Int32>.self) &+ i1, toByteOffset: 32, as: SIMD8<Int32>.self)
    }
}

/// Reads 8-bit quantized tensors as Int32 without copying the whole tensor.
struct QuantizedBytes {
    let base: UnsafeRawPointer
    let signed: Bool

    init(_ t: Tensor, what: String) throws {
        guard t.elementType == .uint8 || t.elementType == .int8 else {
            throw KernelError.unsupported("\(what) of type \(t.elementType) (uint8 or int8)")
        }
        base = UnsafeRawPointer(t.rawPointer)
        signed = t.elementType == .int8
    }

    @inline(__always)
    subscript(_ i: Int) -> Int32 {
        signed ? Int32(base.load(fromByteOffset: i, as: Int8.self)) : Int32(base.load(fromByteOffset: i, as: UInt8.self))
    }
}
