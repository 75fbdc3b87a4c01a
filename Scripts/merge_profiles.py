#!/usr/bin/env python3
"""Merges several `vernier profile --format json` files of one model (passes measured at
different times) into one: each kernel's and the end-to-end latency statistics become
the median over the passes' medians (and p90s), so a machine that speeds up or slows
down between passes affects every model alike when passes interleave the models.

    Scripts/merge_profiles.py OUT.json PASS1.json PASS2.json ..."""
import json
import statistics
import sys


def merged_stats(stats):
    out = dict(stats[0])
    for key in ("median", "p90", "p99", "min", "max", "mean", "stdev"):
        values = [s[key] for s in stats if s and s.get(key) is not None]
        if values:
            out[key] = statistics.median(values)
    out["count"] = sum(s.get("count", 0) for s in stats if s)
    return out


def main():
    out_path, paths = sys.argv[1], sys.argv[2:]
    passes = [json.load(open(p)) for p in paths]
    base = passes[0]
    names = [n["name"] for n in base["nodes"]]
    for p in passes[1:]:
        if [n["name"] for n in p["nodes"]] != names:
            sys.exit(f"{out_path}: the passes have different kernels")
    for i, node in enumerate(base["nodes"]):
        node["latency_ms"] = merged_stats([p["nodes"][i]["latency_ms"] for p in passes])
    totals = base["totals"]
    totals["latency_ms"] = merged_stats([p["totals"]["latency_ms"] for p in passes])
    node_sum = sum(n["latency_ms"]["median"] for n in base["nodes"])
    totals["node_sum_ms"] = node_sum
    for n in base["nodes"]:
        n["share"] = n["latency_ms"]["median"] / node_sum if node_sum > 0 else 0
    base["notes"] = base.get("notes", []) + [f"merged from {len(passes)} passes (median of the passes' figures)"]
    with open(out_path, "w") as f:
        json.dump(base, f)


if __name__ == "__main__":
    main()
