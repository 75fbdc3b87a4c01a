import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

@Suite struct TensorTests {
    @Test func zeroFilledAndAligned() {
        let t = Tensor(shape: [3, 5, 7])
        #expect(t.elementType == .float)
        #expect(t.elementCount == 105)
        #expect(t.byteCount == 420)
        #expect(Int(bitPattern: t.rawPointer) % 64 == 0)
        #expect(t.scalars(as: Float.self).allSatisfy { $0 == 0 })
    }

    /// Large buffers sit on 2 MiB boundaries (for huge pages) and are zeroed all the
    /// same; a large copy of loaded weights holds exactly their bytes.
    @Test func largeBuffersAreHugePageAlignedAndZeroed() throws {
        let t = Tensor(shape: [3, 1000, 1001])
        #expect(t.byteCount >= TensorBuffer.hugePageThreshold)
        #expect(Int(bitPattern: t.rawPointer) % TensorBuffer.hugePage == 0)
        #expect(t.scalars(as: Float.self).allSatisfy { $0 == 0 })
        let values = (0..<(1 << 20)).map { Float($0 % 1000) - 500 }
        let copy = try #require(Tensor(TensorData(floats: values, name: "w", dims: [1 << 20])))
        #expect(Int(bitPattern: copy.rawPointer) % TensorBuffer.hugePage == 0)
        #expect(copy.scalars(as: Float.self) == values)
    }

    /// Weights mapped from a file: read in place when aligned for their type, copied
    /// (read from the file) when not; a range past the file's end loads nothing.
    @Test func mappedWeightsInPlaceOrCopied() throws {
        let values = (0..<3000).map { Float($0) * 0.5 - 7 }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vernier-mapped-\(getpid()).bin").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // The same floats at byte 4 (aligned) and at byte 12 005 (misaligned).
        let floats = values.withUnsafeBufferPointer { Data(buffer: $0) }
        try (Data(count: 4) + floats + Data(count: 1) + floats).write(to: URL(fileURLWithPath: path))
        let file = try MappedFile(path: path)
        func load(at offset: Int, length: Int = 12_000) -> Tensor? {
            Tensor(TensorData(name: "w", elementType: .float, dims: [3000], storage: .mapped(file, offset: offset, length: length)))
        }
        let aligned = try #require(load(at: 4))
        #expect(aligned.buffer.mappedFile != nil)
        #expect(aligned.scalars(as: Float.self) == values)
        let copied = try #require(load(at: 12_005))
        #expect(copied.buffer.mappedFile == nil)
        #expect(Int(bitPattern: copied.rawPointer) % TensorBuffer.alignment == 0)
        #expect(copied.scalars(as: Float.self) == values)
        #expect(load(at: 12_009, length: 12_000) == nil)
        #expect(load(at: 12_005, length: 11_996) == nil)
    }

    /// Copies made while a plan is compiled reuse the blocks of copies already dropped
    /// (no fresh pages to fault in), only blocks at most twice their size, and every
    /// byte of a reused block is the new copy's.
    @Test func stagingReusesDroppedBlocks() throws {
        let staging = StagingMemory()
        let size = StagingMemory.minimumBytes * 4
        func copy(_ count: Int, fill: UInt8) -> Tensor? {
            Tensor(TensorData(name: "w", elementType: .uint8, dims: [count], storage: .bytes([UInt8](repeating: fill, count: count))),
                   staging: staging)
        }
        var first = try #require(copy(size, fill: 1))
        let block = first.rawPointer
        first = try #require(copy(16, fill: 0))  // the first copy dies; its block is free
        #expect(staging.freeBytes >= size)
        var reused = try #require(copy(size - 4096, fill: 7))
        #expect(reused.rawPointer == block)
        #expect(reused.scalars(as: UInt8.self).allSatisfy { $0 == 7 })
        #expect(staging.freeBytes == 0)
        // A block over twice the copy's size is left for a larger one.
        reused = try #require(copy(16, fill: 0))
        let small = try #require(copy(size / 2 - 1, fill: 3))
        #expect(small.rawPointer != block)
        #expect(staging.freeBytes >= size)
        // Closed: the free blocks are released, and a dropped copy goes back to the
        // system, not to the staging blocks.
        staging.close()
        #expect(staging.freeBytes == 0)
        var late: Tensor? = try #require(copy(size, fill: 5))
        late = nil
        #expect(late == nil && staging.freeBytes == 0)
        _ = (first, reused, small)
    }

    /// Dropped blocks are kept up to `keptBytesLimit`, the oldest let go first.
    @Test func stagingKeepsAtMostItsLimit() throws {
        let staging = StagingMemory()
        let size = StagingMemory.keptBytesLimit * 3 / 8
        do {
            // Three copies, dropped at the end of this scope.
            let copies = try (0..<3).map { _ in try #require(Tensor(TensorData(name: "w", elementType: .uint8, dims: [size],
                                                                              storage: .bytes([UInt8](repeating: 1, count: size))),
                                                                   staging: staging)) }
            #expect(copies.count == 3 && staging.freeBytes == 0)
        }
        // 3 x 6 MiB dropped, 16 MiB kept at most: the oldest block went.
        #expect(staging.freeBytes == 2 * size)
        staging.close()
    }

    @Test func valuesRoundTripAndBufferIsShared() {
        let t = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        #expect(t.scalars(as: Float.self) == [1, 2, 3, 4])
        let alias = t  // same buffer: identity, not a copy
        alias.withUnsafeMutableBufferPointer(as: Float.self) { $0[3] = 9 }
        #expect(t.scalars(as: Float.self) == [1, 2, 3, 9])
        #expect(alias.buffer === t.buffer)
    }

    @Test func viewIntoBuffer() {
        let buffer = TensorBuffer(byteCount: 256)
        let view = Tensor(elementType: .float, shape: [4], buffer: buffer, byteOffset: 64)
        view.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 5 }
        #expect(buffer.baseAddress.load(fromByteOffset: 64, as: Float.self) == 5)
    }

    @Test func emptyShape() {
        let t = Tensor(shape: [0, 4])
        #expect(t.elementCount == 0)
        #expect(t.scalars(as: Float.self).isEmpty)
    }
}

@Suite struct ReferenceKernelTests {
    @Test func convByHand() {
        // 1x1x3x3 input, 1x1x2x2 ones kernel, bias 1: each output = window sum + 1.
        let x = Tensor(shape: [1, 1, 3, 3], values: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let w = Tensor(shape: [1, 1, 2, 2], values: [1, 1, 1, 1])
        let b = Tensor(shape: [1], values: [1])
        let y = ReferenceKernels.conv(input: x, weights: w, bias: b, geometry: ConvGeometry())
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.scalars(as: Float.self) == [13, 17, 25, 29])
        // Pad 1, stride 2: corners only see one 2x2 quarter of the padded input.
        let z = ReferenceKernels.conv(input: x, weights: w, geometry: ConvGeometry(strides: [2, 2], pads: [1, 1, 1, 1]))
        #expect(z.shape == [1, 1, 2, 2])
        #expect(z.scalars(as: Float.self) == [1, 5, 11, 28])
    }

    @Test func matMulByHandAndBroadcast() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], values: [7, 8, 9, 10, 11, 12])
        #expect(ReferenceKernels.matMul(a, b).scalars(as: Float.self) == [58, 64, 139, 154])
        let batched = Tensor(shape: [2, 2, 3], values: [1, 2, 3, 4, 5, 6, 0, 0, 0, 1, 1, 1])
        let y = ReferenceKernels.matMul(batched, b)
        #expect(y.shape == [2, 2, 2])
        #expect(y.scalars(as: Float.self) == [58, 64, 139, 154, 0, 0, 27, 30])
        #expect(ReferenceKernels.matMulShape([3], [3, 2]) == [2])
        #expect(ReferenceKernels.matMulShape([4, 1, 2, 3], [5, 3, 6]) == [4, 5, 2, 6])
        #expect(ReferenceKernels.matMulShape([2, 3], [4, 2]) == nil)
    }
}
