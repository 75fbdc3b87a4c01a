import VernierGraph

/// How a channel's importance is measured: the norm of its weights, summed over every
/// tensor of its group that scores importance (Conv/Gemm/MatMul weights on both the
/// producing and the consuming side, BatchNormalization's scale).
public enum ImportanceNorm: String, Sendable, CaseIterable {
    case l1
    case l2
}

enum ChannelImportance {
    /// One score per channel of `group`; higher means more important.
    static func scores(of group: ChannelGroup, constants: StoredConstants, norm: ImportanceNorm) -> [Double] {
        var scores = [Double](repeating: 0, count: group.channels)
        var cache: [String: [Double]] = [:]
        for s in group.slices where s.scoresImportance {
            guard let t = constants[s.tensor] else { continue }
            let key = "\(s.tensor)#\(s.axis)"
            let sums = cache[key] ?? axisSums(t, axis: s.axis, norm: norm)
            cache[key] = sums
            for k in 0..<group.channels {
                let start = s.offset + k * s.span
                guard start + s.span <= sums.count else { continue }
                let total = sums[start..<(start + s.span)].reduce(0, +)
                scores[k] += norm == .l1 ? total : total.squareRoot()
            }
        }
        return scores
    }

    /// For every index along `axis`: the sum of |v| (l1) or v² (l2) over the other axes.
    static func axisSums(_ t: TensorData, axis: Int, norm: ImportanceNorm) -> [Double] {
        let dims = t.dims
        guard axis < dims.count else { return [] }
        let size = dims[axis]
        let inner = dims[(axis + 1)...].reduce(1, *)
        var sums = [Double](repeating: 0, count: size)
        func add(_ i: Int, _ v: Double) {
            let index = (i / inner) % size
            sums[index] += norm == .l1 ? abs(v) : v * v
        }
        if t.elementType == .float {
            t.withUnsafeBytes { raw in
                let n = min(t.elementCount, raw.count / 4)
                for i in 0..<n {
                    add(i, Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))))
                }
            }
        } else if let values = t.doubleValues() {
            for (i, v) in values.enumerated() { add(i, v) }
        }
        return sums
    }
}
