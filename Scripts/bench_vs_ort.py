#!/usr/bin/env python3
"""Vernier against ONNX Runtime, side by side in one run: median latency ratio per model
(Vernier / ORT, lower is better) and the geometric mean, at each thread count.

    Scripts/bench_vs_ort.py [--threads 1,2] [--rounds 15] [--runs 8] [--models a,b]
                            [--report Reports/bench_vs_ort.md]

Rounds alternate Vernier and ORT on the same model and inputs (vernier run
--save-inputs), so machine noise hits both alike; each round takes the median of --runs
timed runs after warm-up, and the ratio uses the median over rounds (a second ratio, of
each side's fastest round, is the one least moved by other load on a shared machine).
Many short rounds rather than a few long ones: on a machine whose speed switches between
states for seconds at a time, a round of 20 ResNet-50 runs often fell in one state and the
next side's round in the other (ResNet-50 at 2 threads read 1.29 with 5 rounds of 20 runs,
0.99 minutes later with 15 rounds of 8).

The paired ratio is the median over rounds of each Vernier round's median against the
mean of the ORT rounds just before and just after it (ORT runs once more before the
first round), so each ratio compares runs less than a second apart. Within one ORT
process, batches of 40 YOLO runs read 10.0 ms for several seconds, then 13.5 ms, then
10.0 again: medians over all rounds compare the two sides' shares of slow seconds as
much as the runtimes (YOLO at 1 thread: 1.53 by medians, 1.14 by best rounds in one
run). The geometric means are given for all three ratios. ORT runs with
ORT_ENABLE_ALL and the same intra-op thread count. Also checks Vernier's peak RSS
against weights + planned arena + 64 MB, and reports start-up: Vernier's load (with
shape inference) plus plan time from `vernier run --repeat` (median over rounds) beside
the time ONNX Runtime takes to create its session.

The models are the real exports of Scripts/make_real_models.sh (made when missing);
BERT-base runs at batch 1, sequence 128. Needs the venv of Scripts/setup."""
import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.environ.get("VERNIER_REAL_MODELS_DIR", os.path.join(ROOT, ".build-models"))
# Issue 7's list: CNNs, a BERT-base encoder at sequence 128, ViT-B/16, a YOLO-style
# detector at 320x320 and an OCR detector at 640x640 (Resize, ConvTranspose, HardSigmoid).
DEFAULT_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x1_0",
                  "squeezenet1_0", "densenet121", "bert_base", "vit_b_16", "yolo_small", "ocr_det_db"]
# Dynamic dims of the exports: batch 1 everywhere, BERT at sequence 128.
BINDINGS = {"bert_base": ["--dim", "batch=1", "--dim", "seq=128"], "bert_base_int8_qdq": ["--dim", "batch=1", "--dim", "seq=128"],
            "yolo_small": [], "ocr_det_db": []}
LINE = re.compile(r"latency: median ([0-9.]+) ms.*arena ([0-9.]+) MB, weights ([0-9.]+) MB, peak RSS ([0-9.]+) MB")
STARTUP = re.compile(r"start-up: load and infer ([0-9.]+) ms, plan ([0-9.]+) ms")


def vernier_binary():
    flags = ["-c", "release", "-Xswiftc", "-target-cpu", "-Xswiftc", "native", "-Xcc", "-march=native"]
    subprocess.run(["swift", "build", *flags, "--product", "vernier"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    path = subprocess.run(["swift", "build", *flags, "--show-bin-path"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    return os.path.join(path, "vernier")


def run_vernier(binary, model, name, threads, runs, inputs_path, save_inputs):
    cmd = [binary, "run", model, "--threads", str(threads), "--show", "0", "--repeat", str(runs), "--warmup", "3",
           *BINDINGS.get(name, ["--dim", "batch=1"])]
    cmd += ["--save-inputs", inputs_path] if save_inputs else ["--input-data", inputs_path]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    match = LINE.search(done.stderr)
    if not match:
        raise RuntimeError("no latency line in: " + done.stderr)
    median, arena, weights, rss = (float(g) for g in match.groups())
    startup = STARTUP.search(done.stderr)
    load_and_plan = sum(float(g) for g in startup.groups()) if startup else float("nan")
    return median, arena, weights, rss, load_and_plan


def ort_session(model, threads):
    """The session and the seconds its creation took (load, graph optimizations, kernels)."""
    start = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session, time.perf_counter() - start


def time_ort(session, feeds, runs):
    for _ in range(3):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--report", default=os.path.join(ROOT, "Reports", "bench_vs_ort.md"))
    args = parser.parse_args()
    names = args.models.split(",")
    missing = [n for n in names if not os.path.exists(os.path.join(MODELS_DIR, n + ".onnx"))]
    if missing:
        subprocess.run([os.path.join(ROOT, "Scripts", "make_real_models.sh"), "--only", ",".join(missing)], check=True)
    binary = vernier_binary()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [f"# Vernier vs ONNX Runtime {ort.__version__}", "",
             f"Machine: {cpu}, {os.cpu_count()} cores. Commit {commit or 'unknown'}. {args.rounds} alternating rounds "
             f"x {args.runs} timed runs; ratio = Vernier median / ORT median (lower is better); paired ratio = "
             "median over rounds of Vernier's round against the mean of ORT's rounds just before and after it. "
             "best rounds = Vernier's fastest round / ORT's fastest round: other load on a shared machine only "
             "slows runs down, so it is the figure least moved by it.", ""]
    status = 0
    with tempfile.TemporaryDirectory() as work:
        for threads in [int(t) for t in args.threads.split(",")]:
            lines += [f"## {threads} thread{'s' if threads > 1 else ''}", "",
                      "| model | Vernier ms | ORT ms | ratio | paired ratio | best rounds | peak RSS MB "
                      "| weights + arena + 64 MB | start-up ms: Vernier load + plan / ORT session |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            ratios, paired_ratios, best_ratios = [], [], []
            for name in names:
                model = os.path.join(MODELS_DIR, name + ".onnx")
                inputs_path = os.path.join(work, name + ".npz")
                try:
                    run_vernier(binary, model, name, threads, 1, inputs_path, save_inputs=True)
                    feeds = dict(np.load(inputs_path))
                    session, ort_startup = ort_session(model, threads)
                    ours, memory, startups = [], None, []
                    # theirs[i] and theirs[i + 1] are ORT's rounds just before and after ours[i].
                    theirs = [time_ort(session, feeds, args.runs)]
                    for _ in range(args.rounds):
                        median, arena, weights, rss, startup = run_vernier(binary, model, name, threads, args.runs,
                                                                           inputs_path, False)
                        ours.append(median)
                        startups.append(startup)
                        memory = (arena, weights, rss)
                        theirs.append(time_ort(session, feeds, args.runs))
                except Exception as error:  # report and go on with the next model
                    print(f"{name}: {error}", file=sys.stderr)
                    lines.append(f"| {name} | error | | | | | | | |")
                    status = 1
                    continue
                v, o = statistics.median(ours), statistics.median(theirs)
                ratios.append(v / o)
                paired = statistics.median(ours[i] / ((theirs[i] + theirs[i + 1]) / 2) for i in range(len(ours)))
                paired_ratios.append(paired)
                best = min(ours) / min(theirs)
                best_ratios.append(best)
                arena, weights, rss = memory
                bar = weights + arena + 64
                lines.append(f"| {name} | {v:.2f} | {o:.2f} | {v / o:.2f} | {paired:.2f} | {best:.2f} | {rss:.0f} "
                             f"| {bar:.0f}{'' if rss <= bar else ' (over)'} "
                             f"| {statistics.median(startups):.0f} / {ort_startup * 1000:.0f} |")
                print(lines[-1], flush=True)
            if ratios:
                def geomean(values):
                    return math.exp(sum(math.log(r) for r in values) / len(values))
                lines += ["", f"Geometric mean ratio at {threads} thread(s) over {len(ratios)} models: "
                          f"**{geomean(ratios):.2f}** by medians, **{geomean(paired_ratios):.2f}** paired "
                          f"(highest model {max(paired_ratios):.2f}), {geomean(best_ratios):.2f} by best rounds.", ""]
                print(lines[-2], flush=True)
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    with open(args.report, "w") as f:
        f.write("\n".join(lines) + "\n")
    sys.exit(status)


if __name__ == "__main__":
    main()
