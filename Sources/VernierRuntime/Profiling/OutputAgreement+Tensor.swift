import VernierCost

extension OutputAgreement {
    /// Compares two output tensors of the same element count; classifier-shaped ones
    /// ([C] or [N, C] with C > 1) also get top-1 agreement. Nil when they cannot be
    /// compared (different sizes, non-numeric types).
    public static func compare(_ name: String, baseline: Tensor, candidate: Tensor) -> OutputAgreement? {
        guard baseline.elementCount == candidate.elementCount, let a = baseline.doubles(), let b = candidate.doubles() else { return nil }
        let shape = candidate.shape
        let classes = (shape.count == 1 || shape.count == 2) && (shape.last ?? 0) > 1 ? shape.last : nil
        return compare(name, baseline: a, candidate: b, classes: classes)
    }
}
