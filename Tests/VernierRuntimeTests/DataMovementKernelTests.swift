import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

/// Runs one node's kernel directly: `op` with `attributes` at `opset`, on `inputs`.
private func runNode(_ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue] = [:],
             opset: Int = 18, outputs outputCount: Int = 1) throws -> [Tensor] {
    let node = Node(name: op, opType: op, inputs: inputs.enumerated().map { $1 == nil ? "" : "in\($0)" },
                    outputs: (0..<outputCount).map { "out\($0)" },
                    attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
    guard let factory = KernelRegistry.factory(for: node) else { throw KernelError.unsupported("no kernel for \(op)") }
    let context = KernelContext(node: node, opset: opset, inputTypes: [], outputTypes: [], constantInputs: [],
                                compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") })
    let kernel = try factory(context)
    let slots = OutputSlots(count: outputCount, maxBytes: 1 << 32)
    try kernel.run(inputs, slots)
    return try slots.results.map { try #require($0) }
}

private func int64Tensor(_ values: [Int], _ shape: [Int]? = nil) -> Tensor {
    Tensor(.int64, shape: shape ?? [values.count], values: values.map { Int64($0) })
}

private func int32Tensor(_ values: [Int], _ shape: [Int]? = nil) -> Tensor {
    Tensor(.int32, shape: shape ?? [values.count], values: values.map { Int32($0) })
}

/// A float tensor whose element i holds i (so a wrong move shows as a wrong value).
private func iotaTensor(_ shape: [Int]) -> Tensor {
    Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { Float($0) })
}

/// `x`'s values (small whole numbers) re-typed as `type`, to run byte-moving kernels on
/// every element size.
private func retyped(_ x: Tensor, _ type: ElementType) -> Tensor {
    let v = x.scalars(as: Float.self)
    switch type {
    case .uint8, .bool, .int8: return Tensor(type, shape: x.shape, values: v.map { UInt8(Int($0) & 0xFF) })
    case .float16: return Tensor(type, shape: x.shape, values: v.map { Float16($0) })
    case .int32: return Tensor(type, shape: x.shape, values: v.map { Int32($0) })
    case .int64: return Tensor(type, shape: x.shape, values: v.map { Int64($0) })
    case .double: return Tensor(type, shape: x.shape, values: v.map { Double($0) })
    default: return x
    }
}

private func sameBytes(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && a.elementType == b.elementType && memcmp(a.rawPointer, b.rawPointer, a.byteCount) == 0
}

@Suite struct DataMovementKernelTests {
    static let elementTypes: [ElementType] = [.float, .uint8, .float16, .int64, .double]

    // MARK: Transpose, Slice, Expand, Tile, DepthToSpace (strided copies)

    @Test(arguments: [
        ([3, 5, 7], [2, 0, 1]), ([3, 5, 7], [1, 2, 0]), ([3, 5, 7], [0, 2, 1]), ([2, 17, 33], [0, 2, 1]),
        ([1, 13, 9, 11], [0, 2, 3, 1]), ([67, 37], [1, 0]), ([2, 3, 1, 5, 4], [4, 1, 3, 0, 2]), ([9], [0]),
        ([40, 24, 19], [2, 0, 1]),
    ])
    func transposeMatchesReferenceForEveryElementSize(_ shape: [Int], _ perm: [Int]) throws {
        let x = iotaTensor(shape)
        let expected = ReferenceKernels.transpose(x, perm: perm)
        for type in Self.elementTypes {
            let y = try runNode("Transpose", [retyped(x, type)], ["perm": .ints(perm)])[0]
            #expect(sameBytes(y, retyped(expected, type)), "\(type) \(shape) perm \(perm)")
        }
    }

    @Test func transposeDefaultPermReversesAxes() throws {
        let y = try runNode("Transpose", [iotaTensor([2, 3])])[0]
        #expect(y.shape == [3, 2])
        #expect(y.scalars(as: Float.self) == [0, 3, 1, 4, 2, 5])
    }

    @Test func largeTransposeGivesTheSameResultOnOneAndTwoThreads() throws {
        var rng = SeededGenerator(seed: 7)
        let x = randomTensor([3, 61, 130], using: &rng)
        let before = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(before) }
        ThreadPool.setThreadCount(1)
        let one = try runNode("Transpose", [x], ["perm": .ints([0, 2, 1])])[0]
        ThreadPool.setThreadCount(2)
        let two = try runNode("Transpose", [x], ["perm": .ints([0, 2, 1])])[0]
        #expect(sameBytes(one, two))
        #expect(sameBytes(one, ReferenceKernels.transpose(x, perm: [0, 2, 1])))
    }

    /// Python slice semantics, written independently of the kernel's arithmetic.
    static func pythonSlice(_ d: Int, _ start: Int, _ end: Int, _ step: Int) -> [Int] {
        var picked: [Int] = []
        let s0 = start < 0 ? start + d : start, e0 = end < 0 ? end + d : end
        var i = step > 0 ? max(s0, 0) : min(s0, d - 1)
        while step > 0 ? (i < min(e0, d)) : (i > max(e0, -1)) {
            picked.append(i)
            let (next, overflow) = i.addingReportingOverflow(step)
            if overflow { break }
            i = next
        }
        return picked
    }

    @Test func sliceMatchesReferenceOnRandomBoundsAndSteps() throws {
        var rng = SeededGenerator(seed: 11)
        for trial in 0..<60 {
            let shape = (0..<rng.within(1...4)).map { _ in rng.within(1...9) }
            let x = iotaTensor(shape)
            var starts: [Int] = [], ends: [Int] = [], steps: [Int] = [], axes: [Int] = []
            var firsts = Array(repeating: 0, count: shape.count), strides = Array(repeating: 1, count: shape.count)
            var counts = shape
            for axis in 0..<shape.count where rng.below(3) > 0 {
                let d = shape[axis]
                var step = rng.within(1...3) * (rng.below(2) == 0 ? 1 : -1)
                if rng.below(8) == 0 { step = step > 0 ? Int(Int64.max) : Int(Int64.min) }
                var start = rng.within(-d - 3...d + 3), end = rng.within(-d - 3...d + 3)
                if rng.below(6) == 0 { end = step > 0 ? Int(Int64.max) : Int(Int64.min) }
                if rng.below(6) == 0 { start = step > 0 ? Int(Int64.min) : Int(Int64.max) }
                let picked = Self.pythonSlice(d, start, end, step)
                counts[axis] = picked.count
                firsts[axis] = picked.first ?? 0
                strides[axis] = picked.count > 1 ? step : 1
                starts.append(start); ends.append(end); steps.append(step)
                axes.append(rng.below(2) == 0 ? axis : axis - shape.count)
            }
            let expected = ReferenceKernels.slice(x, starts: firsts, steps: strides, counts: counts)
            let make = trial % 2 == 0 ? int64Tensor : int32Tensor
            let fitsInt32 = (starts + ends + steps).allSatisfy { Int32(exactly: $0) != nil }
            let y = try runNode("Slice", [x, (fitsInt32 ? make : int64Tensor)(starts, nil), int64Tensor(ends, nil),
                                          make(axes, nil), int64Tensor(steps, nil)])[0]
            #expect(sameBytes(y, expected), "shape \(shape) starts \(starts) ends \(ends) axes \(axes) steps \(steps)")
        }
    }

    @Test func sliceBeforeOpset10ReadsAttributes() throws {
        let y = try runNode("Slice", [iotaTensor([3, 4])], ["starts": .ints([1, 0]), "ends": .ints([3, -1])], opset: 9)[0]
        #expect(y.shape == [2, 3])
        #expect(y.scalars(as: Float.self) == [4, 5, 6, 8, 9, 10])
    }

    @Test func sliceNegativeStepReversesAnAxis() throws {
        let y = try runNode("Slice", [iotaTensor([2, 5]), int64Tensor([-1]), int64Tensor([Int(Int64.min)]),
                                      int64Tensor([1]), int64Tensor([-2])])[0]
        #expect(y.scalars(as: Float.self) == [4, 2, 0, 9, 7, 5])
    }

    @Test(arguments: [([3, 1, 5], [2, 3, 4, 5]), ([1], [7]), ([4, 1], [4, 9]), ([1, 3, 1], [1, 3, 8]), ([2, 3], [1, 1])])
    func expandMatchesReference(_ shape: [Int], _ target: [Int]) throws {
        let x = iotaTensor(shape)
        let y = try runNode("Expand", [x, int64Tensor(target)])[0]
        let out = try #require(ReferenceKernels.broadcast(shape, target))
        #expect(sameBytes(y, ReferenceKernels.expand(x, to: out)))
    }

    @Test func expandRejectsShapesThatDoNotBroadcast() {
        #expect(throws: KernelError.self) { try runNode("Expand", [iotaTensor([3]), int64Tensor([4])]) }
    }

    @Test(arguments: [([2, 3], [2, 2]), ([3, 1, 5], [1, 4, 2]), ([7], [3]), ([2, 2, 3], [1, 1, 1])])
    func tileMatchesReference(_ shape: [Int], _ repeats: [Int]) throws {
        let x = iotaTensor(shape)
        for type in [ElementType.float, .uint8, .int64] {
            let y = try runNode("Tile", [retyped(x, type), int64Tensor(repeats)])[0]
            #expect(sameBytes(y, retyped(ReferenceKernels.tile(x, repeats: repeats), type)))
        }
    }

    @Test(arguments: ["DCR", "CRD"])
    func depthToSpaceMatchesReferenceAndSpaceToDepthUndoesDCR(_ mode: String) throws {
        let x = iotaTensor([2, 12, 3, 5])
        let y = try runNode("DepthToSpace", [x], ["blocksize": .int(2), "mode": .string(mode)])[0]
        #expect(sameBytes(y, ReferenceKernels.depthToSpace(x, blocksize: 2, mode: mode)))
        if mode == "DCR" {
            let back = try runNode("SpaceToDepth", [y], ["blocksize": .int(2)])[0]
            #expect(sameBytes(back, x))
        }
    }

    // MARK: Concat, Split, Compress

    @Test func concatMatchesReferenceOnEveryAxisAndSplitUndoesIt() throws {
        var rng = SeededGenerator(seed: 3)
        for rank in 1...4 {
            for axis in 0..<rank {
                let base = (0..<rank).map { _ in rng.within(1...6) }
                let parts = (0..<3).map { i -> Tensor in
                    var s = base
                    s[axis] = i == 1 ? 0 : rng.within(1...5)
                    return randomTensor(s, using: &rng)
                }
                let y = try runNode("Concat", parts, ["axis": .int(axis - (axis % 2) * rank)])[0]
                #expect(sameBytes(y, ReferenceKernels.concat(parts, axis: axis)))
                let sizes = parts.map { $0.shape[axis] }
                let pieces = try runNode("Split", [y, int64Tensor(sizes)], ["axis": .int(axis)], outputs: 3)
                for (piece, part) in zip(pieces, parts) { #expect(sameBytes(piece, part)) }
            }
        }
    }

    @Test func concatOfLargeTensorsUsesBothThreadsAndStaysExact() throws {
        var rng = SeededGenerator(seed: 5)
        let parts = (0..<3).map { _ in randomTensor([1, 8, 40, 41], using: &rng) }
        let before = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(before) }
        ThreadPool.setThreadCount(2)
        for axis in [1, 3] {
            let y = try runNode("Concat", parts, ["axis": .int(axis)])[0]
            #expect(sameBytes(y, ReferenceKernels.concat(parts, axis: axis)))
        }
    }

    /// Row copies of every length from 1 to 200 bytes, around a whole 64-byte vector and
    /// across 1 KiB (the short-row path's limit), at odd offsets and strides, on one and
    /// two threads: each row lands whole and not a byte beside the rows changes.
    @Test(arguments: [1, 2])
    func rowCopiesMoveExactlyTheirRows(threads: Int) {
        let before = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(before) }
        ThreadPool.setThreadCount(threads)
        var rng = SeededGenerator(seed: 17)
        let lengths = Array(1...200) + [511, 1023, 1024, 1025, 3000]
        for rowBytes in lengths {
            let rows = rng.within(1...40), gap = rng.within(0...9)
            let sourceStride = rowBytes + rng.within(0...70), destinationStride = rowBytes + gap
            let source = (0..<(rows * sourceStride + 3)).map { _ in UInt8(rng.within(0...255)) }
            var destination = [UInt8](repeating: 0xA5, count: rows * destinationStride + 5)
            source.withUnsafeBytes { s in
                destination.withUnsafeMutableBytes { d in
                    copyRows([RowPart(from: s.baseAddress! + 3, sourceStride: sourceStride, to: d.baseAddress! + 1,
                                      destinationStride: destinationStride, bytes: rowBytes)], rows: rows)
                }
            }
            var expected = [UInt8](repeating: 0xA5, count: destination.count)
            for r in 0..<rows {
                for b in 0..<rowBytes { expected[1 + r * destinationStride + b] = source[3 + r * sourceStride + b] }
            }
            #expect(destination == expected, "rows of \(rowBytes) bytes, \(rows) rows")
        }
    }

    @Test func splitForms() throws {
        let x = iotaTensor([7, 2])
        // Opset 18 num_outputs: the last part is smaller.
        let parts = try runNode("Split", [x], ["num_outputs": .int(3)], opset: 18, outputs: 3)
        #expect(parts.map(\.shape) == [[3, 2], [3, 2], [1, 2]])
        #expect(parts[2].scalars(as: Float.self) == [12, 13])
        // Opset 11 split attribute.
        let old = try runNode("Split", [x], ["split": .ints([2, 5])], opset: 11, outputs: 2)
        #expect(old.map(\.shape) == [[2, 2], [5, 2]])
        #expect(throws: KernelError.self) { try runNode("Split", [x, int64Tensor([2, 2])], [:], opset: 13, outputs: 2) }
    }

    @Test func compressWithAndWithoutAxis() throws {
        let x = iotaTensor([3, 2])
        let condition = Tensor(.bool, shape: [3], values: [UInt8(0), 1, 1])
        let rows = try runNode("Compress", [x, condition], ["axis": .int(0)])[0]
        #expect(rows.shape == [2, 2])
        #expect(rows.scalars(as: Float.self) == [2, 3, 4, 5])
        let flat = try runNode("Compress", [x, condition])[0]
        #expect(flat.scalars(as: Float.self) == [1, 2])
    }

    // MARK: Views

    @Test func reshapeResolvesZeroAndMinusOneAndIsAView() throws {
        let x = iotaTensor([2, 3, 4])
        let y = try runNode("Reshape", [x, int64Tensor([0, -1])])[0]
        #expect(y.shape == [2, 12])
        #expect(y.buffer === x.buffer)
        let z = try runNode("Reshape", [Tensor(shape: [0, 3]), int64Tensor([3, 0])], ["allowzero": .int(1)])[0]
        #expect(z.shape == [3, 0])
        #expect(throws: KernelError.self) { try runNode("Reshape", [x, int64Tensor([5, -1])]) }
        #expect(throws: KernelError.self) { try runNode("Reshape", [x, int64Tensor([-1, -1])]) }
    }

    @Test func squeezeUnsqueezeAndFlattenReshapeOnly() throws {
        let x = iotaTensor([1, 3, 1, 2])
        #expect(try runNode("Squeeze", [x])[0].shape == [3, 2])
        #expect(try runNode("Squeeze", [x, int64Tensor([-2])])[0].shape == [1, 3, 2])
        #expect(try runNode("Squeeze", [x], ["axes": .ints([0])], opset: 11)[0].shape == [3, 1, 2])
        #expect(throws: KernelError.self) { try runNode("Squeeze", [x, int64Tensor([1])]) }
        #expect(try runNode("Unsqueeze", [x, int64Tensor([-1, 0])])[0].shape == [1, 1, 3, 1, 2, 1])
        #expect(try runNode("Unsqueeze", [x], ["axes": .ints([2])], opset: 11)[0].shape == [1, 3, 1, 1, 2])
        #expect(try runNode("Flatten", [x], ["axis": .int(-1)])[0].shape == [3, 2])
        #expect(try runNode("Flatten", [x], ["axis": .int(0)])[0].shape == [1, 6])
    }

    // MARK: Pad

    @Test(arguments: ["constant", "reflect", "edge", "wrap"])
    func padMatchesReference(_ mode: String) throws {
        let x = iotaTensor([3, 4, 5])
        let pads = mode == "constant" ? [1, 0, -1, 2, 3, 1] : [2, 0, 1, 1, 3, 4]
        let expected = ReferenceKernels.pad(x, pads: pads, mode: mode, value: 7.5)
        let y = try runNode("Pad", [x, int64Tensor(pads), Tensor(shape: [], values: [7.5])], ["mode": .string(mode)])[0]
        #expect(sameBytes(y, expected))
        let legacy = try runNode("Pad", [x], ["mode": .string(mode), "pads": .ints(pads), "value": .float(7.5)], opset: 2)[0]
        #expect(sameBytes(legacy, expected))
        if mode != "constant" {
            let bytes = try runNode("Pad", [retyped(x, .uint8), int64Tensor(pads)], ["mode": .string(mode)])[0]
            #expect(sameBytes(bytes, retyped(expected, .uint8)))
        }
    }

    @Test func reflectPadHandComputed() throws {
        let y = try runNode("Pad", [iotaTensor([3]), int64Tensor([2, 2])], ["mode": .string("reflect")])[0]
        #expect(y.scalars(as: Float.self) == [2, 1, 0, 1, 2, 1, 0])
    }

    @Test func padAxesInputPadsOnlyThoseAxes() throws {
        let y = try runNode("Pad", [iotaTensor([2, 2]), int64Tensor([1, 0]), nil, int64Tensor([-1])])[0]
        #expect(y.shape == [2, 3])
        #expect(y.scalars(as: Float.self) == [0, 0, 1, 0, 2, 3])
    }

    // MARK: Gather and scatter

    @Test func gatherMatchesReference() throws {
        var rng = SeededGenerator(seed: 9)
        let x = randomTensor([4, 5, 3], using: &rng)
        for axis in 0..<3 {
            let d = x.shape[axis]
            let indices = (0..<6).map { _ in rng.within(-d...(d - 1)) }
            let expected = ReferenceKernels.gather(x, indices: indices, indexShape: [2, 3], axis: axis)
            for make in [int64Tensor, int32Tensor] {
                let y = try runNode("Gather", [x, make(indices, [2, 3])], ["axis": .int(axis)])[0]
                #expect(sameBytes(y, expected), "axis \(axis)")
            }
        }
        #expect(throws: KernelError.self) { try runNode("Gather", [x, int64Tensor([4])]) }
        #expect(throws: KernelError.self) { try runNode("Gather", [x, int64Tensor([-5])]) }
    }

    @Test func gatherElementsAndScatterElementsHandComputed() throws {
        let data = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let g = try runNode("GatherElements", [data, int64Tensor([0, 0, 1, 0], [2, 2])], ["axis": .int(1)])[0]
        #expect(g.scalars(as: Float.self) == [1, 1, 4, 3])
        let updates = Tensor(shape: [1, 2], values: [10, 20])
        let s = try runNode("ScatterElements", [data, int64Tensor([1, -1], [1, 2]), updates], ["axis": .int(1)])[0]
        #expect(s.scalars(as: Float.self) == [1, 20, 3, 4])
        let added = try runNode("ScatterElements", [data, int64Tensor([1, 1], [1, 2]), updates],
                                ["axis": .int(1), "reduction": .string("add")])[0]
        #expect(added.scalars(as: Float.self) == [1, 32, 3, 4])
        #expect(data.scalars(as: Float.self) == [1, 2, 3, 4], "the input is not written")
        #expect(throws: KernelError.self) { try runNode("GatherElements", [data, int64Tensor([2], [1, 1])]) }
    }

    @Test func gatherNDWithBatchDimsAndScatterNDReductions() throws {
        let data = iotaTensor([2, 2, 2])
        let g = try runNode("GatherND", [data, int64Tensor([1, 0], [2, 1])], ["batch_dims": .int(1)])[0]
        #expect(g.shape == [2, 2])
        #expect(g.scalars(as: Float.self) == [2, 3, 4, 5])
        let updates = Tensor(shape: [2, 2], values: [10, 20, 30, 40])
        let s = try runNode("ScatterND", [data, int64Tensor([1, 1, 0, 0], [2, 2]), updates], ["reduction": .string("mul")])[0]
        #expect(s.scalars(as: Float.self) == [0, 40, 2, 3, 4, 5, 60, 140])
        let ints = Tensor(.int32, shape: [3], values: [Int32(5), 6, 7])
        let m = try runNode("ScatterND", [ints, int64Tensor([2, 2], [2, 1]), Tensor(.int32, shape: [2], values: [Int32(1), 9])],
                            ["reduction": .string("max")])[0]
        #expect(m.scalars(as: Int32.self) == [5, 6, 9])
    }

    // MARK: Resize

    @Test(arguments: [
        ([2, 3, 9, 7], [2, 3, 17, 12], "half_pixel"), ([1, 2, 8, 8], [1, 2, 16, 16], "align_corners"),
        ([1, 1, 9, 10], [1, 1, 4, 3], "asymmetric"), ([3, 5, 6], [4, 9, 6], "half_pixel"), ([5, 4, 3], [2, 7, 3], "align_corners"),
        // Rows of whole and partial 16-lane steps with both edges clamped (the AVX-512
        // row kernel), the OCR detector's 2x upsample, and one-pixel rows (the generic loop).
        ([1, 3, 5, 7], [1, 3, 10, 37], "half_pixel"), ([1, 2, 80, 80], [1, 2, 160, 160], "half_pixel"),
        ([1, 2, 3, 2], [1, 2, 5, 5], "asymmetric"), ([1, 1, 4, 1], [1, 1, 8, 3], "half_pixel"),
    ])
    func linearResizeMatchesReference(_ shape: [Int], _ outShape: [Int], _ coordinates: String) throws {
        var rng = SeededGenerator(seed: 21)
        let x = randomTensor(shape, using: &rng)
        let y = try runNode("Resize", [x, nil, nil, int64Tensor(outShape)],
                            ["mode": .string("linear"), "coordinate_transformation_mode": .string(coordinates)])[0]
        let expected = ReferenceKernels.resize(x, to: outShape, mode: "linear", coordinates: coordinates)
        #expect(y.shape == outShape)
        #expect(relativeError(y, expected) < tolerance)
    }

    @Test func nearestResizeMatchesReferenceForBytes() throws {
        let x = iotaTensor([2, 3, 5, 4])
        let expected = ReferenceKernels.resize(x, to: [2, 3, 11, 7], mode: "nearest", coordinates: "asymmetric")
        let y = try runNode("Resize", [retyped(x, .int64), nil, nil, int64Tensor([2, 3, 11, 7])],
                            ["coordinate_transformation_mode": .string("asymmetric")])[0]
        #expect(sameBytes(y, retyped(expected, .int64)))
    }

    @Test func bilinearUpsampleByTwoHandComputed() throws {
        let x = Tensor(shape: [1, 1, 2, 2], values: [0, 4, 8, 12])
        let y = try runNode("Resize", [x, nil, Tensor(shape: [4], values: [1, 1, 2, 2])], ["mode": .string("linear")])[0]
        #expect(y.shape == [1, 1, 4, 4])
        #expect(y.scalars(as: Float.self) == [0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12])
    }

    /// Scales given at run time that give no representable size, and antialiasing by a
    /// vanishing scale, are kernel errors, not traps or billion-tap filters.
    @Test func resizeScalesThatGiveNoSizeAreErrors() throws {
        let x = Tensor(shape: [1, 1, 2, 2], values: [0, 4, 8, 12])
        for scale: Float in [3e38, .infinity, .nan, -1] {
            #expect(throws: KernelError.self, "scale \(scale)") {
                try runNode("Resize", [x, nil, Tensor(shape: [4], values: [1, 1, scale, 1])], ["mode": .string("linear")])
            }
        }
        #expect(throws: KernelError.self) {
            try runNode("Resize", [x, nil, Tensor(shape: [4], values: [1, 1, 1e-30, 1])],
                        ["mode": .string("linear"), "antialias": .int(1)])
        }
        #expect(throws: KernelError.self) {
            try runNode("Range", [Tensor(shape: [], values: [0]), Tensor(shape: [], values: [3e38]), Tensor(shape: [], values: [1e-30])])
        }
    }

    @Test func upsampleOpset7UsesTheScalesAttribute() throws {
        let y = try runNode("Upsample", [iotaTensor([1, 1, 2, 2])], ["scales": .floats([1, 1, 2, 3])], opset: 7)[0]
        #expect(y.shape == [1, 1, 4, 6])
        #expect(y.scalars(as: Float.self).prefix(6) == [0, 0, 0, 1, 1, 1])
    }

    // MARK: ShapeOps

    @Test func shapeOpsHandComputed() throws {
        let x = iotaTensor([2, 3, 4])
        #expect(try runNode("Shape", [x], ["start": .int(-2)])[0].integers() == [3, 4])
        #expect(try runNode("Size", [x])[0].integers() == [24])
        let c = try runNode("ConstantOfShape", [int64Tensor([2, 2])])[0]
        #expect(c.elementType == .float && c.scalars(as: Float.self) == [0, 0, 0, 0])
        let r = try runNode("Range", [Tensor(.int32, shape: [], values: [Int32(10)]), Tensor(.int32, shape: [], values: [Int32(3)]),
                                      Tensor(.int32, shape: [], values: [Int32(-3)])])[0]
        #expect(r.integers() == [10, 7, 4])
        let f = try runNode("Range", [Tensor(shape: [], values: [1]), Tensor(shape: [], values: [2]), Tensor(shape: [], values: [0.25])])[0]
        #expect(f.scalars(as: Float.self) == [1, 1.25, 1.5, 1.75])
        let eye = try runNode("EyeLike", [iotaTensor([2, 3])], ["k": .int(1), "dtype": .int(ElementType.int32.rawValue)])[0]
        #expect(eye.integers() == [0, 1, 0, 0, 0, 1])
        let hot = try runNode("OneHot", [int64Tensor([1, -1, 5]), int64Tensor([3], []), Tensor(shape: [2], values: [0, 9])])[0]
        #expect(hot.shape == [3, 3])
        #expect(hot.scalars(as: Float.self) == [0, 9, 0, 0, 0, 9, 0, 0, 0])
        let nz = try runNode("NonZero", [Tensor(shape: [2, 2], values: [0, -0.0, 3, 1])])[0]
        #expect(nz.shape == [2, 2])
        #expect(nz.integers() == [1, 1, 0, 1])
        let k = try runNode("Constant", [], ["value_ints": .ints([4, 5])])[0]
        #expect(k.elementType == .int64 && k.integers() == [4, 5])
        let kf = try runNode("Constant", [], ["value_float": .float(1.75)])[0]
        #expect(kf.shape == [] && kf.scalars(as: Float.self) == [1.75])
        #expect(throws: KernelError.self) { try runNode("Constant", [], ["value_string": .string("a")]) }
    }

    // MARK: Throughput (run with VERNIER_BENCH=1)

    /// A node's kernel made once with its outputs in preallocated memory (as the arena
    /// gives them), so timing sees the kernel and not allocation.
    static func prepared(_ op: String, _ inputs: [Tensor?], _ attributes: [String: AttributeValue]) throws -> () throws -> Void {
        let results = try runNode(op, inputs, attributes)
        let node = Node(name: op, opType: op, inputs: inputs.enumerated().map { $1 == nil ? "" : "in\($0)" }, outputs: ["out0"],
                        attributes: attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) })
        let factory = try #require(KernelRegistry.factory(for: node))
        let kernel = try factory(
            KernelContext(node: node, opset: 18, inputTypes: [], outputTypes: [], constantInputs: [],
                          compileSubgraph: { _ in throw KernelError.unsupported("subgraphs") }))
        let slots = OutputSlots(count: 1, maxBytes: 1 << 32)
        let buffer = TensorBuffer(byteCount: results[0].byteCount)
        slots.slots[0] = OutputSlots.Slot(buffer: buffer, offset: 0, capacity: buffer.byteCount)
        return { try kernel.run(inputs, slots) }
    }

    static func gigabytesPerSecond(bytes: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var best = Double.infinity
        for _ in 0..<7 {
            let start = DispatchTime.now().uptimeNanoseconds
            let repeats = 20
            for _ in 0..<repeats { try body() }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / Double(repeats))
        }
        return Double(bytes) / best
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["VERNIER_BENCH"] != nil))
    func throughput() throws {
        var rng = SeededGenerator(seed: 1)
        let before = ThreadPool.threadCount
        defer { ThreadPool.setThreadCount(before) }
        let a = randomTensor([1, 64, 56, 56], using: &rng), b = randomTensor([64, 128, 64], using: &rng)
        let parts = (0..<4).map { _ in randomTensor([1, 64, 56, 56], using: &rng) }
        let image = randomTensor([1, 64, 80, 80], using: &rng)
        // Bytes moved: read once plus written once.
        let cases: [(String, Int, () throws -> Void)] = [
            ("Transpose [1,64,56,56] (0,2,3,1)", 2 * a.byteCount, try Self.prepared("Transpose", [a], ["perm": .ints([0, 2, 3, 1])])),
            ("Transpose [64,128,64] (0,2,1)", 2 * b.byteCount, try Self.prepared("Transpose", [b], ["perm": .ints([0, 2, 1])])),
            ("Concat 4x[1,64,56,56] axis 1", 8 * a.byteCount, try Self.prepared("Concat", parts, ["axis": .int(1)])),
            ("Resize bilinear [1,64,80,80] x2", 5 * image.byteCount,
             try Self.prepared("Resize", [image, nil, Tensor(shape: [4], values: [1, 1, 2, 2])], ["mode": .string("linear")])),
        ]
        for (name, bytes, body) in cases {
            var line = name
            for threads in [1, 2] {
                ThreadPool.setThreadCount(threads)
                line += String(format: "  %d thread(s): %.1f GB/s", threads, try Self.gigabytesPerSecond(bytes: bytes, body))
            }
            print(line)
        }
    }
}
