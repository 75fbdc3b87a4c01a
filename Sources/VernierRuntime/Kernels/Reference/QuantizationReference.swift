import VernierGraph

extension ReferenceKernels {
    /// The parameter index of flat element `index` of `shape`: per tensor (one value), per
    /// axis (`shape[axis]` values) or blocked (`blockSize` > 0, parameter rank = tensor rank).
    static func quantizationParameterIndex(_ index: Int, shape: [Int], parameterCount: Int, axis: Int, blockSize: Int) -> Int {
        if parameterCount == 1 && blockSize <= 0 { return 0 }
        let a = axis < 0 ? axis + shape.count : axis
        var rest = index
        var coordinates = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            coordinates[d] = rest % shape[d]
            rest /= shape[d]
        }
        if blockSize <= 0 { return coordinates[a] }
        var parameterShape = shape
        parameterShape[a] = (shape[a] + blockSize - 1) / blockSize
        coordinates[a] /= blockSize
        var flat = 0
        for d in 0..<shape.count { flat = flat * parameterShape[d] + coordinates[d] }
        return flat
    }

    /// QuantizeLinear: saturate(round_half_even(x / scale) + zero_point), element by element.
    static func quantizeLinear(_ x: Tensor, scale: Tensor, zeroPoint: Tensor?, axis: Int = 1, blockSize: Int = 0,
                               outputType: ElementType = .uint8) throws -> Tensor {
        let xs = try floatElements(x, what: "x"), scales = try floatElements(scale, what: "scale")
        let zeros = try zeroPoint.map { try quantizedElements($0, what: "zero point") } ?? [Int32](repeating: 0, count: scales.count)
        let type = zeroPoint?.elementType ?? outputType
        let range = try quantizedRange(type, what: "output")
        var q = [Int32](repeating: 0, count: xs.count)
        for i in xs.indices {
            let p = quantizationParameterIndex(i, shape: x.shape, parameterCount: scales.count, axis: axis, blockSize: blockSize)
            let v = (xs[i] / scales[p]).rounded(.toNearestOrEven)
            let shifted = v.isNaN ? Double(zeros[p]) : Double(v) + Double(zeros[p])
            q[i] = Int32(min(max(shifted, Double(range.lowerBound)), Double(range.upperBound)))
        }
        let out = Tensor(elementType: type, shape: x.shape)
        q.withUnsafeBufferPointer { storeQuantized($0, into: out) }
        return out
    }

    /// DequantizeLinear: (x - zero_point) * scale, in the scale's type (float here).
    static func dequantizeLinear(_ x: Tensor, scale: Tensor, zeroPoint: Tensor?, axis: Int = 1, blockSize: Int = 0) throws -> Tensor {
        let q = try quantizedElements(x, what: "x"), scales = try floatElements(scale, what: "scale")
        let zeros = try zeroPoint.map { try quantizedElements($0, what: "zero point") } ?? [Int32](repeating: 0, count: scales.count)
        let y = q.indices.map { i -> Float in
            let p = quantizationParameterIndex(i, shape: x.shape, parameterCount: scales.count, axis: axis, blockSize: blockSize)
            return Float(Int64(q[i]) - Int64(zeros[p])) * scales[p]
        }
        return Tensor(shape: x.shape, values: y)
    }

    /// Integer matmul of 2-D or batched 8-bit operands with per-tensor, per-row (A) or
    /// per-column (B) zero points; Int64 sums, returned as int32.
    static func matMulInteger(_ a: Tensor, _ b: Tensor, aZero: Tensor? = nil, bZero: Tensor? = nil) throws -> Tensor {
        guard let outShape = matMulShape(a.shape, b.shape) else { throw KernelError.invalid("shapes") }
        let a2 = a.rank == 1 ? [1] + a.shape : a.shape, b2 = b.rank == 1 ? b.shape + [1] : b.shape
        let (m, k, n) = (a2[a2.count - 2], a2[a2.count - 1], b2[b2.count - 1])
        let av = try quantizedElements(a, what: "A"), bv = try quantizedElements(b, what: "B")
        let az = try aZero.map { try quantizedElements($0, what: "A zero") } ?? [0]
        let bz = try bZero.map { try quantizedElements($0, what: "B zero") } ?? [0]
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let batch = broadcast(aBatch, bBatch) ?? []
        let rank = batch.count
        let aPadded = Array(repeating: 1, count: rank - aBatch.count) + aBatch
        let bPadded = Array(repeating: 1, count: rank - bBatch.count) + bBatch
        var y: [Int32] = []
        for flat in 0..<batch.reduce(1, *) {
            var rest = flat, index = [Int](repeating: 0, count: rank)
            for axis in stride(from: rank - 1, through: 0, by: -1) { index[axis] = rest % batch[axis]; rest /= batch[axis] }
            var ai = 0, bi = 0
            for axis in 0..<rank {
                ai = ai * aPadded[axis] + (aPadded[axis] == 1 ? 0 : index[axis])
                bi = bi * bPadded[axis] + (bPadded[axis] == 1 ? 0 : index[axis])
            }
            for i in 0..<m {
                for j in 0..<n {
                    let za = Int64(az.count == 1 ? az[0] : az.count == m ? az[i] : az[ai * m + i])
                    let zb = Int64(bz.count == 1 ? bz[0] : bz.count == n ? bz[j] : bz[bi * n + j])
                    var sum: Int64 = 0
                    for p in 0..<k { sum += (Int64(av[(ai * m + i) * k + p]) - za) * (Int64(bv[(bi * k + p) * n + j]) - zb) }
                    y.append(Int32(truncatingIfNeeded: sum))
                }
            }
        }
        return Tensor(.int32, shape: outShape, values: y)
    }

    /// QLinearMatMul with per-tensor scales and zero points: MatMulInteger, then
    /// saturate(round(sum * (a_scale * b_scale / y_scale)) + y_zero_point).
    static func qlinearMatMul(_ a: Tensor, aScale: Float, aZero: Tensor, _ b: Tensor, bScale: Float, bZero: Tensor,
                              yScale: Float, yZero: Tensor) throws -> Tensor {
        let sums = try matMulInteger(a, b, aZero: aZero, bZero: bZero).scalars(as: Int32.self)
        let zero = try quantizedElements(yZero, what: "y zero")[0]
        let range = try quantizedRange(yZero.elementType, what: "y")
        let multiplier = Double(aScale * bScale / yScale)
        var q = sums.map { s -> Int32 in
            let v = (Double(s) * multiplier + Double(zero)).rounded(.toNearestOrEven)
            return Int32(min(max(v, Double(range.lowerBound)), Double(range.upperBound)))
        }
        let out = Tensor(elementType: yZero.elementType, shape: matMulShape(a.shape, b.shape) ?? [])
        q.withUnsafeMutableBufferPointer { storeQuantized(UnsafeBufferPointer($0), into: out) }
        return out
    }

    /// ConvInteger, 2-D NCHW, with a per-tensor input zero point and per-tensor or
    /// per-output-channel weight zero points; padding contributes nothing.
    static func convInteger(_ x: Tensor, _ w: Tensor, xZero: Int32 = 0, wZero: [Int32] = [0], geometry: ConvGeometry) throws -> Tensor {
        guard let outShape = geometry.outputShape(input: x.shape, weights: w.shape) else { throw KernelError.invalid("shapes") }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (m, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let (oh, ow) = (outShape[2], outShape[3])
        let g = geometry.group, cg = c / g, mg = m / g
        let xv = try quantizedElements(x, what: "x"), wv = try quantizedElements(w, what: "w")
        var y = [Int32](repeating: 0, count: n * m * oh * ow)
        for b in 0..<n {
            for oc in 0..<m {
                let zw = Int64(wZero.count == 1 ? wZero[0] : wZero[oc])
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum: Int64 = 0
                        for ci in 0..<cg {
                            let ic = (oc / mg) * cg + ci
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy * geometry.strides[0] - geometry.pads[0] + ky * geometry.dilations[0]
                                    let ix = ox * geometry.strides[1] - geometry.pads[1] + kx * geometry.dilations[1]
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    let xq = Int64(xv[((b * c + ic) * h + iy) * wd + ix]) - Int64(xZero)
                                    let wq = Int64(wv[((oc * cg + ci) * kh + ky) * kw + kx]) - zw
                                    sum += xq * wq
                                }
                            }
                        }
                        y[((b * m + oc) * oh + oy) * ow + ox] = Int32(truncatingIfNeeded: sum)
                    }
                }
            }
        }
        return Tensor(.int32, shape: outShape, values: y)
    }

    /// QLinearConv: ConvInteger plus bias, then saturate(round(sum * x_scale * w_scale[m] /
    /// y_scale) + y_zero_point), per-tensor or per-channel weight scales.
    static func qlinearConv(_ x: Tensor, xScale: Float, xZero: Int32, _ w: Tensor, wScale: [Float], wZero: [Int32],
                            yScale: Float, yZero: Int32, outputType: ElementType, bias: [Int32]? = nil,
                            geometry: ConvGeometry) throws -> Tensor {
        let sums = try convInteger(x, w, xZero: xZero, wZero: wZero, geometry: geometry)
        let range = try quantizedRange(outputType, what: "y")
        let (m, plane) = (sums.shape[1], sums.shape[2] * sums.shape[3])
        var q = sums.scalars(as: Int32.self).enumerated().map { i, s -> Int32 in
            let oc = (i / plane) % m
            let multiplier = Double(xScale * (wScale.count == 1 ? wScale[0] : wScale[oc]) / yScale)
            let v = (Double(Int64(s) + Int64(bias?[oc] ?? 0)) * multiplier + Double(yZero)).rounded(.toNearestOrEven)
            return Int32(min(max(v, Double(range.lowerBound)), Double(range.upperBound)))
        }
        let out = Tensor(elementType: outputType, shape: sums.shape)
        q.withUnsafeMutableBufferPointer { storeQuantized(UnsafeBufferPointer($0), into: out) }
        return out
    }
}
