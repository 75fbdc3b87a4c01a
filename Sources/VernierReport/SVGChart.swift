import Foundation
import VernierCost

// Small inline-SVG charts for the HTML report: scales and ticks, axes, a horizontal
// (grouped) bar chart, the roofline scatter and the memory timeline. Every text that
// may come from a model goes through `HTML.escape`.

/// Maps data values onto pixels along one axis, linearly or on a log10 scale.
struct Scale {
    var lower: Double
    var upper: Double
    var start: Double
    var end: Double
    var logarithmic = false

    func callAsFunction(_ value: Double) -> Double {
        let t: Double
        if logarithmic {
            // Values at or below zero have no place on a log axis: pin them to its start.
            guard value > 0, lower > 0 else { return start }
            t = (log10(value) - log10(lower)) / (log10(upper) - log10(lower))
        } else {
            t = (value - lower) / (upper - lower)
        }
        return start + (t.isFinite ? t : 0) * (end - start)
    }

    /// Round values inside the domain to put ticks at.
    var ticks: [Double] {
        logarithmic ? Ticks.logarithmic(lower, upper) : Ticks.linear(lower, upper, count: 5)
    }
}

/// Where axes put their ticks.
enum Ticks {
    /// The round step (1, 2 or 5 times a power of ten) closest to `span / count`.
    static func step(span: Double, count: Int) -> Double {
        guard span > 0, span.isFinite else { return 1 }
        let raw = span / Double(max(1, count))
        let magnitude = pow(10, log10(raw).rounded(.down))
        let residual = raw / magnitude
        // Thresholds are the geometric means between 1, 2, 5 and 10.
        let factor: Double = residual < 1.42 ? 1 : residual < 3.17 ? 2 : residual < 7.08 ? 5 : 10
        return factor * magnitude
    }

    /// `value` rounded up to a whole tick step, so the axis ends on a tick.
    static func roundedUp(_ value: Double, count: Int = 5) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        let s = step(span: value, count: count)
        return (value / s).rounded(.up) * s
    }

    static func linear(_ lower: Double, _ upper: Double, count: Int) -> [Double] {
        let s = step(span: upper - lower, count: count)
        let first = (lower / s).rounded(.up)
        // Multiples of the step, not repeated sums, so 0.1 + 0.2 stays 0.3.
        return (0..<50).map { (first + Double($0)) * s }.filter { $0 <= upper + s * 1e-9 }
    }

    /// Powers of ten in the domain, with 2x and 5x between them when it spans fewer than
    /// three decades (else a log axis would have two ticks).
    static func logarithmic(_ lower: Double, _ upper: Double) -> [Double] {
        guard lower > 0, upper > lower, upper.isFinite else { return [] }
        let first = Int(log10(lower).rounded(.down)), last = Int(log10(upper).rounded(.up))
        let multiples: [Double] = last - first < 3 ? [1, 2, 5] : [1]
        var out: [Double] = []
        for k in first...last {
            for m in multiples {
                let v = m * pow(10, Double(k))
                if v >= lower * (1 - 1e-9) && v <= upper * (1 + 1e-9) { out.append(v) }
            }
        }
        return out
    }

    /// The smallest whole-decade interval holding `lower...upper` (at least one decade wide).
    static func decades(_ lower: Double, _ upper: Double) -> (Double, Double) {
        let lo = pow(10, log10(lower).rounded(.down))
        var hi = pow(10, log10(upper).rounded(.up))
        if hi <= lo { hi = lo * 10 }
        return (lo, hi)
    }

    /// A tick label: `0.5`, `20`, `1000`, `20.0k`.
    static func label(_ v: Double) -> String {
        abs(v) >= 10_000 ? Format.count(v) : String(format: "%g", v)
    }
}

/// Builders for the SVG elements the charts use.
enum SVG {
    /// A coordinate with one decimal at most: keeps the file small.
    static func n(_ v: Double) -> String {
        // Coordinates come from scales over finite data; this only keeps a degenerate
        // input (an infinite roof) from trapping in the Int conversion.
        guard v.isFinite, abs(v) < 1e9 else { return "0" }
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }

    /// The `<svg>` start tag. The width is an upper bound: CSS shrinks the chart to fit a
    /// narrow window. No namespace attribute: inline SVG in HTML does not need one.
    static func open(width: Double, height: Double, label: String) -> String {
        "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" "
            + "role=\"img\" aria-label=\"\(HTML.escape(label))\">"
    }

    static func title(_ s: String?) -> String {
        guard let s, !s.isEmpty else { return "" }
        return "<title>\(HTML.escape(s))</title>"
    }

    static func text(_ s: String, x: Double, y: Double, anchor: String = "start", cssClass: String? = nil,
                     rotated: Bool = false) -> String {
        let cls = cssClass.map { " class=\"\($0)\"" } ?? ""
        let turn = rotated ? " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" : ""
        return "<text x=\"\(n(x))\" y=\"\(n(y))\" text-anchor=\"\(anchor)\"\(cls)\(turn)>\(HTML.escape(s))</text>"
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cssClass: String) -> String {
        "<line class=\"\(cssClass)\" x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\"/>"
    }

    static func rect(x: Double, y: Double, width: Double, height: Double, cssClass: String, title: String? = nil) -> String {
        let head = "<rect class=\"\(cssClass)\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(0, width)))\" height=\"\(n(max(0, height)))\""
        guard let title, !title.isEmpty else { return head + "/>" }
        return head + ">" + self.title(title) + "</rect>"
    }

    static func circle(x: Double, y: Double, r: Double, cssClass: String, title: String? = nil) -> String {
        let head = "<circle class=\"\(cssClass)\" cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(r))\""
        guard let title, !title.isEmpty else { return head + "/>" }
        return head + ">" + self.title(title) + "</circle>"
    }

    /// A path through `points` (`M x y L x y ...`).
    static func path(_ points: [(Double, Double)], cssClass: String, closed: Bool = false) -> String {
        let d = points.enumerated().map { ($0.offset == 0 ? "M" : "L") + "\(n($0.element.0)) \(n($0.element.1))" }.joined(separator: " ")
        return "<path class=\"\(cssClass)\" d=\"\(d)\(closed ? " Z" : "")\"/>"
    }

    /// A row of coloured swatches with their names, for charts with several series.
    static func legend(_ entries: [(name: String, cssClass: String, round: Bool)], x: Double, y: Double) -> String {
        var out = ""
        var cursor = x
        for e in entries {
            out += e.round ? circle(x: cursor + 5, y: y - 4, r: 5, cssClass: e.cssClass)
                           : rect(x: cursor, y: y - 9, width: 10, height: 10, cssClass: e.cssClass)
            out += text(e.name, x: cursor + 14, y: y)
            cursor += 14 + Double(e.name.count) * 6.6 + 18
        }
        return out
    }
}

/// A plot area inside a chart: the margins around it, its two scales, and its axes.
struct PlotArea {
    var width: Double
    var height: Double
    var left: Double, right: Double, top: Double, bottom: Double
    var x: Scale
    var y: Scale

    init(width: Double, height: Double, margins: (top: Double, right: Double, bottom: Double, left: Double),
         x: (Double, Double), y: (Double, Double), logarithmic: Bool = false) {
        self.width = width
        self.height = height
        left = margins.left
        right = width - margins.right
        top = margins.top
        bottom = height - margins.bottom
        self.x = Scale(lower: x.0, upper: x.1, start: left, end: right, logarithmic: logarithmic)
        self.y = Scale(lower: y.0, upper: y.1, start: bottom, end: top, logarithmic: logarithmic)
    }

    /// Vertical grid lines at the x ticks, the bottom axis line, tick labels and the title.
    func xAxis(title: String, ticks: [Double]? = nil, format: (Double) -> String = Ticks.label) -> String {
        var out = ""
        for t in ticks ?? x.ticks {
            let px = x(t)
            out += SVG.line(px, top, px, bottom, cssClass: "grid")
            out += SVG.text(format(t), x: px, y: bottom + 15, anchor: "middle", cssClass: "muted")
        }
        out += SVG.line(left, bottom, right, bottom, cssClass: "axis")
        out += SVG.text(title, x: (left + right) / 2, y: bottom + 32, anchor: "middle")
        return out
    }

    /// Horizontal grid lines at the y ticks, the left axis line, tick labels and the title.
    func yAxis(title: String, ticks: [Double]? = nil, format: (Double) -> String = Ticks.label) -> String {
        var out = ""
        for t in ticks ?? y.ticks {
            let py = y(t)
            out += SVG.line(left, py, right, py, cssClass: "grid")
            out += SVG.text(format(t), x: left - 6, y: py + 4, anchor: "end", cssClass: "muted")
        }
        out += SVG.line(left, top, left, bottom, cssClass: "axis")
        out += SVG.text(title, x: 14, y: (top + bottom) / 2, anchor: "middle", rotated: true)
        return out
    }
}

/// A horizontal bar chart: one row per item with its label on the left and one bar per
/// series (grouped when there are several), each followed by its value text.
struct BarChart {
    struct Series {
        var name: String
        var cssClass: String
    }

    struct Item {
        var label: String
        /// One value per series.
        var values: [Double]
        /// Text after each bar, and its hover title.
        var texts: [String]
        var titles: [String]
    }

    var series: [Series]
    var items: [Item]
    var axisTitle: String
    var label: String
    var tickFormat: (Double) -> String = Ticks.label
    var width = 1060.0
    /// Longer labels are cut (the hover title has them whole).
    static let maxLabelCharacters = 44

    func render() -> String {
        // Grouped bars are thinner but still fit a line of 12 px text each.
        let barHeight = series.count > 1 ? 14.0 : 17.0
        let rowHeight = barHeight * Double(series.count) + 8
        let legendHeight = series.count > 1 ? 24.0 : 0
        let labelChars = min(Self.maxLabelCharacters, items.map(\.label.count).max() ?? 4)
        let textChars = items.flatMap(\.texts).map(\.count).max() ?? 0
        let top = legendHeight + 6
        let height = top + rowHeight * Double(items.count) + 40
        let largest = items.flatMap(\.values).filter(\.isFinite).max() ?? 0
        let plot = PlotArea(width: width, height: height,
                            margins: (top: top, right: Double(textChars) * 6.4 + 14, bottom: 40, left: Double(labelChars) * 6.6 + 14),
                            x: (0, Ticks.roundedUp(largest)), y: (0, 1))
        var out = SVG.open(width: width, height: height, label: label)
        out += plot.xAxis(title: axisTitle, format: tickFormat)
        if series.count > 1 {
            out += SVG.legend(series.map { ($0.name, $0.cssClass, false) }, x: plot.left, y: 16)
        }
        for (i, item) in items.enumerated() {
            let y0 = top + Double(i) * rowHeight + 4
            let shown = item.label.count > Self.maxLabelCharacters ? String(item.label.prefix(Self.maxLabelCharacters - 1)) + "\u{2026}" : item.label
            out += "<g>" + SVG.title(item.label)
                + SVG.text(shown, x: plot.left - 8, y: y0 + (rowHeight - 8) / 2 + 4, anchor: "end") + "</g>"
            for (s, value) in item.values.enumerated() where s < series.count {
                let v = value.isFinite ? max(0, value) : 0
                // A bar too short to see still gets a sliver, so "small" differs from "none".
                let length = v > 0 ? max(1, plot.x(v) - plot.left) : 0
                let by = y0 + Double(s) * barHeight
                out += SVG.rect(x: plot.left, y: by, width: length, height: barHeight - 2, cssClass: series[s].cssClass,
                                title: s < item.titles.count ? item.titles[s] : nil)
                if s < item.texts.count {
                    out += SVG.text(item.texts[s], x: plot.left + length + 5, y: by + barHeight - 5, cssClass: "muted")
                }
            }
        }
        return out + "</svg>"
    }
}

/// Layers placed against a device's two roofs on log-log axes: arithmetic intensity
/// (FLOP/byte) across, achieved GFLOP/s up; the memory roof rises to the ridge point,
/// the compute roof is flat after it. A point's area follows its share of the time.
struct RooflineChart {
    struct Point {
        var intensity: Double
        var gflops: Double
        var share: Double
        var bound: Roofline.Bound
        var title: String
    }

    var roofline: Roofline
    var points: [Point]
    var label: String
    var width = 860.0
    var height = 480.0

    func render() -> String {
        let ridge = roofline.ridgeIntensity, peak = roofline.peakGflops, bandwidth = roofline.bandwidthGBps
        let xs = points.map(\.intensity) + [ridge]
        let ys = points.map(\.gflops) + [peak]
        let xDomain = Ticks.decades((xs.min() ?? ridge) / 1.3, (xs.max() ?? ridge) * 1.3)
        let yDomain = Ticks.decades((ys.min() ?? peak) / 1.3, (ys.max() ?? peak) * 1.3)
        // One log scale per axis; PlotArea makes both logarithmic.
        let plot = PlotArea(width: width, height: height, margins: (top: 34, right: 24, bottom: 44, left: 64),
                            x: xDomain, y: yDomain, logarithmic: true)
        var out = SVG.open(width: width, height: height, label: label)
        out += plot.xAxis(title: "arithmetic intensity (FLOP/byte)")
        out += plot.yAxis(title: "achieved GFLOP/s")
        out += SVG.legend([("compute-bound", "compute", true), ("memory-bound", "memory", true)], x: plot.left, y: 18)

        // The memory roof starts where it enters the plot (left edge or bottom edge).
        let roofStart = max(xDomain.0, yDomain.0 / bandwidth)
        if roofStart < ridge {
            out += SVG.path([(plot.x(roofStart), plot.y(roofStart * bandwidth)), (plot.x(ridge), plot.y(peak))], cssClass: "roof")
        }
        out += SVG.path([(plot.x(ridge), plot.y(peak)), (plot.x(xDomain.1), plot.y(peak))], cssClass: "roof")
        out += SVG.line(plot.x(ridge), plot.y(peak), plot.x(ridge), plot.bottom, cssClass: "ridge")
        out += SVG.circle(x: plot.x(ridge), y: plot.y(peak), r: 4, cssClass: "peak",
                          title: String(format: "ridge point: %.2f FLOP/byte, %.1f GFLOP/s", ridge, peak))
        // Along the dashed drop line, clear of the roofs and of most points.
        let ridgeRight = plot.x(ridge) > (plot.left + plot.right) / 2
        out += SVG.text(String(format: "ridge %.2f FLOP/B", ridge), x: plot.x(ridge) + (ridgeRight ? -5 : 5), y: plot.bottom - 6,
                        anchor: ridgeRight ? "end" : "start", cssClass: "muted")
        out += SVG.text(String(format: "peak %.1f GFLOP/s", peak), x: plot.right - 4, y: plot.y(peak) - 6, anchor: "end")
        if roofStart < ridge {
            // Above the rising roof (nothing measured is there), lifted by as much as the
            // roof climbs under the text.
            let label = String(format: "%.1f GB/s", bandwidth)
            let x0 = plot.x(roofStart), y0 = plot.y(roofStart * bandwidth)
            let climb = (y0 - plot.y(peak)) / max(1, plot.x(ridge) - x0)
            out += SVG.text(label, x: x0 + 6, y: y0 - 6 - climb * (6 + Double(label.count) * 6.6))
        }
        // Largest first, so small points stay visible on top.
        for p in points.sorted(by: { $0.share > $1.share }) {
            let radius = 3 + 12 * max(0, p.share).squareRoot()
            out += SVG.circle(x: plot.x(p.intensity), y: plot.y(p.gflops), r: radius,
                              cssClass: "pt \(p.bound.rawValue)", title: p.title)
        }
        return out + "</svg>"
    }
}

/// Live activation bytes after each execution step as a step-shaped area, with the
/// planned arena as a dashed line and the peak marked and labelled.
struct MemoryTimelineChart {
    var liveBytes: [Int]
    var arenaBytes: Int
    /// Hover text per step (the node that ran); empty for none.
    var stepTitles: [String]
    var peakLabel: String
    var label: String
    var width = 1060.0
    var height = 300.0
    /// Above this many steps the per-step hover areas are left out (file size).
    static let maxHoverSteps = 2000

    func render() -> String {
        let steps = max(1, liveBytes.count)
        let largest = Double(max(1, arenaBytes, liveBytes.max() ?? 0)) * 1.08
        // Ticks at round numbers of the binary unit the labels use (KiB, MiB, ...).
        var unit = 1.0
        while largest / unit >= 1024 { unit *= 1024 }
        let top = Ticks.roundedUp(largest / unit)
        let plot = PlotArea(width: width, height: height, margins: (top: 26, right: 20, bottom: 44, left: 84),
                            x: (0, Double(steps)), y: (0, top * unit))
        var out = SVG.open(width: width, height: height, label: label)
        let stepTicks = Ticks.linear(0, Double(steps), count: 8).filter { $0 == $0.rounded() }
        out += plot.xAxis(title: "execution step", ticks: stepTicks, format: { String(Int($0)) })
        out += plot.yAxis(title: "live activations", ticks: Ticks.linear(0, top, count: 5).map { $0 * unit },
                          format: { Format.bytes(Int($0.rounded())) })

        var outline: [(Double, Double)] = [(plot.x(0), plot.y(0))]
        for (i, bytes) in liveBytes.enumerated() {
            outline.append((plot.x(Double(i)), plot.y(Double(bytes))))
            outline.append((plot.x(Double(i + 1)), plot.y(Double(bytes))))
        }
        outline.append((plot.x(Double(steps)), plot.y(0)))
        out += SVG.path(outline, cssClass: "live", closed: true)

        if arenaBytes > 0 {
            out += SVG.line(plot.left, plot.y(Double(arenaBytes)), plot.right, plot.y(Double(arenaBytes)), cssClass: "arena")
            out += SVG.text("planned arena " + Format.bytes(arenaBytes), x: plot.right - 4, y: plot.y(Double(arenaBytes)) - 5,
                            anchor: "end", cssClass: "muted")
        }
        if let peak = liveBytes.indices.max(by: { liveBytes[$0] < liveBytes[$1] }) {
            let px = plot.x(Double(peak) + 0.5), py = plot.y(Double(liveBytes[peak]))
            out += SVG.circle(x: px, y: py, r: 4, cssClass: "peak", title: peakLabel)
            let onRight = px > (plot.left + plot.right) / 2
            out += SVG.text(peakLabel, x: px + (onRight ? -8 : 8), y: max(plot.top + 10, py - 8), anchor: onRight ? "end" : "start")
        }
        if liveBytes.count <= Self.maxHoverSteps {
            for (i, title) in stepTitles.enumerated() where i < liveBytes.count {
                out += SVG.rect(x: plot.x(Double(i)), y: plot.top, width: plot.x(Double(i + 1)) - plot.x(Double(i)),
                                height: plot.bottom - plot.top, cssClass: "hover", title: title)
            }
        }
        return out + "</svg>"
    }
}
