import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

/// One windowed-pool case: input shape and the ONNX attributes.
struct PoolCase: CustomTestStringConvertible, Sendable {
    var shape: [Int]
    var kernel: [Int]
    var strides: [Int]? = nil
    var pads: [Int]? = nil
    var dilations: [Int]? = nil
    var autoPad = "NOTSET"
    var ceil = false
    var testDescription: String {
        "x\(shape) k\(kernel) s\(strides ?? []) p\(pads ?? []) d\(dilations ?? []) \(autoPad)\(ceil ? " ceil" : "")"
    }

    var attributes: [String: AttributeValue] {
        var a: [String: AttributeValue] = ["kernel_shape": .ints(kernel), "auto_pad": .string(autoPad), "ceil_mode": .int(ceil ? 1 : 0)]
        if let strides { a["strides"] = .ints(strides) }
        if let pads { a["pads"] = .ints(pads) }
        if let dilations { a["dilations"] = .ints(dilations) }
        return a
    }

    var window: PoolWindow {
        get throws { try PoolWindow(kernel: kernel, strides: strides, dilations: dilations, pads: pads, autoPad: autoPad, ceilMode: ceil) }
    }
}

let poolCases: [PoolCase] = [
    PoolCase(shape: [1, 3, 17, 23], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
    PoolCase(shape: [2, 5, 16, 16], kernel: [2, 2], strides: [2, 2]),
    PoolCase(shape: [1, 4, 13, 29], kernel: [3, 3], pads: [1, 1, 1, 1]),
    PoolCase(shape: [1, 2, 19, 21], kernel: [5, 3], strides: [1, 2], pads: [2, 0, 1, 1], dilations: [2, 1]),
    PoolCase(shape: [1, 3, 15, 15], kernel: [3, 3], strides: [2, 2], ceil: true),
    PoolCase(shape: [1, 3, 14, 18], kernel: [3, 2], strides: [3, 3], pads: [0, 1, 2, 1], ceil: true),
    PoolCase(shape: [2, 2, 11, 9], kernel: [3, 3], strides: [2, 2], autoPad: "SAME_UPPER"),
    PoolCase(shape: [1, 3, 10, 12], kernel: [4, 4], strides: [2, 3], autoPad: "SAME_LOWER"),
    PoolCase(shape: [1, 1, 9, 40], kernel: [2, 3], strides: [1, 1], dilations: [3, 2], autoPad: "VALID"),
    PoolCase(shape: [1, 2, 7, 7], kernel: [7, 7]),
    // 1-D and 3-D take the generic path.
    PoolCase(shape: [2, 3, 31], kernel: [4], strides: [3], pads: [1, 2]),
    PoolCase(shape: [1, 2, 7, 6, 9], kernel: [3, 2, 3], strides: [2, 1, 2], pads: [1, 0, 1, 1, 1, 0], dilations: [1, 2, 1]),
]

struct PoolKernelTests {
    @Test(arguments: poolCases)
    func maxPoolMatchesReference(_ c: PoolCase) throws {
        var rng = SeededGenerator(seed: UInt64(c.shape.reduce(7, *)))
        let x = PoolNormHarness.random(c.shape, &rng)
        let got = try PoolNormHarness.run("MaxPool", [x], c.attributes)[0]
        let want = try ReferenceKernels.pool(x, window: try c.window, kind: .max).values
        #expect(got.shape == want.shape)
        #expect(PoolNormHarness.error(got, want) == 0)
    }

    @Test(arguments: poolCases)
    func averagePoolMatchesReference(_ c: PoolCase) throws {
        var rng = SeededGenerator(seed: UInt64(c.shape.reduce(11, *)))
        let x = PoolNormHarness.random(c.shape, &rng)
        for include in [false, true] {
            var attributes = c.attributes
            attributes["count_include_pad"] = .int(include ? 1 : 0)
            let got = try PoolNormHarness.run("AveragePool", [x], attributes)[0]
            let want = try ReferenceKernels.pool(x, window: try c.window, kind: .average(countIncludePad: include)).values
            #expect(got.shape == want.shape)
            #expect(PoolNormHarness.error(got, want) <= 1e-5, "count_include_pad \(include)")
        }
    }

    @Test(arguments: poolCases)
    func lpPoolAndIndicesMatchReference(_ c: PoolCase) throws {
        var rng = SeededGenerator(seed: UInt64(c.shape.reduce(13, *)))
        let x = PoolNormHarness.random(c.shape, &rng)
        var attributes = c.attributes
        attributes["p"] = .int(3)
        let lp = try PoolNormHarness.run("LpPool", [x], attributes)[0]
        #expect(PoolNormHarness.error(lp, try ReferenceKernels.pool(x, window: try c.window, kind: .lp(p: 3)).values) <= 1e-5)
        let outputs = try PoolNormHarness.run("MaxPool", [x], c.attributes, outputs: 2)
        let want = try ReferenceKernels.pool(x, window: try c.window, kind: .max)
        #expect(PoolNormHarness.error(outputs[0], want.values) == 0)
        #expect(outputs[1].scalars(as: Int64.self).map { Int($0) } == want.indices)
    }

    @Test func maxPoolOfAKnownInput() throws {
        // 4x4 ramp, 2x2 windows, stride 2: the bottom-right corner of each window.
        let x = Tensor(shape: [1, 1, 4, 4], values: (0..<16).map(Float.init))
        let out = try PoolNormHarness.run("MaxPool", [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])], outputs: 2)
        #expect(out[0].scalars(as: Float.self) == [5, 7, 13, 15])
        #expect(out[1].scalars(as: Int64.self) == [5, 7, 13, 15])
        // Column-major indices: element (h, w) is h + w·H.
        let columnMajor = try PoolNormHarness.run("MaxPool", [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]),
                                                                  "storage_order": .int(1)], outputs: 2)
        #expect(columnMajor[1].scalars(as: Int64.self) == [5, 13, 7, 15])
    }

    @Test func averagePoolDividesByPadOnlyWhenAsked() throws {
        // 2x2 of ones, 2x2 window, pad 1 on the top and left: the corner window sees one element.
        let x = Tensor(shape: [1, 1, 2, 2], values: [1, 1, 1, 1])
        let attributes: [String: AttributeValue] = ["kernel_shape": .ints([2, 2]), "pads": .ints([1, 1, 0, 0])]
        let excluded = try PoolNormHarness.run("AveragePool", [x], attributes)[0]
        #expect(excluded.scalars(as: Float.self) == [1, 1, 1, 1])
        var including = attributes
        including["count_include_pad"] = .int(1)
        let included = try PoolNormHarness.run("AveragePool", [x], including)[0]
        #expect(included.scalars(as: Float.self) == [0.25, 0.5, 0.5, 1])
    }

    @Test func uint8MaxPoolAgreesWithFloat() throws {
        var rng = SeededGenerator(seed: 8)
        let bytes = (0..<(2 * 3 * 9 * 11)).map { _ in rng.byte() }
        let x8 = Tensor(.uint8, shape: [2, 3, 9, 11], values: bytes)
        let xf = Tensor(shape: [2, 3, 9, 11], values: bytes.map(Float.init))
        let attributes: [String: AttributeValue] = ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]
        let got = try PoolNormHarness.run("MaxPool", [x8], attributes)[0]
        let want = try PoolNormHarness.run("MaxPool", [xf], attributes)[0]
        #expect(got.elementType == .uint8)
        #expect(got.scalars(as: UInt8.self).map(Float.init) == want.scalars(as: Float.self))
    }

    @Test func globalPoolsMatchReference() throws {
        var rng = SeededGenerator(seed: 21)
        for shape in [[2, 5, 7, 9], [1, 3, 13], [1, 4, 3, 5, 2]] {
            let x = PoolNormHarness.random(shape, &rng)
            for (op, kind) in [("GlobalAveragePool", PoolKind.average(countIncludePad: false)), ("GlobalMaxPool", .max),
                               ("GlobalLpPool", .lp(p: 2))] {
                let got = try PoolNormHarness.run(op, [x])[0]
                #expect(PoolNormHarness.error(got, ReferenceKernels.globalPool(x, kind: kind)) <= 1e-5, "\(op) \(shape)")
            }
        }
    }

    /// A global pool over a channels-last map (NHWC in memory, as int8 convolutions leave
    /// their maps) gives the reference's [N, C, 1, 1]; an Lp pool of one is refused.
    @Test func globalPoolsReadChannelsLastMaps() throws {
        var rng = SeededGenerator(seed: 22)
        let (n, c, h, w) = (2, 37, 5, 6)
        let x = PoolNormHarness.random([n, c, h, w], &rng)
        let v = x.scalars(as: Float.self)
        var nhwc = [Float](repeating: 0, count: v.count)
        for i in 0..<n { for ch in 0..<c { for p in 0..<(h * w) { nhwc[(i * h * w + p) * c + ch] = v[(i * c + ch) * h * w + p] } } }
        var stored = Tensor(shape: [n, c, h, w], values: nhwc)
        stored.layout = .channelsLast
        for kind in [PoolKind.average(countIncludePad: false), .max] {
            let outputs = OutputSlots(count: 1, maxBytes: 1 << 20)
            try GlobalPoolKernel(kind: kind).run([stored], outputs)
            let got = try #require(outputs.results[0])
            #expect(got.shape == [n, c, 1, 1] && got.layout == .plain)
            #expect(PoolNormHarness.error(got, ReferenceKernels.globalPool(x, kind: kind)) <= 1e-5, "\(kind)")
        }
        #expect(throws: KernelError.self) { try GlobalPoolKernel(kind: .lp(p: 2)).run([stored], OutputSlots(count: 1, maxBytes: 1 << 20)) }
    }

    @Test func badWindowsThrowInvalid() throws {
        let x = Tensor(shape: [1, 1, 4, 4])
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("MaxPool", [x], ["kernel_shape": .ints([5, 5])])
        }
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("AveragePool", [Tensor(shape: [1, 1, 4])], ["kernel_shape": .ints([2, 2])])
        }
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("MaxPool", [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([0, 1])])
        }
    }

    /// Not a speed test: prints GB/s (input read + output written) at 1 and 2 threads.
    @Test func poolThroughputIsReported() throws {
        var rng = SeededGenerator(seed: 112)
        let x = PoolNormHarness.random([1, 64, 112, 112], &rng)
        let attributes: [String: AttributeValue] = ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]
        let bytes = x.byteCount + 64 * 56 * 56 * 4
        _ = try PoolNormHarness.throughput("MaxPool 3x3/s2 p1 [1,64,112,112]", bytes: bytes,
                                           try PoolNormHarness.prepared("MaxPool", [x], attributes))
        let twoByTwo: [String: AttributeValue] = ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]
        _ = try PoolNormHarness.throughput("MaxPool 2x2/s2 [1,64,112,112]", bytes: bytes,
                                           try PoolNormHarness.prepared("MaxPool", [x], twoByTwo))
        _ = try PoolNormHarness.throughput("AveragePool 3x3/s2 p1 [1,64,112,112]", bytes: bytes,
                                           try PoolNormHarness.prepared("AveragePool", [x], attributes))
        let big = PoolNormHarness.random([1, 256, 56, 56], &rng)
        _ = try PoolNormHarness.throughput("GlobalAveragePool [1,256,56,56]", bytes: big.byteCount,
                                           try PoolNormHarness.prepared("GlobalAveragePool", [big]))
    }
}
