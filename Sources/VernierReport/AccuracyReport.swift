import Foundation
import VernierCost

/// Renders a leave-one-out accuracy measurement (`vernier device --accuracy`): each
/// held-out model's measured and predicted latency, and the error figures end to end
/// and per layer, as Markdown or JSON (`vernier.accuracy/1`).
public struct AccuracyReport {
    public let accuracy: PredictionAccuracy
    public let device: String
    public static let schema = "vernier.accuracy/1"

    public init(_ accuracy: PredictionAccuracy, device: String) {
        self.accuracy = accuracy
        self.device = device
    }

    public func markdown() -> String {
        var out = "Leave-one-out prediction accuracy on device `\(device)`: each model predicted by the profile calibrated on all the others.\n\n"
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
        return out
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
            ("models", .array(accuracy.models.map { m in
                .object([("model", .string(m.model)), ("threads", .int(m.threads)), ("measured_ms", .double(m.measuredMs)),
                         ("predicted_ms", .double(m.predictedMs)), ("error_pct", .double(m.errorPercent))])
            })),
            ("end_to_end", summary(accuracy.endToEnd)),
            ("layers", summary(accuracy.layers)),
            ("all_layers", summary(accuracy.allLayers)),
        ])
    }
}
