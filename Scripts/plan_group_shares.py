#!/usr/bin/env python3
"""Per-group time shares of the plans Scripts/plan_check.sh made: for each plan JSON
(`vernier plan --format json`), the channel groups that were cut, with the share of the
original's kernel time in the kernels touching each group, and the same share of the
variant's kernel time as predicted (device model anchored to the original) and as
measured. Prints a Markdown section.

    Scripts/plan_group_shares.py PLAN.json [PLAN.json ...]"""
import json
import os
import sys


def main():
    out = ["## Per-group time shares of the cut groups", "",
           "Share of the kernel time spent in the kernels that read or write a group's channels: in the original, "
           "and in the variant as predicted and as measured (kernels touched by several groups count for each). "
           "Error: predicted minus measured share, in percentage points.", ""]
    for path in sys.argv[1:]:
        plan = json.load(open(path))
        name = os.path.basename(path).replace(".plan.json", "")
        cut = [g for g in plan.get("groups", []) if g["kept"] < g["channels"]]
        pairs = [(g["variant_predicted_share"], g["variant_measured_share"]) for g in cut
                 if g.get("variant_predicted_share") is not None and g.get("variant_measured_share") is not None]
        if not pairs:
            out += [f"### {name}", "", "no cut group with both shares (nothing cut, or not measured)", ""]
            continue
        errors = [abs(p - m) * 100 for p, m in pairs]
        out += [f"### {name}", "",
                f"{len(cut)} groups cut; predicted vs measured share: mean error {sum(errors) / len(errors):.1f} pp, "
                f"largest {max(errors):.1f} pp.", "",
                "| group | channels | kept | original share | variant predicted | variant measured | error (pp) |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for g in sorted(cut, key=lambda g: -(g.get("variant_measured_share") or 0))[:10]:
            p, m = g.get("variant_predicted_share"), g.get("variant_measured_share")
            def pct(v):
                return f"{v * 100:.1f}%" if v is not None else ""
            err = f"{(p - m) * 100:+.1f}" if p is not None and m is not None else ""
            out.append(f"| {g['name']} | {g['channels']} | {g['kept']} | {pct(g.get('time_share'))} | {pct(p)} | {pct(m)} | {err} |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
