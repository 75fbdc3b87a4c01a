/// Escaping and the fixed parts (style sheet, table-sorting script) of the HTML report.
enum HTML {
    /// `s` safe as element text and as a quoted attribute value. Model files name their
    /// nodes and values freely, so every such string goes through here.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Light, compact styling; tables and charts shrink or scroll in a narrow window.
    static let styleSheet = """
        :root { --fg: #1d2433; --muted: #5b6475; --line: #dde2ea; --panel: #f5f7fa; --accent: #2f6fdf;
                --compute: #2f6fdf; --memory: #e07b24; --better: #1a7f37; --worse: #c62828; }
        * { box-sizing: border-box; }
        body { margin: 0; color: var(--fg); background: #fff;
               font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
        main { max-width: 1220px; margin: 0 auto; padding: 12px 18px 48px; }
        h1 { font-size: 1.5rem; margin: .5em 0 .3em; word-break: break-all; }
        h2 { font-size: 1.2rem; margin: 1.6em 0 .5em; padding-bottom: .2em; border-bottom: 1px solid var(--line); }
        h3 { font-size: 1.05rem; margin: 1.4em 0 .4em; }
        summary h2 { display: inline; border: 0; margin: 0; padding: 0; }
        details { border-top: 1px solid var(--line); padding: 6px 0; }
        details > summary { cursor: pointer; padding: 6px 0; }
        p.note, .muted { color: var(--muted); }
        code { font-size: .92em; background: var(--panel); padding: 0 3px; border-radius: 3px; }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px; margin: 8px 0 12px; }
        .card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
        .card .k { color: var(--muted); font-size: .8rem; }
        .card .v { font-size: 1.2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
        .card .s { color: var(--muted); font-size: .8rem; }
        dl.kv { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 16px; margin: 8px 0; }
        dl.kv dt { color: var(--muted); }
        dl.kv dd { margin: 0; overflow-wrap: anywhere; }
        .scroll { overflow-x: auto; max-width: 100%; }
        table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
        th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; vertical-align: top; }
        th { background: var(--panel); font-weight: 600; }
        .n { text-align: right; }
        tbody tr:hover { background: #eef3fb; }
        table[data-sortable="ready"] th { cursor: pointer; user-select: none; }
        table[data-sortable="ready"] th:hover { background: #e8edf5; }
        th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
        th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
        .better { color: var(--better); }
        .worse { color: var(--worse); }
        .partial { background: #fff4e5; border: 1px solid #f0c36d; padding: 6px 10px; border-radius: 6px; }
        svg.chart { display: block; max-width: 100%; min-width: 560px; height: auto; margin: 6px 0;
                    font-family: inherit; font-size: 12px; }
        svg.chart text { fill: var(--fg); }
        svg.chart text.muted { fill: var(--muted); }
        svg.chart .grid { stroke: #e8ebf0; stroke-width: 1; }
        svg.chart .axis { stroke: #8a93a3; stroke-width: 1; }
        svg.chart .roof { stroke: #1d2433; stroke-width: 2; fill: none; }
        svg.chart .ridge { stroke: #8a93a3; stroke-dasharray: 4 3; }
        svg.chart .arena { stroke: #c62828; stroke-dasharray: 5 4; }
        svg.chart .live { fill: #2f6fdf; fill-opacity: .18; stroke: #2f6fdf; stroke-width: 1.5; }
        svg.chart .hover { fill: transparent; }
        svg.chart .hover:hover { fill: rgba(47, 111, 223, .12); }
        svg.chart .peak { fill: #c62828; }
        svg.chart .pt { fill-opacity: .72; stroke: #fff; stroke-width: 1; }
        svg.chart .compute { fill: var(--compute); }
        svg.chart .memory { fill: var(--memory); }
        svg.chart .s0 { fill: #2f6fdf; } svg.chart .s1 { fill: #e07b24; } svg.chart .s2 { fill: #2a9d8f; }
        svg.chart .s3 { fill: #8e5bd0; } svg.chart .s4 { fill: #c94f7c; } svg.chart .s5 { fill: #6b7280; }
        footer { margin-top: 32px; color: var(--muted); font-size: .85rem; }
        """

    /// Sorts `table.sortable` by a clicked header: numbers by their `data-v`, text by its
    /// content; a second click reverses. The table is complete without it. It marks each
    /// table `data-sortable="ready"`, which the browser check looks for.
    static let sortScript = """
        (function () {
          function key(row, i, numeric) {
            var cell = row.cells[i];
            if (!cell) return numeric ? -Infinity : "";
            if (!numeric) return cell.textContent;
            var v = parseFloat(cell.getAttribute("data-v"));
            return isNaN(v) ? -Infinity : v;
          }
          document.querySelectorAll("table.sortable").forEach(function (table) {
            var heads = table.tHead.rows[0].cells;
            Array.prototype.forEach.call(heads, function (th, i) {
              var numeric = th.classList.contains("n");
              function sort() {
                var current = th.getAttribute("aria-sort");
                // Numbers start largest first (the slowest layers), text A to Z.
                var ascending = current ? current === "descending" : !numeric;
                Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
                th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
                var body = table.tBodies[0];
                var rows = Array.prototype.slice.call(body.rows);
                rows.sort(function (a, b) {
                  var x = key(a, i, numeric), y = key(b, i, numeric);
                  var c = numeric ? (x < y ? -1 : x > y ? 1 : 0) : String(x).localeCompare(String(y));
                  return ascending ? c : -c;
                });
                rows.forEach(function (r) { body.appendChild(r); });
              }
              th.tabIndex = 0;
              th.title = "Sort by " + th.textContent;
              th.addEventListener("click", sort);
              th.addEventListener("keydown", function (e) {
                if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
              });
            });
            table.setAttribute("data-sortable", "ready");
          });
        })();
        """
}
