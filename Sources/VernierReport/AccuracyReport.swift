import Foundation
import VernierCost

/// Renders a leave-one-out accuracy measurement (`vernier device --accuracy`): each
/// held-out model's measured and predicted latency, and the error figures end to end
/// and per layer, as Markdown or JSON (`vernier.accuracy/1`).
public struct AccuracyReport {
    public let accuracy: PredictionAccuracy
    public let device: String
    /// Which measured time the figures read: the median run or the fastest.
    public let statistic: MeasuredStatistic
    public static let schema = "vernier.accuracy/1"

    public init(_ accuracy: PredictionAccuracy, device: String, statistic: MeasuredStatistic = .median) {
        self.accuracy = accuracy
        self.device = device
        self.statistic = statistic
    }

    public func markdown() -> String {
        var out = "Leave-one-out prediction accuracy on device `\(device)`: each model predicted by the profile calibrated on all the others."
        switch statistic {
        case .median: out += " Times are medians over runs.\n\n"
        case .min: out += " Times are fastest runs (calibration and truth alike).\n\n"
        }
        out += "| model | threads | measured ms | predicted ms | error |\n|---|---:|---:|---:|---:|\n"
        for m in accuracy.models {
            out += "| \(m.model) | \(m.threads) | \(String(format: "%.3f", m.measuredMs)) | \(String(format: "%.3f", m.predictedMs)) | \(String(format: "%+.1f%%", m.errorPercent)) |\n"
        }
        out += "\n| predictions | count | within 10% | within 20% | RMSPE | median abs. error |\n|---|---:|---:|---:|---:|---:|\n"
        let lines: [(String, PredictionAccuracy.Summary?)] = [
            ("end to end", accuracy.endToEnd),
            ("layers (at least 1% of their model)", accuracy.layers),
            ("all layers", accuracy.allLayers),
        ]
        for (name, s) in lines {
            guard let s else { continue }
            out += "| \(name) | \(s.count) | \(String(format: "%.1f%%", s.within10Percent)) | \(String(format: "%.1f%%", s.within20Percent)) | "
                + "\(String(format: "%.1f%%", s.rmspe)) | \(String(format: "%.1f%%", s.medianAbsoluteErrorPercent)) |\n"
        }
        let classes = classSummaries
        guard !classes.isEmpty else { return out }
        out += "\nBy op class, over every held-out model: kernel time measured and predicted, and the class's mean share of the "
            + "end-to-end error (|predicted - measured| of its kernels over the model's measured latency), which says where misses come from.\n\n"
        out += "| op class | kernels | measured ms | predicted ms | error of the sum | mean end-to-end error share |\n|---|---:|---:|---:|---:|---:|\n"
        for c in classes {
            out += "| \(c.opClass.rawValue) | \(c.kernels) | \(String(format: "%.1f", c.measuredUs / 1e3)) | \(String(format: "%.1f", c.predictedUs / 1e3)) | "
                + "\(String(format: "%+.1f%%", c.errorPercent)) | \(String(format: "%.1f%%", c.meanEndToEndSharePercent)) |\n"
        }
        return out
    }

    /// One op class over every held-out model.
    struct ClassSummary {
        var opClass: OpClass
        var kernels = 0
        var measuredUs = 0.0
        var predictedUs = 0.0
        /// Sum over models of |predicted - measured| / the model's measured latency.
        var endToEndShares = 0.0
        var models = 0
        var errorPercent: Double { measuredUs > 0 ? (predictedUs - measuredUs) / measuredUs * 100 : 0 }
        var meanEndToEndSharePercent: Double { models > 0 ? endToEndShares / Double(models) * 100 : 0 }
    }

    /// Per class, ordered by the end-to-end error it causes, largest first.
    var classSummaries: [ClassSummary] {
        var byClass: [OpClass: ClassSummary] = [:]
        let results = accuracy.models.filter { !$0.byClass.isEmpty }
        for m in results {
            for c in m.byClass {
                byClass[c.opClass, default: ClassSummary(opClass: c.opClass)].kernels += c.kernels
                byClass[c.opClass]?.measuredUs += c.measuredUs
                byClass[c.opClass]?.predictedUs += c.predictedUs
                byClass[c.opClass]?.endToEndShares += abs(c.predictedUs - c.measuredUs) / (m.measuredMs * 1e3)
            }
        }
        return byClass.values.map { c in
            var c = c
            c.models = results.count
            return c
        }.sorted { ($0.endToEndShares, $1.opClass.rawValue) > ($1.endToEndShares, $0.opClass.rawValue) }
    }

    public func json() -> JSON {
        func summary(_ s: PredictionAccuracy.Summary?) -> JSON {
            guard let s else { return .null }
            return .object([("count", .int(s.count)), ("within_10_pct", .double(s.within10Percent)),
                            ("within_20_pct", .double(s.within20Percent)), ("rmspe_pct", .double(s.rmspe)),
                            ("median_abs_error_pct", .double(s.medianAbsoluteErrorPercent))])
        }
        return .object([
            ("schema", .string(Self.schema)),
            ("device", .string(device)),
            ("statistic", .string(statistic.rawValue)),
            ("models", .array(accuracy.models.map { m in
                .object([("model", .string(m.model)), ("threads", .int(m.threads)), ("measured_ms", .double(m.measuredMs)),
                         ("predicted_ms", .double(m.predictedMs)), ("error_pct", .double(m.errorPercent)),
                         ("by_class", .array(m.byClass.map { c in
                             .object([("op_class", .string(c.opClass.rawValue)), ("kernels", .int(c.kernels)),
                                      ("measured_ms", .double(c.measuredUs / 1e3)), ("predicted_ms", .double(c.predictedUs / 1e3))])
                         })),
                         ("kernels", .array(m.kernels.map { k in
                             .object([("name", .string(k.name)), ("op_class", .string(k.opClass.rawValue)),
                                      ("measured_ms", .double(k.measuredUs / 1e3)), ("predicted_ms", .double(k.predictedUs / 1e3))])
                         }))])
            })),
            ("end_to_end", summary(accuracy.endToEnd)),
            ("layers", summary(accuracy.layers)),
            ("all_layers", summary(accuracy.allLayers)),
        ])
    }
}
