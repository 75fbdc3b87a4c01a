#!/usr/bin/env python3
"""Issue 7's per-layer table: how close each kernel of the real models comes to the
measured roofline of this machine.

    Scripts/roofline_distribution.py [--threads 1,2] [--models a,b] [--from DIR]
                                     [--report Reports/roofline_distribution.md]

Profiles every model with `vernier profile --format json` (or reads DIR/NAME.tT.json,
e.g. the profiles of Scripts/prediction_accuracy.sh in .build-accuracy/vernier), then
sorts the kernels into the issue's two families:
  - compute: Conv/ConvTranspose/Gemm/MatMul kernels whose intensity is above the ridge
    point (profile `bound` = compute); target >= 70% of the measured compute roof;
  - memory: element-wise, normalization and data-movement kernels whose tensors
    (bytes read + written) exceed the L2 cache; target >= 60% of the measured bandwidth.
For each family and thread count: the distribution of % of roof (kernel count and share
of the family's time per band), the share meeting the target, and the kernels below it
that cost the most time. Every table comes twice: on each kernel's median time (what the
profile reports) and on its fastest run. The roofs are best-of-batches figures (the
fastest of several timed batches), so the fastest run compares like with like; other
work on a shared machine only slows kernels down. Needs a quiet machine and the venv of
Scripts/setup."""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.environ.get("VERNIER_REAL_MODELS_DIR", os.path.join(ROOT, ".build-models"))
sys.path.insert(0, os.path.join(ROOT, "Scripts"))
from bench_vs_ort import DEFAULT_MODELS, BINDINGS, vernier_binary  # noqa: E402

COMPUTE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
MEMORY_CLASSES = {"elementwise", "normalization", "data_movement"}
BANDS = [(0, 30), (30, 50), (50, 70), (70, 90), (90, float("inf"))]
TARGETS = {"compute": 70.0, "memory": 60.0}


def l2_bytes():
    try:
        text = open("/sys/devices/system/cpu/cpu0/cache/index2/size").read().strip()
        return int(text[:-1]) * 1024 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return 512 * 1024


def profile(binary, name, threads, folder):
    """The profile of `name`: measured now with `binary`, or read from `folder` (--from)
    when there is no binary (a rerun must not reuse an earlier build's profiles)."""
    path = os.path.join(folder, f"{name}.t{threads}.json")
    if binary is None:
        return json.load(open(path))
    model = os.path.join(MODELS_DIR, f"{name}.onnx")
    cmd = [binary, "profile", model, "--threads", str(threads), "--runs", "10", "--min-time", "1",
           "--format", "json", "-o", path, *BINDINGS.get(name, ["--dim", "batch=1"])]
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr.strip()}")
    return json.load(open(path))


def provenance(folder):
    """Where --from profiles came from. Scripts/prediction_accuracy.sh measures every
    model in several interleaved passes and keeps each model's fastest pass there; it
    records the commit and the passes beside them (../passes). The roofs are the best of
    several timed batches, so the fastest pass is the like-for-like figure to set
    against them on a machine whose speed shifts for seconds at a time."""
    passes = os.path.join(os.path.dirname(os.path.abspath(folder)), "passes")
    try:
        commit = open(os.path.join(passes, "COMMIT")).read().strip()
    except OSError:
        commit = None
    count = len([f for f in os.listdir(passes) if f.startswith("resnet18.t1.p")]) if os.path.isdir(passes) else 0
    text = f"read from {os.path.relpath(folder, ROOT)}"
    if commit:
        text += (f", measured by commit {commit} in {count} interleaved passes of Scripts/prediction_accuracy.sh, each "
                 "model's fastest pass kept (the roofs, too, are the best of several timed batches).")
    else:
        text += " (made elsewhere; their commit is not recorded)."
    return text


def family(row, l2):
    if row.get("roofline_pct") is None:
        return None
    if row["op"] in COMPUTE_OPS and row.get("bound") == "compute":
        return "compute"
    if row.get("op_class") in MEMORY_CLASSES and row.get("bound") == "memory" \
            and row["bytes_read"] + row["bytes_written"] > l2:
        return "memory"
    return None


def table(kernels, fam):
    rows = [k for k in kernels if k["family"] == fam]
    total = sum(k["ms"] for k in rows) or 1
    lines = ["| % of roof | kernels | share of the family's time |", "|---|---:|---:|"]
    for low, high in BANDS:
        band = [k for k in rows if low <= k["pct"] < high]
        label = f">= {low}%" if high == float("inf") else f"{low}-{high}%"
        lines.append(f"| {label} | {len(band)} | {sum(k['ms'] for k in band) / total * 100:.1f}% |")
    meeting = [k for k in rows if k["pct"] >= TARGETS[fam]]
    summary = (f"{len(meeting)} of {len(rows)} kernels ({sum(k['ms'] for k in meeting) / total * 100:.1f}% of the "
               f"family's time) reach the target of {TARGETS[fam]:.0f}%.")
    worst = sorted((k for k in rows if k["pct"] < TARGETS[fam]), key=lambda k: -k["ms"])[:8]
    detail = ["| model | kernel | op | ms | % of roof |", "|---|---|---|---:|---:|"]
    detail += [f"| {k['model']} | {k['name']} | {k['op']} | {k['ms']:.3f} | {k['pct']:.0f}% |" for k in worst]
    return lines, summary, detail


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--from", dest="source", default=None)
    parser.add_argument("--report", default=os.path.join(ROOT, "Reports", "roofline_distribution.md"))
    args = parser.parse_args()
    folder = args.source or os.path.join(ROOT, ".build-roofline")
    os.makedirs(folder, exist_ok=True)
    binary = None if args.source else vernier_binary()
    l2 = l2_bytes()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = ["# Per-layer distance to the roofline", "",
           f"Produced by `Scripts/roofline_distribution.py` (commit {commit}). Compute family: Conv/ConvTranspose/Gemm/"
           "MatMul kernels above the ridge point, target >= 70% of the measured compute roof. Memory family: "
           f"element-wise, normalization and data-movement kernels moving more than the L2 cache ({l2 // 1024} KiB), "
           "target >= 60% of the measured bandwidth. Roofs: `vernier device --show host` (measured by "
           "`vernier device --measure`). Models: " + ", ".join(args.models.split(",")) + ". Profiles: "
           + (provenance(args.source) if args.source else "one `vernier profile` per model and thread count, made by this run.")]
    for threads in [int(t) for t in args.threads.split(",")]:
        kernels = []
        roof = None
        for name in args.models.split(","):
            data = profile(binary, name, threads, folder)
            device = data.get("device") or {}
            roof = roof or (device.get("peak_gflops"), device.get("bandwidth_gbps"))
            for row in data["nodes"]:
                fam = family(row, l2)
                if fam:
                    latency = row["latency_ms"]
                    kernels.append({"model": name, "name": row["name"], "op": row["op"], "family": fam,
                                    "median": (latency["median"], row["roofline_pct"]),
                                    # The same work in the fastest run's time.
                                    "min": (latency["min"], row["roofline_pct"] * latency["median"] / latency["min"]
                                            if latency["min"] > 0 else 0)})
        out += ["", f"## {threads} thread(s)", ""]
        if roof and roof[0]:
            out += [f"Roofs: {roof[0]} GFLOP/s, {roof[1]} GB/s.", ""]
        for statistic, label in (("median", "median times"), ("min", "fastest runs")):
            view = [dict(k, ms=k[statistic][0], pct=k[statistic][1]) for k in kernels]
            for fam, title in (("compute", "Compute-bound Conv / Gemm / MatMul"),
                               ("memory", "Memory-bound kernels beyond L2")):
                lines, summary, detail = table(view, fam)
                out += [f"### {title}, on {label}", "", *lines, "", summary, "", "Below the target, by time:", "",
                        *detail, ""]
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    with open(args.report + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(args.report + ".tmp", args.report)
    print("\n".join(out))


if __name__ == "__main__":
    main()
