import Foundation
import Testing
import VernierGraph
@testable import VernierRuntime

struct NormalizationKernelTests {
    @Test func vectorExpIsAccurate() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let lanes = (0..<16).map { x + Float($0) * 0.0013 }
            let v = NormMath.exp(SIMD8<Float>(lanes[0..<8]))
            if x <= 0 {
                #expect(NormMath.exp16(SIMD16<Float>(lanes.map { Swift.min($0, 0) }))
                        == SIMD16(lowHalf: NormMath.exp(SIMD8<Float>(lanes[0..<8].map { Swift.min($0, 0) })),
                                  highHalf: NormMath.exp(SIMD8<Float>(lanes[8...].map { Swift.min($0, 0) }))))
            }
            for i in 0..<8 {
                let exact = Foundation.exp(Double(x + Float(i) * 0.0013))
                worst = max(worst, Float(Swift.abs(Double(v[i]) - exact) / exact))
            }
            x += 0.0137
        }
        #expect(worst < 1e-6, "worst relative error \(worst)")
        let edges = NormMath.exp(SIMD8<Float>(-.infinity, -100, -87.5, 0, 1, 88, 88.3, -0.0))
        #expect(edges[0] == 0 && edges[1] == 0 && edges[3] == 1 && edges[7] == 1)
        #expect(edges[6].isFinite && edges[6] > 1e38)
        let negative = NormMath.exp16(SIMD16<Float>(-.infinity, -1e30, -100, -87.5, -87.3, -20, -1, -0.5,
                                                    -0.0, 0, -3, -4, -5, -6, -7, -8))
        #expect(negative[0] == 0 && negative[1] == 0 && negative[2] == 0 && negative[3] == 0 && negative[9] == 1)
        #expect(Swift.abs(Double(negative[4]) - exp(-87.3)) / exp(-87.3) < 1e-5)
    }

    @Test(arguments: [[2, 3, 7, 5], [1, 16, 9, 9], [3, 4], [2, 5, 33]])
    func batchNormMatchesReference(_ shape: [Int]) throws {
        var rng = SeededGenerator(seed: UInt64(shape.reduce(3, *)))
        let c = shape[1]
        let x = PoolNormHarness.random(shape, &rng, scale: 3)
        let scale = PoolNormHarness.random([c], &rng), bias = PoolNormHarness.random([c], &rng)
        let mean = PoolNormHarness.random([c], &rng)
        let variance = Tensor(shape: [c], values: (0..<c).map { _ in Float.random(in: 0.1..<2, using: &rng) })
        let want = ReferenceKernels.batchNorm(x, scale: scale.scalars(as: Float.self), bias: bias.scalars(as: Float.self),
                                              mean: mean.scalars(as: Float.self), variance: variance.scalars(as: Float.self))
        let got = try PoolNormHarness.run("BatchNormalization", [x, scale, bias, mean, variance], opset: 15)[0]
        #expect(PoolNormHarness.error(got, want) <= 1e-5)
        let copy = x.copy()
        let inPlace = try PoolNormHarness.run("BatchNormalization", [copy, scale, bias, mean, variance], opset: 15, inPlace: true)[0]
        #expect(inPlace.buffer === copy.buffer)
        #expect(PoolNormHarness.error(inPlace, want) <= 1e-5)
    }

    /// With a fused Relu: the reference's values clipped at 0, a NaN kept (as Relu does).
    @Test(arguments: [[2, 5, 33], [1, 16, 9, 9], [3, 4]])
    func batchNormWithAFusedReluMatchesReference(_ shape: [Int]) throws {
        var rng = SeededGenerator(seed: UInt64(shape.reduce(7, *)))
        let c = shape[1]
        var values = PoolNormHarness.random(shape, &rng, scale: 3).scalars(as: Float.self)
        values[values.count / 2] = .nan
        let x = Tensor(shape: shape, values: values)
        let scale = PoolNormHarness.random([c], &rng), bias = PoolNormHarness.random([c], &rng)
        let mean = PoolNormHarness.random([c], &rng)
        let variance = Tensor(shape: [c], values: (0..<c).map { _ in Float.random(in: 0.1..<2, using: &rng) })
        let normalized = ReferenceKernels.batchNorm(x, scale: scale.scalars(as: Float.self), bias: bias.scalars(as: Float.self),
                                                    mean: mean.scalars(as: Float.self), variance: variance.scalars(as: Float.self))
        let want = Tensor(shape: shape, values: normalized.scalars(as: Float.self).map { $0 < 0 ? 0 : $0 })
        let got = try PoolNormHarness.run("BatchNormalization", [x, scale, bias, mean, variance],
                                          ["fused_activation": .string("Relu")], opset: 15)[0]
        let gotValues = got.scalars(as: Float.self)
        #expect(gotValues[values.count / 2].isNaN)
        #expect(gotValues.contains(0) && gotValues.allSatisfy { $0.isNaN || $0 >= 0 })
        var finite = gotValues
        finite[values.count / 2] = 0
        var wanted = want.scalars(as: Float.self)
        wanted[values.count / 2] = 0
        #expect(PoolNormHarness.error(Tensor(shape: shape, values: finite), Tensor(shape: shape, values: wanted)) <= 1e-5)
    }

    @Test(arguments: [([4, 37], -1), ([3, 5, 37], -1), ([2, 3, 4, 5], 1), ([6, 768], 1), ([1, 17], 0)])
    func layerNormMatchesReference(_ shape: [Int], _ axis: Int) throws {
        var rng = SeededGenerator(seed: UInt64(shape.reduce(5, *)))
        let a = axis < 0 ? axis + shape.count : axis
        let rowShape = Array(shape[a...])
        let x = PoolNormHarness.random(shape, &rng, scale: 4)
        // An offset mean checks the two-pass variance.
        let shifted = Tensor(shape: shape, values: x.scalars(as: Float.self).map { $0 + 100 })
        let scale = PoolNormHarness.random(rowShape, &rng), bias = PoolNormHarness.random(rowShape, &rng)
        let want = ReferenceKernels.layerNorm(shifted, axis: a, scale: scale.scalars(as: Float.self), bias: bias.scalars(as: Float.self))
        let out = try PoolNormHarness.run("LayerNormalization", [shifted, scale, bias], ["axis": .int(axis)], outputs: 3)
        #expect(PoolNormHarness.error(out[0], want.y) <= 2e-4)
        let rows = want.mean.count
        #expect(out[1].shape == Array(shape[..<a]) + Array(repeating: 1, count: shape.count - a))
        #expect(PoolNormHarness.error(out[1], Tensor(shape: out[1].shape, values: want.mean)) <= 1e-5)
        #expect(PoolNormHarness.error(out[2], Tensor(shape: out[2].shape, values: want.invStd)) <= 1e-3)
        #expect(out[1].elementCount == rows)
        // In place, no bias.
        let copy = shifted.copy()
        let noBias = ReferenceKernels.layerNorm(shifted, axis: a, scale: scale.scalars(as: Float.self), bias: nil)
        let inPlace = try PoolNormHarness.run("LayerNormalization", [copy, scale], ["axis": .int(axis)], inPlace: true)[0]
        #expect(inPlace.buffer === copy.buffer)
        #expect(PoolNormHarness.error(inPlace, noBias.y) <= 2e-4)
        // RMSNormalization (opset 23).
        let rms = ReferenceKernels.layerNorm(x, axis: a, scale: scale.scalars(as: Float.self), bias: nil, rms: true)
        let gotRms = try PoolNormHarness.run("RMSNormalization", [x, scale], ["axis": .int(axis)], opset: 23)[0]
        #expect(PoolNormHarness.error(gotRms, rms.y) <= 1e-5)
    }

    @Test func layerNormBroadcastsAScaleOfOnes() throws {
        var rng = SeededGenerator(seed: 9)
        let x = PoolNormHarness.random([2, 3, 4], &rng)
        let scale = Tensor(shape: [1, 4], values: [2, 2, 2, 2])
        let want = ReferenceKernels.layerNorm(x, axis: 1, scale: Array(repeating: 2, count: 12), bias: nil)
        let got = try PoolNormHarness.run("LayerNormalization", [x, scale], ["axis": .int(1)])[0]
        #expect(PoolNormHarness.error(got, want.y) <= 1e-5)
    }

    @Test(arguments: [([2, 6, 5, 7], 3), ([1, 8, 33], 8), ([3, 4, 2, 2], 1)])
    func groupAndInstanceNormMatchReference(_ shape: [Int], _ groups: Int) throws {
        var rng = SeededGenerator(seed: UInt64(shape.reduce(groups, *)))
        let c = shape[1]
        let x = PoolNormHarness.random(shape, &rng, scale: 2)
        let scale = PoolNormHarness.random([c], &rng), bias = PoolNormHarness.random([c], &rng)
        let want = ReferenceKernels.groupNorm(x, groups: groups, scale: scale.scalars(as: Float.self), bias: bias.scalars(as: Float.self))
        let got = try PoolNormHarness.run("GroupNormalization", [x, scale, bias], ["num_groups": .int(groups)], opset: 21)[0]
        #expect(PoolNormHarness.error(got, want) <= 1e-5)
        // Opset 18: one scale and bias per group.
        let groupScale = PoolNormHarness.random([groups], &rng), groupBias = PoolNormHarness.random([groups], &rng)
        let perChannel = { (t: Tensor) in (0..<c).map { t.scalars(as: Float.self)[$0 / (c / groups)] } }
        let want18 = ReferenceKernels.groupNorm(x, groups: groups, scale: perChannel(groupScale), bias: perChannel(groupBias))
        let got18 = try PoolNormHarness.run("GroupNormalization", [x, groupScale, groupBias], ["num_groups": .int(groups)], opset: 18)[0]
        #expect(PoolNormHarness.error(got18, want18) <= 1e-5)
        let instance = ReferenceKernels.groupNorm(x, groups: c, scale: scale.scalars(as: Float.self), bias: bias.scalars(as: Float.self))
        let gotInstance = try PoolNormHarness.run("InstanceNormalization", [x, scale, bias])[0]
        #expect(PoolNormHarness.error(gotInstance, instance) <= 1e-5)
    }

    @Test(arguments: [([3, 37], -1), ([2, 5, 19], 1), ([4, 3, 2, 11], 0), ([2, 3, 130], 2), ([7, 1], -1)])
    func softmaxFamilyMatchesReference(_ shape: [Int], _ axis: Int) throws {
        var rng = SeededGenerator(seed: UInt64(shape.reduce(axis + 10, *)))
        let x = PoolNormHarness.random(shape, &rng, scale: 20)
        for (op, form) in [("Softmax", ReferenceKernels.SoftmaxForm.softmax), ("LogSoftmax", .logSoftmax), ("Hardmax", .hardmax)] {
            let want = ReferenceKernels.softmax(x, axis: axis, form: form)
            let got = try PoolNormHarness.run(op, [x], ["axis": .int(axis)], opset: 13)[0]
            #expect(PoolNormHarness.error(got, want) <= 1e-5, "\(op)")
            let copy = x.copy()
            let inPlace = try PoolNormHarness.run(op, [copy], ["axis": .int(axis)], opset: 13, inPlace: true)[0]
            #expect(inPlace.buffer === copy.buffer)
            #expect(PoolNormHarness.error(inPlace, want) <= 1e-5, "\(op) in place")
        }
    }

    @Test func softmaxBeforeOpset13NormalizesTheFlattenedTail() throws {
        var rng = SeededGenerator(seed: 12)
        let x = PoolNormHarness.random([2, 3, 4], &rng, scale: 5)
        for (op, form) in [("Softmax", ReferenceKernels.SoftmaxForm.softmax), ("LogSoftmax", .logSoftmax), ("Hardmax", .hardmax)] {
            let want = ReferenceKernels.softmax(x.reshaped([2, 12]), axis: 1, form: form).reshaped([2, 3, 4])
            let got = try PoolNormHarness.run(op, [x], ["axis": .int(1)], opset: 11)[0]
            #expect(PoolNormHarness.error(got, want) <= 1e-5, "\(op)")
            // From opset 13 the same axis means dim 1 only: a different answer.
            let single = try PoolNormHarness.run(op, [x], ["axis": .int(1)], opset: 13)[0]
            #expect(PoolNormHarness.error(single, want) > 1e-3, "\(op)")
        }
    }

    @Test func softmaxOfHugeLogitsIsStable() throws {
        let x = Tensor(shape: [1, 3], values: [1000, 1001, 1002])
        let y = try PoolNormHarness.run("Softmax", [x], [:], opset: 13)[0].scalars(as: Float.self)
        let e = [exp(-2.0), exp(-1.0), 1.0], s = e.reduce(0, +)
        for i in 0..<3 { #expect(Swift.abs(Double(y[i]) - e[i] / s) < 1e-6) }
        let hard = try PoolNormHarness.run("Hardmax", [Tensor(shape: [1, 4], values: [3, 7, 7, 1])], [:], opset: 13)[0]
        #expect(hard.scalars(as: Float.self) == [0, 1, 0, 0])
    }

    @Test func lrnAndLpNormalizationMatchHandResults() throws {
        var rng = SeededGenerator(seed: 31)
        let x = PoolNormHarness.random([2, 7, 3, 3], &rng)
        let got = try PoolNormHarness.run("LRN", [x], ["size": .int(3), "alpha": .float(0.01), "beta": .float(0.6), "bias": .float(2)])[0]
        #expect(PoolNormHarness.error(got, ReferenceKernels.lrn(x, size: 3, alpha: Double(Float(0.01)), beta: Double(Float(0.6)), bias: 2)) <= 1e-5)
        let v = Tensor(shape: [2, 2], values: [3, 4, 0, 0])
        #expect(try PoolNormHarness.run("LpNormalization", [v], ["axis": .int(1)])[0].scalars(as: Float.self) == [0.6, 0.8, 0, 0])
        #expect(try PoolNormHarness.run("LpNormalization", [v], ["axis": .int(1), "p": .int(1)])[0].scalars(as: Float.self)
                    == [3 / 7, 4 / 7, 0, 0])
        let mvn = try PoolNormHarness.run("MeanVarianceNormalization", [Tensor(shape: [1, 1, 1, 4], values: [1, 2, 3, 4])])[0]
        let sd = Float(1.25).squareRoot()
        for (g, w) in zip(mvn.scalars(as: Float.self), [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd]) { #expect(Swift.abs(g - w) < 1e-5) }
    }

    @Test func doubleInputsTakeTheGenericPath() throws {
        let x = Tensor(.double, shape: [1, 3], values: [1.0, 2.0, 3.0])
        let y = try PoolNormHarness.run("Softmax", [x], [:], opset: 13)[0]
        #expect(y.elementType == .double)
        let e = [exp(1.0), exp(2.0), exp(3.0)], s = e.reduce(0, +)
        for (g, w) in zip(y.scalars(as: Double.self), e.map { $0 / s }) { #expect(Swift.abs(g - w) < 1e-12) }
    }

    @Test func mismatchedParametersThrowInvalid() throws {
        let x = Tensor(shape: [1, 4, 2, 2])
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("BatchNormalization", [x, Tensor(shape: [3]), Tensor(shape: [4]), Tensor(shape: [4]), Tensor(shape: [4])])
        }
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("GroupNormalization", [x, Tensor(shape: [4]), Tensor(shape: [4])], ["num_groups": .int(3)], opset: 21)
        }
        #expect(throws: KernelError.self) {
            _ = try PoolNormHarness.run("Softmax", [x], ["axis": .int(4)], opset: 13)
        }
    }

    /// Not a speed test: prints GB/s (input read + output written) at 1 and 2 threads.
    @Test func normalizationThroughputIsReported() throws {
        var rng = SeededGenerator(seed: 768)
        let x = PoolNormHarness.random([128, 768], &rng)
        let scale = PoolNormHarness.random([768], &rng), bias = PoolNormHarness.random([768], &rng)
        _ = try PoolNormHarness.throughput("LayerNormalization [128,768]", bytes: 2 * x.byteCount,
                                           try PoolNormHarness.prepared("LayerNormalization", [x, scale, bias]))
        let logits = PoolNormHarness.random([12, 128, 128], &rng, scale: 8)
        _ = try PoolNormHarness.throughput("Softmax [12,128,128] last axis", bytes: 2 * logits.byteCount,
                                           try PoolNormHarness.prepared("Softmax", [logits], [:], opset: 13))
        let image = PoolNormHarness.random([1, 64, 112, 112], &rng)
        let c = PoolNormHarness.random([64], &rng), variance = Tensor(shape: [64], values: Array(repeating: 1, count: 64))
        _ = try PoolNormHarness.throughput("BatchNormalization [1,64,112,112]", bytes: 2 * image.byteCount,
                                           try PoolNormHarness.prepared("BatchNormalization", [image, c, c, c, variance], opset: 15))
    }
}
