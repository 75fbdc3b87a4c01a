#if canImport(Glibc)
import Glibc
#endif
import VernierGraph

/// A block of 64-byte aligned, zero-initialised memory. A class on purpose: its identity
/// is the buffer, so two `Tensor`s that share one `TensorBuffer` share memory (the
/// executor's arena hands out views into one buffer; kernels write into buffers they do
/// not own). There is no copy-on-write: writing through one tensor is seen by every
/// tensor on the same buffer.
public final class TensorBuffer: @unchecked Sendable {
    /// Alignment of every buffer: one cache line, and what AVX-512 loads like best.
    public static let alignment = 64

    public let baseAddress: UnsafeMutableRawPointer
    public let byteCount: Int
    /// The memory map this buffer borrows (weights read in place), or nil when the
    /// buffer owns its memory.
    let mappedFile: MappedFile?
    let mappedOffset: Int
    /// Bytes of the block `baseAddress` starts (rounded up for huge pages).
    private let capacity: Int
    /// Where the block goes when the buffer dies, if not back to the system.
    private let staging: StagingMemory?

    /// Buffers of at least this many bytes sit on 2 MiB boundaries and ask the kernel
    /// for transparent huge pages (`MADV_HUGEPAGE`; Linux's default THP mode is
    /// "madvise"): first touching ResNet-50's 100 MB of weights, their packed copies and
    /// the arena took about 50 000 page faults of 4 KiB. The tail of the last 2 MiB is
    /// allocated too, so the whole buffer can be huge pages (at most a third more).
    static let hugePageThreshold = 4 << 20
    static let hugePage = 2 << 20

    /// Allocates `byteCount` bytes (at least one, so the pointer is always valid), zeroed.
    public convenience init(byteCount: Int) {
        self.init(uninitializedByteCount: byteCount)
        baseAddress.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    /// Allocates `byteCount` bytes without zeroing them, for a caller that writes every
    /// byte before anything reads it (a copy of loaded weights).
    init(uninitializedByteCount byteCount: Int) {
        precondition(byteCount >= 0, "negative byte count")
        (baseAddress, capacity) = Self.allocate(byteCount)
        self.byteCount = byteCount
        mappedFile = nil
        mappedOffset = 0
        staging = nil
    }

    /// Like `init(uninitializedByteCount:)`, in a block of `staging` when one is free;
    /// the block goes back to `staging` when the buffer dies.
    init(uninitializedByteCount byteCount: Int, staging: StagingMemory) {
        precondition(byteCount >= 0, "negative byte count")
        if byteCount >= StagingMemory.minimumBytes {
            (baseAddress, capacity) = staging.take(byteCount: byteCount) ?? Self.allocate(byteCount)
            self.staging = staging
        } else {
            (baseAddress, capacity) = Self.allocate(byteCount)
            self.staging = nil
        }
        self.byteCount = byteCount
        mappedFile = nil
        mappedOffset = 0
    }

    /// Fresh memory for `byteCount` bytes and the size of the block it sits in.
    private static func allocate(_ byteCount: Int) -> (UnsafeMutableRawPointer, Int) {
        var size = max(byteCount, 1)
        if size >= Self.hugePageThreshold {
            size = (size + Self.hugePage - 1) / Self.hugePage * Self.hugePage
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.hugePage)
            #if canImport(Glibc)
            _ = madvise(pointer, size, MADV_HUGEPAGE)
            #endif
            return (pointer, size)
        }
        return (UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.alignment), size)
    }

    /// `byteCount` bytes at `offset` of a read-only memory map, not copied; the file
    /// stays mapped while the buffer lives. Such a buffer must never be written.
    init(mapped file: MappedFile, base: UnsafeRawPointer, offset: Int, byteCount: Int) {
        baseAddress = UnsafeMutableRawPointer(mutating: base + offset)
        self.byteCount = byteCount
        capacity = byteCount
        mappedFile = file
        mappedOffset = offset
        staging = nil
    }

    deinit {
        guard mappedFile == nil else { return }
        if let staging, staging.giveBack(baseAddress, capacity: capacity) { return }
        baseAddress.deallocate()
    }
}

/// The memory order of a tensor's elements.
public enum TensorLayout: Hashable, Sendable, CustomStringConvertible {
    /// Row-major in the logical shape (NCHW for images).
    case plain
    /// 4-D `[N, C, H, W]` stored as `[N, ceil(C/block), H, W, block]` (oneDNN's
    /// `nChw8c` / `nChw16c`): one channel block fills a vector register, the layout
    /// oneDNN's convolutions run fastest in. When C is not a multiple of `block` the last
    /// block is padded (as oneDNN and ONNX Runtime's NCHWc do): the tensor then takes
    /// more bytes than its plain form, and its padding channels hold finite values that
    /// no reader takes for data (convolutions' padded weights are zero).
    case channelBlocked(Int)
    /// `[N, C, spatial...]` stored channels innermost (`[N, spatial..., C]`, NHWC):
    /// the layout oneDNN's int8 convolutions run in, kept between them
    /// (`LayoutPlanner.channelsLastValues`). Same size in bytes as plain.
    case channelsLast

    /// `shape` as stored: a channel-blocked layout rounds C up to whole blocks.
    public func storageShape(_ shape: [Int]) -> [Int] {
        guard case .channelBlocked(let block) = self, shape.count == 4, block > 0, shape[1] % block != 0 else { return shape }
        return [shape[0], (shape[1] + block - 1) / block * block, shape[2], shape[3]]
    }

    /// Whether `channels` fill blocks of `block` well enough to keep a tensor blocked:
    /// the last block at least two-thirds full. More padding than that (e.g. 8 or 3
    /// channels in blocks of 16) costs more bytes than the reorders it saves; 24 channels
    /// become 32, 72 become 80.
    public static func blockFits(channels: Int, block: Int) -> Bool {
        channels > 0 && channelBlocked(block).storageShape([1, channels, 1, 1])[1] * 2 <= channels * 3
    }

    /// Whether a tensor of `shape` has padding channels in this layout.
    public func pads(_ shape: [Int]) -> Bool { storageShape(shape) != shape }

    public var description: String {
        switch self {
        case .plain: return "plain"
        case .channelBlocked(let b): return "nChw\(b)c"
        case .channelsLast: return "channels-last"
        }
    }
}

/// A dense, row-major tensor as the executor sees it: an element type, a shape and a
/// window (`byteOffset`, `byteCount`) into a `TensorBuffer`.
public struct Tensor: @unchecked Sendable {
    public let elementType: ElementType
    public let shape: [Int]
    public let buffer: TensorBuffer
    public let byteOffset: Int
    /// How the elements sit in memory; `shape` is always the logical (NCHW) shape.
    public var layout: TensorLayout = .plain

    public var elementCount: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// Bytes this tensor's elements occupy (with a blocked layout's padding channels).
    public var byteCount: Int { elementType.byteCount(elements: layout.storageShape(shape).reduce(1, *)) ?? 0 }

    /// Start of this tensor's elements (64-byte aligned when `byteOffset` is).
    public var rawPointer: UnsafeMutableRawPointer { buffer.baseAddress + byteOffset }

    /// A zero-filled tensor in a buffer of its own.
    public init(elementType: ElementType = .float, shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        guard let bytes = elementType.byteCount(elements: shape.reduce(1, *)) else {
            preconditionFailure("element type \(elementType) has no fixed size")
        }
        self.elementType = elementType
        self.shape = shape
        self.buffer = TensorBuffer(byteCount: bytes)
        self.byteOffset = 0
    }

    /// A float tensor holding `values` (row-major; `values.count` must match the shape).
    public init(shape: [Int], values: [Float]) {
        self.init(elementType: .float, shape: shape)
        precondition(values.count == elementCount,
                     "\(values.count) values for shape \(shape) (\(elementCount) elements)")
        values.withUnsafeBufferPointer { source in
            guard let base = source.baseAddress else { return }
            rawPointer.copyMemory(from: base, byteCount: values.count * MemoryLayout<Float>.stride)
        }
    }

    /// A view of `shape` at `byteOffset` inside an existing buffer (e.g. an arena).
    public init(elementType: ElementType, shape: [Int], buffer: TensorBuffer, byteOffset: Int) {
        self.elementType = elementType
        self.shape = shape
        self.buffer = buffer
        self.byteOffset = byteOffset
        precondition(byteOffset >= 0 && byteOffset + byteCount <= buffer.byteCount,
                     "view [\(byteOffset), +\(byteCount)) outside a \(buffer.byteCount)-byte buffer")
    }

    /// Typed access to the elements. `T` must have the element type's size.
    public func withUnsafeMutableBufferPointer<T, R>(
        as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R
    ) rethrows -> R {
        precondition(elementType.bitWidth == MemoryLayout<T>.stride * 8,
                     "\(elementType) tensor accessed as \(T.self)")
        let typed = rawPointer.bindMemory(to: T.self, capacity: elementCount)
        return try body(UnsafeMutableBufferPointer(start: typed, count: elementCount))
    }

    /// Read-only typed access to the elements.
    public func withUnsafeBufferPointer<T, R>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R
    ) rethrows -> R {
        try withUnsafeMutableBufferPointer(as: type) { try body(UnsafeBufferPointer($0)) }
    }

    /// The elements copied into an array (tests, debugging).
    public func scalars<T>(as type: T.Type) -> [T] {
        withUnsafeBufferPointer(as: type) { Array($0) }
    }
}

extension Tensor {
    /// The same elements seen with another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(elementType: elementType, shape: newShape, buffer: buffer, byteOffset: byteOffset)
    }

    /// A copy of an ONNX tensor's elements (initializers, constants, test data).
    /// Strings are not tensors here: `nil` for them, and for element types without a
    /// fixed size. A copy made while a plan is compiled takes its memory from `staging`.
    public init?(_ data: TensorData) { self.init(data, staging: nil) }

    init?(_ data: TensorData, staging: StagingMemory?) {
        guard let bits = data.elementType.bitWidth else { return nil }
        if case .strings = data.storage { return nil }
        // Weights mapped from the file are read in place when aligned for their type.
        if case .mapped(let file, let offset, let length) = data.storage, let base = file.bytes.baseAddress,
           let count = data.elementType.byteCount(elements: data.elementCount), count <= length,
           (Int(bitPattern: base) + offset) % max(1, bits / 8) == 0 {
            self.init(elementType: data.elementType, shape: data.dims,
                      buffer: TensorBuffer(mapped: file, base: base, offset: offset, byteCount: count), byteOffset: 0)
            return
        }
        guard let size = data.elementType.byteCount(elements: data.elementCount) else { return nil }
        let buffer = staging.map { TensorBuffer(uninitializedByteCount: size, staging: $0) }
            ?? TensorBuffer(uninitializedByteCount: size)
        self.init(elementType: data.elementType, shape: data.dims, buffer: buffer, byteOffset: 0)
        let count = byteCount
        let destination = rawPointer
        // Misaligned mapped weights are read from the file, not through the map (see
        // `MappedFile.copyBytes`): 4 ms less copying for ResNet-50's 83 MB of them.
        if case .mapped(let file, let offset, let length) = data.storage, count <= length {
            guard file.copyBytes(offset: offset, length: count, into: destination) else { return nil }
            return
        }
        let copied: Bool = data.withUnsafeBytes { source in
            guard source.count >= count else { return false }
            if count > 0, let base = source.baseAddress { destination.copyMemory(from: base, byteCount: count) }
            return true
        }
        guard copied else { return nil }
        // The aligned copy replaces the mapped bytes, which need not stay resident.
        data.releaseResidentPages()
    }

    /// A tensor holding `values` of a scalar type matching `elementType`'s size.
    public init<T>(_ elementType: ElementType, shape: [Int], values: [T]) {
        self.init(elementType: elementType, shape: shape)
        precondition(values.count == elementCount && MemoryLayout<T>.stride * 8 == (elementType.bitWidth ?? 0),
                     "\(values.count) \(T.self) values for a \(elementType) tensor of shape \(shape)")
        values.withUnsafeBytes { source in
            guard let base = source.baseAddress else { return }
            rawPointer.copyMemory(from: base, byteCount: source.count)
        }
    }

    /// Drops the resident pages of weights read in place from the file (a kernel that
    /// copied them into its own layout no longer needs them resident); no-op otherwise.
    public func releaseResidentPages() {
        guard let file = buffer.mappedFile else { return }
        file.releasePages(offset: buffer.mappedOffset + byteOffset, length: byteCount)
    }

    /// A new tensor with a copy of this one's elements (in a buffer of its own).
    public func copy() -> Tensor {
        let storage = Tensor(elementType: elementType, shape: layout.storageShape(shape))
        var result = Tensor(elementType: elementType, shape: shape, buffer: storage.buffer, byteOffset: 0)
        result.layout = layout
        if byteCount > 0 { result.rawPointer.copyMemory(from: rawPointer, byteCount: byteCount) }
        return result
    }

    /// Integer elements (any integer type or bool) widened to Int, e.g. shape and axes
    /// inputs; nil for floating-point tensors.
    public func integers() -> [Int]? {
        switch elementType {
        case .int64: return scalars(as: Int64.self).map { Int($0) }
        case .int32: return scalars(as: Int32.self).map { Int($0) }
        case .int16: return scalars(as: Int16.self).map { Int($0) }
        case .int8: return scalars(as: Int8.self).map { Int($0) }
        case .uint64: return scalars(as: UInt64.self).map { Int(truncatingIfNeeded: $0) }
        case .uint32: return scalars(as: UInt32.self).map { Int($0) }
        case .uint16: return scalars(as: UInt16.self).map { Int($0) }
        case .uint8, .bool: return scalars(as: UInt8.self).map { Int($0) }
        default: return nil
        }
    }

    /// Elements as Double (any numeric type), for tests and scalar attributes-as-inputs.
    public func doubles() -> [Double]? {
        switch elementType {
        case .float: return scalars(as: Float.self).map { Double($0) }
        case .double: return scalars(as: Double.self)
        case .float16: return scalars(as: Float16.self).map { Double($0) }
        case .bfloat16: return scalars(as: UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
        default: return integers()?.map { Double($0) }
        }
    }
}
