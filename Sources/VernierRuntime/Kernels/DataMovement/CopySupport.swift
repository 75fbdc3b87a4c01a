import CVernierSIMD
import VernierGraph

// Shared machinery of the data-movement kernels. These ops only move bytes, so they are
// written once per element *size* (1, 2, 4, 8 or 16 bytes), not per element type: every
// fixed-size type whose elements are whole bytes works.

/// A 16-byte element (complex128), moved as one unit.
struct Word128 {
    var low: UInt64
    var high: UInt64
}

/// Bytes per element of `type` for a kernel that copies elements; throws for strings and
/// sub-byte types (int4, float4, ...), whose elements are not addressable.
func copyableElementSize(_ type: ElementType) throws -> Int {
    guard let bits = type.bitWidth, bits % 8 == 0, [1, 2, 4, 8, 16].contains(bits / 8) else {
        throw KernelError.unsupported("element type \(type)")
    }
    return bits / 8
}

/// Row-major strides (in elements) of a contiguous tensor of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = step
        step *= shape[axis]
    }
    return strides
}

/// `axis` counted from the end when negative, checked against `rank` (`rank` itself is
/// allowed with `allowEnd`, for Flatten and Unsqueeze positions).
func normalizedAxis(_ axis: Int, rank: Int, allowEnd: Bool = false) throws -> Int {
    let limit = allowEnd ? rank + 1 : rank
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < limit else { throw KernelError.invalid("axis \(axis) is out of range for rank \(rank)") }
    return a
}

/// The elements of an index-like input (int32 or int64; shape and axes inputs accept
/// any integer type) widened to Int.
func indexValues(_ tensor: Tensor, _ what: String) throws -> [Int] {
    switch tensor.elementType {
    case .int64, .int32: return tensor.integers() ?? []
    default: throw KernelError.unsupported("\(what) of type \(tensor.elementType) (int32 or int64 expected)")
    }
}

/// The elements of a small integer input (shapes, axes, repeats, pads), any integer type.
func integerValues(_ tensor: Tensor, _ what: String) throws -> [Int] {
    guard let values = tensor.integers() else {
        throw KernelError.invalid("\(what) must be integers, got \(tensor.elementType)")
    }
    return values
}

/// `shape`'s element count, or an error when it overflows.
func checkedElementCount(_ shape: [Int]) throws -> Int {
    var count = 1
    for d in shape {
        guard d >= 0 else { throw KernelError.invalid("negative dimension in shape \(shape)") }
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow else { throw KernelError.invalid("shape \(shape) overflows") }
        count = product
    }
    return count
}

/// `values` copied into unmanaged memory (the caller deallocates it). Parallel bodies
/// read tables through these: Swift arrays shared by two threads cost an atomic
/// reference-count update on every access, which the threads then fight over.
func plainCopy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
    let p = UnsafeMutablePointer<T>.allocate(capacity: max(1, values.count))
    values.withUnsafeBufferPointer { if let base = $0.baseAddress { p.initialize(from: base, count: values.count) } }
    return p
}

// MARK: - Element loops, one per element size

@inline(__always)
private func stridedRow<T>(_: T.Type, _ source: UnsafeRawPointer, _ sourceStride: Int,
                           _ destination: UnsafeMutableRawPointer, _ destinationStride: Int, _ count: Int) {
    let s = source.assumingMemoryBound(to: T.self)
    let d = destination.assumingMemoryBound(to: T.self)
    if destinationStride == 1 {
        if sourceStride == 0 {
            d.update(repeating: s[0], count: count)
            return
        }
        for i in 0..<count { d[i] = s[i &* sourceStride] }
        return
    }
    for i in 0..<count { d[i &* destinationStride] = s[i &* sourceStride] }
}

/// Copies `count` elements of `size` bytes with strides in elements (the source stride
/// may be 0 or negative). Contiguous runs are one memcpy.
@inline(__always)
func copyElements(size: Int, from source: UnsafeRawPointer, stride sourceStride: Int,
                  to destination: UnsafeMutableRawPointer, stride destinationStride: Int, count: Int) {
    guard count > 0 else { return }
    if sourceStride == 1 && destinationStride == 1 {
        destination.copyMemory(from: source, byteCount: count &* size)
        return
    }
    switch size {
    case 1: stridedRow(UInt8.self, source, sourceStride, destination, destinationStride, count)
    case 2: stridedRow(UInt16.self, source, sourceStride, destination, destinationStride, count)
    case 4: stridedRow(UInt32.self, source, sourceStride, destination, destinationStride, count)
    case 8: stridedRow(UInt64.self, source, sourceStride, destination, destinationStride, count)
    default: stridedRow(Word128.self, source, sourceStride, destination, destinationStride, count)
    }
}

/// Writes `count` copies of the element at `value` (of `size` bytes) to `destination`.
@inline(__always)
func fillElements(size: Int, value: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int) {
    copyElements(size: size, from: value, stride: 0, to: destination, stride: 1, count: count)
}

/// The bytes of one element, kept beside a kernel (pad values, fill values).
struct ElementBytes {
    private var storage: (UInt64, UInt64) = (0, 0)

    init() {}

    /// The first element of `tensor` (zero when it has none).
    init(first tensor: Tensor) {
        let bytes = min(16, tensor.elementType.byteCount(elements: 1) ?? 0)
        if tensor.elementCount > 0 {
            withUnsafeMutableBytes(of: &storage) { $0.baseAddress?.copyMemory(from: tensor.rawPointer, byteCount: bytes) }
        }
    }

    /// `value` converted to `type` (floating-point, integer and bool types).
    init(_ value: Double, as type: ElementType) throws {
        func set<T>(_ v: T) { withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v, as: T.self) } }
        func integer<T: FixedWidthInteger>(_: T.Type) {
            set(value.isFinite ? T(clamping: Int64(exactly: value.rounded(.towardZero)) ?? 0) : T(0))
        }
        switch type {
        case .float: set(Float(value))
        case .double: set(value)
        case .float16: set(Float16(value))
        case .bfloat16: set(UInt16(truncatingIfNeeded: Float(value).bitPattern >> 16))
        case .int8: integer(Int8.self)
        case .int16: integer(Int16.self)
        case .int32: integer(Int32.self)
        case .int64: integer(Int64.self)
        case .uint8: integer(UInt8.self)
        case .uint16: integer(UInt16.self)
        case .uint32: integer(UInt32.self)
        case .uint64: set(value >= 0 && value.isFinite ? UInt64(value) : 0)
        case .bool: set(UInt8(value != 0 ? 1 : 0))
        default: throw KernelError.unsupported("a \(type) value")
        }
    }

    func withPointer<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: storage) { try body($0.baseAddress!) }
    }
}

// MARK: - Strided copies

/// Bytes a thread should have at least before a copy is split across threads.
let parallelCopyGrain = 32 * 1024

/// A copy from a strided source to a strided destination:
/// `destination[sum i_k * outStrides[k]] = source[sum i_k * inStrides[k]]` over every
/// index of `dims` (strides in elements; source strides may be 0 or negative). Transpose,
/// Slice, Expand, Tile and DepthToSpace are all one of these.
struct StridedCopy {
    var dims: [Int]
    var inStrides: [Int]
    var outStrides: [Int]

    /// A copy into a contiguous destination of shape `dims`.
    init(dims: [Int], inStrides: [Int]) {
        self.init(dims: dims, inStrides: inStrides, outStrides: contiguousStrides(dims))
    }

    init(dims: [Int], inStrides: [Int], outStrides: [Int]) {
        self.dims = dims
        self.inStrides = inStrides
        self.outStrides = outStrides
        coalesce()
    }

    /// Drops size-1 axes and merges neighbours that are contiguous in both source and
    /// destination, so the innermost axis is as long as it can be.
    private mutating func coalesce() {
        if dims.contains(0) {
            (dims, inStrides, outStrides) = ([0], [1], [1])
            return
        }
        var d: [Int] = [], si: [Int] = [], so: [Int] = []
        for k in dims.indices where dims[k] != 1 {
            if let last = d.indices.last, si[last] == inStrides[k] * dims[k], so[last] == outStrides[k] * dims[k] {
                d[last] *= dims[k]
                si[last] = inStrides[k]
                so[last] = outStrides[k]
            } else {
                d.append(dims[k])
                si.append(inStrides[k])
                so.append(outStrides[k])
            }
        }
        (dims, inStrides, outStrides) = (d, si, so)
    }

    var elementCount: Int { dims.reduce(1, *) }

    /// Runs the copy, in parallel over rows when it is large.
    func run(elementSize size: Int, from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer) {
        let rank = dims.count
        if rank == 0 {
            destination.copyMemory(from: source, byteCount: size)
            return
        }
        if dims[0] == 0 { return }
        // An axis read contiguously but written with a stride while the innermost axis is
        // written contiguously but read with a stride: a transpose, done in tiles.
        if rank >= 2, inStrides[rank - 1] != 1, outStrides[rank - 1] == 1, size <= 8,
           let p = (0..<(rank - 1)).last(where: { inStrides[$0] == 1 }), dims[p] >= 4, dims[rank - 1] >= 4 {
            runTiled(elementSize: size, contiguousInput: p, from: source, to: destination)
            return
        }
        let inner = dims[rank - 1], innerIn = inStrides[rank - 1], innerOut = outStrides[rank - 1]
        let rows = elementCount / inner
        let minimumRows = max(1, parallelCopyGrain / max(1, inner * size))
        if rows == 1 {
            // One long row: split it.
            ThreadPool.parallelFor(inner, minimumPerThread: max(1, parallelCopyGrain / size)) { range in
                copyElements(size: size, from: source + range.lowerBound * innerIn * size, stride: innerIn,
                             to: destination + range.lowerBound * innerOut * size, stride: innerOut, count: range.count)
            }
            return
        }
        let rowDims = plainCopy(dims), rowIn = plainCopy(inStrides), rowOut = plainCopy(outStrides)
        defer { rowDims.deallocate(); rowIn.deallocate(); rowOut.deallocate() }
        ThreadPool.parallelFor(rows, minimumPerThread: minimumRows) { range in
            let index = UnsafeMutablePointer<Int>.allocate(capacity: rank)
            defer { index.deallocate() }
            var rest = range.lowerBound
            var inOffset = 0, outOffset = 0
            for k in stride(from: rank - 2, through: 0, by: -1) {
                index[k] = rest % rowDims[k]
                rest /= rowDims[k]
                inOffset += index[k] * rowIn[k]
                outOffset += index[k] * rowOut[k]
            }
            for _ in range {
                copyElements(size: size, from: source + inOffset * size, stride: innerIn,
                             to: destination + outOffset * size, stride: innerOut, count: inner)
                var k = rank - 2
                while k >= 0 {
                    index[k] += 1
                    inOffset += rowIn[k]
                    outOffset += rowOut[k]
                    if index[k] < rowDims[k] { break }
                    inOffset -= rowIn[k] * rowDims[k]
                    outOffset -= rowOut[k] * rowDims[k]
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }

    /// The transpose case: axis `p` is contiguous in the source, the last axis in the
    /// destination. Tiles of both axes stay in cache, so both sides stream whole lines.
    private func runTiled(elementSize size: Int, contiguousInput p: Int,
                          from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer) {
        let q = dims.count - 1
        let tile = max(8, 64 / size)
        let lengthA = dims[p], lengthB = dims[q]
        let tilesA = (lengthA + tile - 1) / tile, tilesB = (lengthB + tile - 1) / tile
        let batchAxes = (0..<q).filter { $0 != p }
        let batchRank = batchAxes.count
        let batch = batchAxes.reduce(1) { $0 * dims[$1] }
        let batchDims = plainCopy(batchAxes.map { dims[$0] })
        let batchIn = plainCopy(batchAxes.map { inStrides[$0] }), batchOut = plainCopy(batchAxes.map { outStrides[$0] })
        defer { batchDims.deallocate(); batchIn.deallocate(); batchOut.deallocate() }
        let strideBIn = inStrides[q], strideAOut = outStrides[p]
        let items = batch * tilesA * tilesB
        let minimumItems = max(1, parallelCopyGrain / (tile * tile * size))
        ThreadPool.parallelFor(items, minimumPerThread: minimumItems) { range in
            for item in range {
                var rest = item / (tilesA * tilesB)
                let tileIndex = item % (tilesA * tilesB)
                let a0 = (tileIndex / tilesB) * tile, b0 = (tileIndex % tilesB) * tile
                var inOffset = 0, outOffset = 0
                for k in stride(from: batchRank - 1, through: 0, by: -1) {
                    let i = rest % batchDims[k]
                    rest /= batchDims[k]
                    inOffset += i * batchIn[k]
                    outOffset += i * batchOut[k]
                }
                let countA = min(tile, lengthA - a0), countB = min(tile, lengthB - b0)
                let s = source + (inOffset + a0 + b0 * strideBIn) * size
                let d = destination + (outOffset + a0 * strideAOut + b0) * size
                switch size {
                case 1: transposeTile(UInt8.self, s, strideBIn, d, strideAOut, countA, countB)
                case 2: transposeTile(UInt16.self, s, strideBIn, d, strideAOut, countA, countB)
                case 4: transposeTile(UInt32.self, s, strideBIn, d, strideAOut, countA, countB)
                default: transposeTile(UInt64.self, s, strideBIn, d, strideAOut, countA, countB)
                }
            }
        }
    }
}

/// `destination[a * strideAOut + b] = source[a + b * strideBIn]` for a tile of
/// `countA` x `countB` elements.
@inline(__always)
private func transposeTile<T>(_: T.Type, _ source: UnsafeRawPointer, _ strideBIn: Int,
                              _ destination: UnsafeMutableRawPointer, _ strideAOut: Int,
                              _ countA: Int, _ countB: Int) {
    let s = source.assumingMemoryBound(to: T.self)
    let d = destination.assumingMemoryBound(to: T.self)
    var fullA = 0, fullB = 0
    if T.self == UInt32.self {
        // Whole 8x8 blocks of 4-byte elements go through SIMD registers.
        fullA = countA & ~7
        fullB = countB & ~7
        for a0 in stride(from: 0, to: fullA, by: 8) {
            for b0 in stride(from: 0, to: fullB, by: 8) {
                transpose8x8(UnsafeRawPointer(s + (a0 &+ b0 &* strideBIn)), strideBIn,
                             UnsafeMutableRawPointer(d + (a0 &* strideAOut &+ b0)), strideAOut)
            }
        }
        for a in 0..<fullA {
            let row = d + a &* strideAOut
            for b in fullB..<countB { row[b] = s[a &+ b &* strideBIn] }
        }
    }
    for a in fullA..<countA {
        let row = d + a &* strideAOut
        for b in 0..<countB { row[b] = s[a &+ b &* strideBIn] }
    }
}

/// Transposes an 8x8 block of 4-byte elements: `destination[a][b] = source[b][a]` with
/// row strides in elements. Three rounds of even/odd unzips rotate the 6 index bits
/// (row, column) by three, which is exactly the transpose.
@inline(__always)
func transpose8x8(_ source: UnsafeRawPointer, _ sourceRowStride: Int,
                  _ destination: UnsafeMutableRawPointer, _ destinationRowStride: Int) {
    let s = source.assumingMemoryBound(to: UInt32.self)
    let d = destination.assumingMemoryBound(to: UInt32.self)
    var r0 = UnsafeRawPointer(s).loadUnaligned(as: SIMD8<UInt32>.self)
    var r1 = UnsafeRawPointer(s + sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    var r2 = UnsafeRawPointer(s + 2 &* sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    var r3 = UnsafeRawPointer(s + 3 &* sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    var r4 = UnsafeRawPointer(s + 4 &* sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    var r5 = UnsafeRawPointer(s + 5 &* sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    var r6 = UnsafeRawPointer(s + 6 &* sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    var r7 = UnsafeRawPointer(s + 7 &* sourceRowStride).loadUnaligned(as: SIMD8<UInt32>.self)
    for _ in 0..<3 {
        let p0 = SIMD16(lowHalf: r0, highHalf: r1), p1 = SIMD16(lowHalf: r2, highHalf: r3)
        let p2 = SIMD16(lowHalf: r4, highHalf: r5), p3 = SIMD16(lowHalf: r6, highHalf: r7)
        (r0, r4) = (p0.evenHalf, p0.oddHalf)
        (r1, r5) = (p1.evenHalf, p1.oddHalf)
        (r2, r6) = (p2.evenHalf, p2.oddHalf)
        (r3, r7) = (p3.evenHalf, p3.oddHalf)
    }
    UnsafeMutableRawPointer(d).storeBytes(of: r0, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + destinationRowStride).storeBytes(of: r1, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + 2 &* destinationRowStride).storeBytes(of: r2, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + 3 &* destinationRowStride).storeBytes(of: r3, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + 4 &* destinationRowStride).storeBytes(of: r4, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + 5 &* destinationRowStride).storeBytes(of: r5, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + 6 &* destinationRowStride).storeBytes(of: r6, as: SIMD8<UInt32>.self)
    UnsafeMutableRawPointer(d + 7 &* destinationRowStride).storeBytes(of: r7, as: SIMD8<UInt32>.self)
}

/// One piece of every row a Split or Concat moves: `bytes` bytes from
/// `src + r * src_stride` to `dst + r * dst_stride` in row `r` (C's `vernier_row_part`).
typealias RowPart = vernier_row_part

extension RowPart {
    init(from source: UnsafeRawPointer, sourceStride: Int, to destination: UnsafeMutableRawPointer, destinationStride: Int,
         bytes: Int) {
        self.init(src: source, src_stride: sourceStride, dst: destination, dst_stride: destinationStride, bytes: bytes)
    }
}

/// Copies `rows` rows of every part, row by row (each row's parts together, so a
/// Split's source is read once), in parallel over rows. A few long rows are cut into
/// pieces instead, part by part, so both cores get work.
func copyRows(_ parts: [RowPart], rows: Int) {
    let rowBytes = parts.reduce(0) { $0 + $1.bytes }
    guard rows > 0, rowBytes > 0 else { return }
    let threads = ThreadPool.threadCount
    if rows >= threads * 4 || rows * rowBytes < 2 * parallelCopyGrain {
        parts.withUnsafeBufferPointer { table in
            ThreadPool.parallelFor(rows, minimumPerThread: max(1, parallelCopyGrain / rowBytes)) { range in
                vernier_copy_row_parts(table.baseAddress, table.count, range.lowerBound, range.count)
            }
        }
        return
    }
    for part in parts where part.bytes > 0 {
        guard let source = part.src, let destination = part.dst else { continue }
        let pieces = max(1, min(part.bytes / parallelCopyGrain, threads * 4))
        let pieceBytes = (part.bytes + pieces - 1) / pieces
        ThreadPool.parallelFor(rows * pieces) { range in
            for item in range {
                let r = item / pieces, start = (item % pieces) * pieceBytes
                let count = min(pieceBytes, part.bytes - start)
                if count > 0 {
                    (destination + r * part.dst_stride + start).copyMemory(from: source + r * part.src_stride + start, byteCount: count)
                }
            }
        }
    }
}

/// One contiguous copy of `bytes` bytes.
struct CopyJob {
    var source: UnsafeRawPointer
    var destination: UnsafeMutableRawPointer
    var bytes: Int
}

/// Runs independent contiguous copies in one parallel region, long ones cut into pieces
/// of at least `parallelCopyGrain` bytes (Concat and Split of a few large blocks).
func copyBlocks(_ jobs: [CopyJob]) {
    let threads = ThreadPool.threadCount
    var pieces: [CopyJob] = []
    let total = jobs.reduce(0) { $0 + $1.bytes }
    let pieceBytes = max(parallelCopyGrain, total / max(1, threads * 4))
    for job in jobs where job.bytes > 0 {
        var start = 0
        while start < job.bytes {
            let count = min(pieceBytes, job.bytes - start)
            pieces.append(CopyJob(source: job.source + start, destination: job.destination + start, bytes: count))
            start += count
        }
    }
    let table = plainCopy(pieces)
    defer { table.deallocate() }
    ThreadPool.parallelFor(pieces.count, minimumPerThread: max(1, pieces.count * parallelCopyGrain / max(1, total))) { range in
        for i in range { table[i].destination.copyMemory(from: table[i].source, byteCount: table[i].bytes) }
    }
}
