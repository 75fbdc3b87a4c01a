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

    /// Allocates `byteCount` bytes (at least one, so the pointer is always valid), zeroed.
    public init(byteCount: Int) {
        precondition(byteCount >= 0, "negative byte count")
        let size = max(byteCount, 1)
        baseAddress = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.alignment)
        baseAddress.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        self.byteCount = byteCount
    }

    deinit { baseAddress.deallocate() }
}

/// A dense, row-major tensor as the executor sees it: an element type, a shape and a
/// window (`byteOffset`, `byteCount`) into a `TensorBuffer`.
public struct Tensor: @unchecked Sendable {
    public let elementType: ElementType
    public let shape: [Int]
    public let buffer: TensorBuffer
    public let byteOffset: Int

    public var elementCount: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// Bytes this tensor's elements occupy.
    public var byteCount: Int { elementType.byteCount(elements: elementCount) ?? 0 }

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
