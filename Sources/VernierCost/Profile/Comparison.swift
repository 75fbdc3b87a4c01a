/// How closely one model's outputs follow another's on the same inputs.
public struct OutputAgreement: Sendable, Equatable {
    /// Output name in the candidate (and in the baseline, when it differs: `base -> candidate`).
    public var output: String
    public var maxAbsDifference: Double
    /// Cosine similarity of the two outputs as flat vectors (1: same direction).
    public var cosineSimilarity: Double
    /// For classifier-shaped outputs ([N, C] or [C] with C > 1): the share of rows whose
    /// arg-max class agrees; nil otherwise.
    public var top1Agreement: Double?

    public init(output: String, maxAbsDifference: Double, cosineSimilarity: Double, top1Agreement: Double?) {
        self.output = output
        self.maxAbsDifference = maxAbsDifference
        self.cosineSimilarity = cosineSimilarity
        self.top1Agreement = top1Agreement
    }

    /// Compares two float vectors of the same length; `classes` > 1 enables top-1 over
    /// consecutive rows of that length.
    public static func compare(_ name: String, baseline a: [Double], candidate b: [Double], classes: Int?) -> OutputAgreement? {
        guard a.count == b.count, !a.isEmpty else { return nil }
        var maxDiff = 0.0, dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            maxDiff = max(maxDiff, abs(a[i] - b[i]))
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        // Two zero vectors point nowhere: call them identical; one zero vector, orthogonal.
        // One square root of the product: sqrt(na) * sqrt(na) can miss na by an ulp, so
        // a vector against itself could score 0.9999999999999998; sqrt(na * na) is na.
        // Clamped, since rounding can still nudge a cosine past +-1.
        let cosine = na == 0 && nb == 0 ? 1 : (na == 0 || nb == 0 ? 0 : min(1, max(-1, dot / (na * nb).squareRoot())))
        var top1: Double?
        if let classes, classes > 1, a.count % classes == 0 {
            let rows = a.count / classes
            var agree = 0
            for r in 0..<rows {
                let slice = (r * classes)..<((r + 1) * classes)
                let ia = slice.max { a[$0] < a[$1] } ?? 0
                let ib = slice.max { b[$0] < b[$1] } ?? 0
                if ia == ib { agree += 1 }
            }
            top1 = Double(agree) / Double(rows)
        }
        return OutputAgreement(output: name, maxAbsDifference: maxDiff, cosineSimilarity: cosine, top1Agreement: top1)
    }
}

/// Several models measured side by side, with one as the baseline.
public struct Comparison: Sendable {
    /// A layer of the baseline and its counterpart in another model (either may be
    /// missing: a layer only one model has).
    public struct LayerPair: Sendable {
        public var baseline: Profile.Row?
        public var candidate: Profile.Row?
        /// How the two were matched: by name, or by position and op type.
        public var matchedByName: Bool

        public var deltaMs: Double? {
            guard let a = baseline, let b = candidate else { return nil }
            return b.latency.median - a.latency.median
        }
    }

    public var profiles: [Profile]
    public var baselineIndex: Int
    /// Output agreement of each model with the baseline (empty for the baseline itself,
    /// and when inputs or outputs do not correspond); a note says why when empty.
    public var agreement: [[OutputAgreement]]
    public var agreementNotes: [String?]
    /// The device the latencies were predicted for; nil when they were measured here.
    public var predictedFor: DeviceProfile?

    public init(profiles: [Profile], baselineIndex: Int, agreement: [[OutputAgreement]], agreementNotes: [String?],
                predictedFor: DeviceProfile? = nil) {
        self.profiles = profiles
        self.baselineIndex = baselineIndex
        self.agreement = agreement
        self.agreementNotes = agreementNotes
        self.predictedFor = predictedFor
    }

    public var baseline: Profile { profiles[baselineIndex] }

    /// The layers of `profiles[index]` paired with the baseline's: same name first; the
    /// rest aligned in execution order by op type (longest common subsequence), so a
    /// renamed layer in the same place still pairs up. Unpaired layers come alone.
    public func layers(of index: Int) -> [LayerPair] {
        Self.match(baseline.rows, profiles[index].rows)
    }

    static func match(_ a: [Profile.Row], _ b: [Profile.Row]) -> [LayerPair] {
        let bByName = Dictionary(b.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
        var pairOfA = [Int?](repeating: nil, count: a.count)
        var byName = [Bool](repeating: false, count: a.count)
        var usedB = Set<Int>()
        for (i, row) in a.enumerated() {
            if let j = bByName[row.name], !usedB.contains(j) {
                pairOfA[i] = j
                byName[i] = true
                usedB.insert(j)
            }
        }
        // Align the leftovers by op type, keeping their order.
        let restA = a.indices.filter { pairOfA[$0] == nil }
        let restB = b.indices.filter { !usedB.contains($0) }
        if !restA.isEmpty && !restB.isEmpty && restA.count * restB.count <= 4_000_000 {
            var table = [[Int]](repeating: [Int](repeating: 0, count: restB.count + 1), count: restA.count + 1)
            for i in stride(from: restA.count - 1, through: 0, by: -1) {
                for j in stride(from: restB.count - 1, through: 0, by: -1) {
                    table[i][j] = a[restA[i]].opType == b[restB[j]].opType
                        ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
                }
            }
            var i = 0, j = 0
            while i < restA.count && j < restB.count {
                if a[restA[i]].opType == b[restB[j]].opType {
                    pairOfA[restA[i]] = restB[j]
                    usedB.insert(restB[j])
                    i += 1; j += 1
                } else if table[i + 1][j] >= table[i][j + 1] {
                    i += 1
                } else {
                    j += 1
                }
            }
        }
        // Baseline order, with the candidate's unpaired layers after the layer before them.
        var pairs: [LayerPair] = []
        var emittedB = Set<Int>()
        func emitUnpairedB(upTo limit: Int) {
            for j in 0..<limit where !usedB.contains(j) && !emittedB.contains(j) {
                pairs.append(LayerPair(baseline: nil, candidate: b[j], matchedByName: false))
                emittedB.insert(j)
            }
        }
        for (i, row) in a.enumerated() {
            if let j = pairOfA[i] {
                emitUnpairedB(upTo: j)
                pairs.append(LayerPair(baseline: row, candidate: b[j], matchedByName: byName[i]))
            } else {
                pairs.append(LayerPair(baseline: row, candidate: nil, matchedByName: false))
            }
        }
        emitUnpairedB(upTo: b.count)
        return pairs
    }
}
