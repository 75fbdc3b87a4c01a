import CVernierSIMD
import VernierGraph

/// Resize (opset 10 to 19) and Upsample (7, 9). Nearest works on every element type (it
/// is an index-table copy); linear and cubic on float. Interpolation is separable, so an
/// N-D resize is one 1-D pass per changed axis; the common case, linear on the last two
/// axes of NCHW, has a fused bilinear kernel.
final class ResizeKernel: Kernel {
    enum Mode: String { case nearest, linear, cubic }
    enum CoordinateMode: String {
        case halfPixel = "half_pixel", pytorchHalfPixel = "pytorch_half_pixel", alignCorners = "align_corners"
        case asymmetric, tfCropAndResize = "tf_crop_and_resize", halfPixelSymmetric = "half_pixel_symmetric"
    }
    /// `simple` is the rounding of Upsample and Resize-10: floor when enlarging, ceil when shrinking.
    enum NearestMode: String {
        case roundPreferFloor = "round_prefer_floor", roundPreferCeil = "round_prefer_ceil", floor, ceil, simple
    }
    enum AspectPolicy: String { case stretch, notLarger = "not_larger", notSmaller = "not_smaller" }

    let mode: Mode
    let coordinateMode: CoordinateMode
    let nearestMode: NearestMode
    let cubicA: Double
    let excludeOutside: Bool
    let extrapolation: Double
    let antialias: Bool
    let axesAttribute: [Int]?
    let policy: AspectPolicy
    /// Where scales (and roi, sizes) come from: Upsample-7's attribute, input 1 (Upsample-9,
    /// Resize-10), or inputs 1 (roi), 2 (scales), 3 (sizes) from Resize-11.
    let attributeScales: [Double]?
    let legacyInputs: Bool

    init(_ ctx: KernelContext, upsample: Bool) throws {
        let node = ctx.node
        let modeName = try node.string("mode", default: "nearest")
        guard let m = Mode(rawValue: modeName == "bilinear" ? "linear" : modeName) else {
            throw KernelError.unsupported("mode '\(modeName)'")
        }
        mode = m
        legacyInputs = upsample || ctx.opset < 11
        if upsample && ctx.opset < 9 {
            guard let scales = try node.floats("scales") else { throw KernelError.invalid("attribute 'scales' is required before opset 9") }
            attributeScales = scales.map(Double.init)
        } else {
            attributeScales = nil
        }
        if legacyInputs {
            guard mode != .cubic else { throw KernelError.unsupported("cubic mode before Resize-11") }
            coordinateMode = .asymmetric
            nearestMode = .simple
        } else {
            let c = try node.string("coordinate_transformation_mode", default: "half_pixel")
            guard let cm = CoordinateMode(rawValue: c) else { throw KernelError.unsupported("coordinate_transformation_mode '\(c)'") }
            coordinateMode = cm
            let n = try node.string("nearest_mode", default: "round_prefer_floor")
            guard let nm = NearestMode(rawValue: n), nm != .simple else { throw KernelError.unsupported("nearest_mode '\(n)'") }
            nearestMode = nm
        }
        cubicA = Double(try node.float("cubic_coeff_a", default: -0.75))
        excludeOutside = try node.int("exclude_outside", default: 0) != 0
        extrapolation = Double(try node.float("extrapolation_value", default: 0))
        antialias = try node.int("antialias", default: 0) != 0
        guard !(antialias && mode == .nearest) else { throw KernelError.unsupported("antialias with nearest mode") }
        axesAttribute = try node.ints("axes")
        let p = try node.string("keep_aspect_ratio_policy", default: "stretch")
        guard let policy = AspectPolicy(rawValue: p) else { throw KernelError.unsupported("keep_aspect_ratio_policy '\(p)'") }
        self.policy = policy
    }

    /// Scales (one per axis) and output shape, following the ONNX rules.
    func geometry(_ x: Tensor, _ inputs: [Tensor?]) throws -> (scales: [Double], outShape: [Int], roi: [Double]) {
        let r = x.rank
        func input(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }
        var scales = [Double](repeating: 1, count: r)
        var outShape = x.shape
        var roi = [Double](repeating: 0, count: r) + [Double](repeating: 1, count: r)
        if legacyInputs {
            let given = try attributeScales ?? {
                guard let s = input(1)?.doubles() else { throw KernelError.invalid("scales input is missing") }
                return s
            }()
            guard given.count == r, given.allSatisfy({ $0 > 0 }) else {
                throw KernelError.invalid("scales \(given) must hold \(r) positive values")
            }
            scales = given
            for a in 0..<r { outShape[a] = try Self.size(Double(x.shape[a]) * given[a], .down, axis: a) }
            try checkFilterWidth(scales)
            return (scales, outShape, roi)
        }
        let axes = try (axesAttribute ?? Array(0..<r)).map { try normalizedAxis($0, rank: r) }
        guard Set(axes).count == axes.count else { throw KernelError.invalid("axes \(axes) repeat an axis") }
        if coordinateMode == .tfCropAndResize {
            guard let values = input(1)?.doubles(), values.count == 2 * axes.count else {
                throw KernelError.invalid("tf_crop_and_resize needs roi with \(2 * axes.count) values")
            }
            for (i, a) in axes.enumerated() {
                roi[a] = values[i]
                roi[r + a] = values[axes.count + i]
            }
        }
        if let sizesTensor = input(3), sizesTensor.elementCount > 0 {
            let sizes = try indexValues(sizesTensor, "sizes")
            guard sizes.count == axes.count, sizes.allSatisfy({ $0 >= 0 }) else {
                throw KernelError.invalid("sizes \(sizes) must hold \(axes.count) non-negative values")
            }
            for (i, a) in axes.enumerated() {
                guard x.shape[a] > 0 else { throw KernelError.invalid("cannot resize an empty axis \(a)") }
                scales[a] = Double(sizes[i]) / Double(x.shape[a])
                outShape[a] = sizes[i]
            }
            if policy != .stretch {
                let chosen = axes.map { scales[$0] }
                let scale = (policy == .notLarger ? chosen.min() : chosen.max()) ?? 1
                for a in axes {
                    scales[a] = scale
                    outShape[a] = try Self.size(scale * Double(x.shape[a]) + 0.5, .towardZero, axis: a)
                }
            }
        } else if let scalesTensor = input(2), scalesTensor.elementCount > 0 {
            guard let given = scalesTensor.doubles(), given.count == axes.count, given.allSatisfy({ $0 > 0 }) else {
                throw KernelError.invalid("scales must hold \(axes.count) positive values")
            }
            for (i, a) in axes.enumerated() {
                scales[a] = given[i]
                outShape[a] = try Self.size(given[i] * Double(x.shape[a]), .towardZero, axis: a)
            }
        } else {
            throw KernelError.invalid("neither scales nor sizes is given")
        }
        try checkFilterWidth(scales)
        return (scales, outShape, roi)
    }

    /// An output length from a scaled one: scales come from the model or its inputs and
    /// may be huge or infinite.
    private static func size(_ length: Double, _ rule: FloatingPointRoundingRule, axis: Int) throws -> Int {
        guard let size = Int(ifRepresentable: length.rounded(rule)), size >= 0 else {
            throw KernelError.invalid("resizing axis \(axis) gives \(length) elements")
        }
        return size
    }

    /// Antialiased downscaling widens the filter by 1 / scale taps per output element;
    /// a vanishing scale would ask for billions of them.
    private func checkFilterWidth(_ scales: [Double]) throws {
        guard antialias, mode != .nearest else { return }
        for (axis, scale) in scales.enumerated() where !(scale.isFinite && scale >= 1e-6) {
            throw KernelError.invalid("antialiased resize of axis \(axis) by \(scale) needs a filter too wide to build")
        }
    }

    /// The input coordinate of output index `j` along an axis, or nil when it falls
    /// outside the crop (tf_crop_and_resize: the output is the extrapolation value).
    func sourceCoordinate(_ j: Int, inLength: Int, outLength: Int, scale: Double, roiStart: Double, roiEnd: Double) -> Double? {
        let n = Double(inLength), outWidth = scale * n, x = Double(j)
        switch coordinateMode {
        case .alignCorners: return outWidth == 1 ? 0 : x * (n - 1) / (outWidth - 1)
        case .asymmetric: return x / scale
        case .halfPixel: return (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return outWidth == 1 ? -0.5 : (x + 0.5) / scale - 0.5
        case .halfPixelSymmetric:
            let adjustment = Double(outLength) / outWidth
            return n / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
        case .tfCropAndResize:
            let c = (outWidth == 1 ? (roiEnd - roiStart) * (n - 1) / 2 : x * (roiEnd - roiStart) * (n - 1) / (outWidth - 1))
                + roiStart * (n - 1)
            return c >= 0 && c <= n - 1 ? c : nil  // NaN (a NaN roi) falls outside too
        }
    }

    /// The input index nearest-neighbour output `j` reads along one axis (-1: extrapolate).
    func nearestMap(inLength: Int, outLength: Int, scale: Double, roiStart: Double, roiEnd: Double) -> [Int] {
        (0..<outLength).map { j in
            guard let c = sourceCoordinate(j, inLength: inLength, outLength: outLength, scale: scale,
                                           roiStart: roiStart, roiEnd: roiEnd) else { return -1 }
            let f = c.rounded(.down)
            var i: Double
            if c == f {
                i = c
            } else {
                switch nearestMode {
                case .roundPreferFloor: i = c - f <= 0.5 ? f : f + 1
                case .roundPreferCeil: i = c - f < 0.5 ? f : f + 1
                case .floor: i = f
                case .ceil: i = f + 1
                case .simple: i = scale < 1 ? f + 1 : f
                }
            }
            return Int(min(max(i, 0), Double(inLength - 1)))
        }
    }

    /// The interpolation kernel's weight at distance `d` (in input pixels, scaled).
    func kernelWeight(_ d: Double) -> Double {
        let x = abs(d)
        if mode == .linear { return max(0, 1 - x) }
        let a = cubicA
        if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return 0
    }

    /// Taps and weights of linear or cubic interpolation along one axis.
    func filter(inLength: Int, outLength: Int, scale: Double, roiStart: Double, roiEnd: Double) -> ResampleFilter {
        let support = mode == .linear ? 1.0 : 2.0
        let s = antialias ? min(scale, 1) : 1
        let first = Int((-support / s).rounded(.down)) + 1
        let taps = 2 - 2 * first
        var filter = ResampleFilter(taps: taps, outLength: outLength)
        var weights = [Double](repeating: 0, count: taps)
        for j in 0..<outLength {
            guard let c = sourceCoordinate(j, inLength: inLength, outLength: outLength, scale: scale,
                                           roiStart: roiStart, roiEnd: roiEnd) else {
                filter.outside[j] = true
                continue
            }
            guard let floor = Int(ifRepresentable: c.rounded(.down)) else {
                filter.outside[j] = true
                continue
            }
            let base = floor + first
            var sum = 0.0
            for t in 0..<taps {
                let i = base + t
                weights[t] = excludeOutside && (i < 0 || i >= inLength) ? 0 : kernelWeight((Double(i) - c) * s)
                sum += weights[t]
            }
            let normalize = (antialias || excludeOutside) && sum != 0
            for t in 0..<taps {
                filter.index[j * taps + t] = min(max(base + t, 0), inLength - 1)
                filter.weight[j * taps + t] = Float(normalize ? weights[t] / sum : weights[t])
            }
        }
        return filter
    }

    func run(_ inputs: [Tensor?], _ outputs: OutputSlots) throws {
        let x = try requiredInput(inputs, 0)
        let (scales, outShape, roi) = try geometry(x, inputs)
        let r = x.rank
        let size = try copyableElementSize(x.elementType)
        guard mode == .nearest || x.elementType == .float else {
            throw KernelError.unsupported("\(mode.rawValue) resize of \(x.elementType) (float only)")
        }
        for a in 0..<r where x.shape[a] == 0 && outShape[a] > 0 {
            throw KernelError.invalid("cannot resize the empty axis \(a) of \(x.shape)")
        }
        let y = try outputs.allocate(0, x.elementType, outShape)
        if y.elementCount == 0 { return }
        if mode == .nearest {
            let maps = (0..<r).map { a in
                nearestMap(inLength: x.shape[a], outLength: outShape[a], scale: scales[a], roiStart: roi[a], roiEnd: roi[r + a])
            }
            IndexMapCopy(outShape: outShape, maps: maps, inStrides: contiguousStrides(x.shape))
                .run(elementSize: size, from: x.rawPointer, to: y.rawPointer, fill: try ElementBytes(extrapolation, as: x.elementType))
            return
        }
        var filters: [(axis: Int, filter: ResampleFilter)] = []
        for a in 0..<r {
            let f = filter(inLength: x.shape[a], outLength: outShape[a], scale: scales[a], roiStart: roi[a], roiEnd: roi[r + a])
            if !f.isIdentity(inLength: x.shape[a]) { filters.append((a, f)) }
        }
        let source = x.rawPointer.assumingMemoryBound(to: Float.self)
        let destination = y.rawPointer.assumingMemoryBound(to: Float.self)
        let fill = Float(extrapolation)
        if filters.isEmpty {
            destination.update(from: source, count: x.elementCount)
            return
        }
        if r >= 2, filters.count == 2, filters[0].axis == r - 2, filters[1].axis == r - 1,
           filters[0].filter.taps == 2, filters[1].filter.taps == 2 {
            bilinear(source, destination, planes: x.shape[..<(r - 2)].reduce(1, *), inHeight: x.shape[r - 2],
                     inWidth: x.shape[r - 1], rows: filters[0].filter, columns: filters[1].filter, fill: fill)
            return
        }
        // One pass per changed axis, the ones that shrink the tensor first.
        filters.sort { Double(outShape[$0.axis]) / Double(x.shape[$0.axis]) < Double(outShape[$1.axis]) / Double(x.shape[$1.axis]) }
        var shape = x.shape
        var current = UnsafePointer(source)
        var scratch: [UnsafeMutablePointer<Float>] = []
        defer { scratch.forEach { $0.deallocate() } }
        for (n, (axis, f)) in filters.enumerated() {
            var next = shape
            next[axis] = outShape[axis]
            let target: UnsafeMutablePointer<Float>
            if n == filters.count - 1 {
                target = destination
            } else {
                target = .allocate(capacity: max(1, next.reduce(1, *)))
                scratch.append(target)
            }
            resample(current, target, outer: shape[..<axis].reduce(1, *), inLength: shape[axis],
                     inner: shape[(axis + 1)...].reduce(1, *), filter: f, fill: fill)
            current = UnsafePointer(target)
            shape = next
        }
    }
}

/// Interpolation along one axis: output `j` is `sum_t weight[j, t] * input[index[j, t]]`,
/// or the extrapolation value where `outside[j]`.
struct ResampleFilter {
    var taps: Int
    var index: [Int]
    var weight: [Float]
    var outside: [Bool]

    init(taps: Int, outLength: Int) {
        self.taps = taps
        index = [Int](repeating: 0, count: taps * outLength)
        weight = [Float](repeating: 0, count: taps * outLength)
        outside = [Bool](repeating: false, count: outLength)
    }

    /// Whether every output reads exactly its own input index.
    func isIdentity(inLength: Int) -> Bool {
        guard outside.count == inLength, !outside.contains(true) else { return false }
        for j in 0..<inLength {
            for t in 0..<taps {
                let w = weight[j * taps + t]
                if !(w == 0 || (w == 1 && index[j * taps + t] == j)) { return false }
            }
        }
        return true
    }
}

/// A filter's tables in unmanaged memory, for parallel bodies (see `plainCopy`).
struct PlainFilter {
    let taps: Int
    let index: UnsafeMutablePointer<Int>
    let weight: UnsafeMutablePointer<Float>
    let outside: UnsafeMutablePointer<Bool>

    init(_ f: ResampleFilter) {
        taps = f.taps
        index = plainCopy(f.index)
        weight = plainCopy(f.weight)
        outside = plainCopy(f.outside)
    }

    func deallocate() {
        index.deallocate()
        weight.deallocate()
        outside.deallocate()
    }
}

/// One separable pass over a `[outer, inLength, inner]` float tensor.
func resample(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>,
              outer: Int, inLength: Int, inner: Int, filter resampleFilter: ResampleFilter, fill: Float) {
    let outLength = resampleFilter.outside.count, taps = resampleFilter.taps
    let filter = PlainFilter(resampleFilter)
    defer { filter.deallocate() }
    let index = filter.index, weight = filter.weight, outside = filter.outside
    ThreadPool.parallelFor(outer * outLength, minimumPerThread: max(1, 4096 / max(1, inner * taps))) { range in
        for item in range {
            let o = item / outLength, j = item % outLength
            let out = destination + item * inner
            if outside[j] {
                out.update(repeating: fill, count: inner)
                continue
            }
            let plane = source + o * inLength * inner
            if inner == 1 {
                var sum: Float = 0
                for t in 0..<taps { sum += weight[j * taps + t] * plane[index[j * taps + t]] }
                out[0] = sum
                continue
            }
            var k = 0
            while k + 8 <= inner {
                var acc = SIMD8<Float>()
                for t in 0..<taps {
                    let row = UnsafeRawPointer(plane + index[j * taps + t] * inner + k)
                    acc += weight[j * taps + t] * row.loadUnaligned(as: SIMD8<Float>.self)
                }
                UnsafeMutableRawPointer(out + k).storeBytes(of: acc, as: SIMD8<Float>.self)
                k += 8
            }
            while k < inner {
                var sum: Float = 0
                for t in 0..<taps { sum += weight[j * taps + t] * plane[index[j * taps + t] * inner + k] }
                out[k] = sum
                k += 1
            }
        }
    }
}

/// Linear interpolation of the last two axes of `[planes, inHeight, inWidth]`: each input
/// row is resized horizontally once (two rows cached per thread), then output rows blend
/// two of them with SIMD.
func bilinear(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, planes: Int,
              inHeight: Int, inWidth: Int, rows rowFilter: ResampleFilter, columns columnFilter: ResampleFilter, fill: Float) {
    let outHeight = rowFilter.outside.count, outWidth = columnFilter.outside.count
    let rows = PlainFilter(rowFilter), columns = PlainFilter(columnFilter)
    defer { rows.deallocate(); columns.deallocate() }
    let xIndex = columns.index, xWeight = columns.weight, xOutside = columns.outside
    let hasOutside = columnFilter.outside.contains(true)
    let taps = hasOutside ? nil : NeighbourTaps(columnFilter, inWidth: inWidth)
    ThreadPool.parallelFor(planes * outHeight, minimumPerThread: max(1, 8192 / max(1, outWidth))) { range in
        let cache = UnsafeMutablePointer<Float>.allocate(capacity: 2 * outWidth)
        defer { cache.deallocate() }
        var cached0 = -1, cached1 = -1  // input row (plane * inHeight + y) held by each cache slot
        for item in range {
            let p = item / outHeight, y = item % outHeight
            let out = destination + item * outWidth
            if rows.outside[y] {
                out.update(repeating: fill, count: outWidth)
                continue
            }
            let w0 = rows.weight[2 * y], w1 = rows.weight[2 * y + 1]
            let keyA = p * inHeight + rows.index[2 * y], keyB = p * inHeight + rows.index[2 * y + 1]
            // Bring both source rows into the cache, each resized horizontally once.
            func resize(_ key: Int, into slot: Int) {
                if let taps {
                    vernier_resample_row(source + key * inWidth, cache + slot * outWidth, outWidth, taps.first, taps.weight0, taps.weight1)
                } else {
                    resizeRow(source + key * inWidth, cache + slot * outWidth, outWidth, xIndex, xWeight, xOutside, hasOutside, fill)
                }
            }
            if keyA != cached0 && keyA != cached1 {
                let slot = cached0 == keyB ? 1 : 0
                resize(keyA, into: slot)
                if slot == 0 { cached0 = keyA } else { cached1 = keyA }
            }
            if keyB != cached0 && keyB != cached1 {
                let slot = cached0 == keyA ? 1 : 0
                resize(keyB, into: slot)
                if slot == 0 { cached0 = keyB } else { cached1 = keyB }
            }
            let a = cached0 == keyA ? cache : cache + outWidth
            let b = cached0 == keyB ? cache : cache + outWidth
            vernier_blend_rows(a, b, w0, w1, out, outWidth)
        }
    }
}

/// A two-tap filter along a row as a first tap and its right neighbour, for
/// `vernier_resample_row`: taps clamped onto one pixel at an edge become that pixel and
/// its inner neighbour at weight 0, so both stay inside the row. Nil when a tap pair is
/// neither (or the row has one pixel).
final class NeighbourTaps: @unchecked Sendable {
    let first: UnsafeMutablePointer<Int32>
    let weight0: UnsafeMutablePointer<Float>
    let weight1: UnsafeMutablePointer<Float>

    init?(_ filter: ResampleFilter, inWidth: Int) {
        let width = filter.outside.count
        guard filter.taps == 2, inWidth >= 2, inWidth <= Int(Int32.max) else { return nil }
        first = .allocate(capacity: max(width, 1))
        weight0 = .allocate(capacity: max(width, 1))
        weight1 = .allocate(capacity: max(width, 1))
        for x in 0..<width {
            let i0 = filter.index[2 * x], i1 = filter.index[2 * x + 1]
            let w0 = filter.weight[2 * x], w1 = filter.weight[2 * x + 1]
            if i1 == i0 + 1 {
                (first[x], weight0[x], weight1[x]) = (Int32(i0), w0, w1)
            } else if i1 == i0 && i0 + 1 < inWidth {
                (first[x], weight0[x], weight1[x]) = (Int32(i0), w0 + w1, 0)
            } else if i1 == i0 {
                (first[x], weight0[x], weight1[x]) = (Int32(i0 - 1), 0, w0 + w1)
            } else if i0 == i1 + 1 {
                (first[x], weight0[x], weight1[x]) = (Int32(i1), w1, w0)
            } else {
                first[x] = -1
            }
            // Both taps inside the row, or the generic loop.
            guard first[x] >= 0 && Int(first[x]) + 1 < inWidth else {
                first.deallocate(); weight0.deallocate(); weight1.deallocate()
                return nil
            }
        }
    }

    deinit { first.deallocate(); weight0.deallocate(); weight1.deallocate() }
}

/// One row resized by a two-tap filter.
@inline(__always)
private func resizeRow(_ row: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ width: Int,
                       _ index: UnsafeMutablePointer<Int>, _ weight: UnsafeMutablePointer<Float>,
                       _ outside: UnsafeMutablePointer<Bool>, _ hasOutside: Bool, _ fill: Float) {
    for x in 0..<width {
        out[x] = weight[2 * x] * row[index[2 * x]] + weight[2 * x + 1] * row[index[2 * x + 1]]
    }
    // Rare (tf_crop_and_resize): columns outside the crop, fixed afterwards.
    if hasOutside {
        for x in 0..<width where outside[x] { out[x] = fill }
    }
}

extension DataMovementKernels {
    static func makeResize(_ ctx: KernelContext) throws -> Kernel { try ResizeKernel(ctx, upsample: false) }
    static func makeUpsample(_ ctx: KernelContext) throws -> Kernel { try ResizeKernel(ctx, upsample: true) }
}
