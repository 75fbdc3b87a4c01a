#!/usr/bin/env python3
"""Runs each model on Vernier and on ONNX Runtime with the same inputs and compares the
outputs: max |vernier - ort| <= tol * max |ort| per fp32 output (integer outputs exact).

    Scripts/compare_ort.py MODEL.onnx [MODEL.onnx ...] [--dim SYM=N ...] [--input NAME=DIMS ...]
    (a --dim applies to the models whose inputs use that symbol)
                           [--tol 1e-4] [--vernier PATH] [--threads N]

Vernier makes the inputs (`vernier run --save-inputs`, fixed seed) and ORT is fed the
same .npz. Exit 0 when every model agrees, 1 when one differs, 2 when one fails to run.

--fused-int8 (quantized QDQ models): the reference is ORT running the graph as written
(no optimizations), and an output agrees when Vernier is no further from it than
--fusion-slack (1.5) times ORT's own optimized run, which fuses Q/DQ into int8 kernels
that round differently. On random-weight transformers that distance is large: ORT's fused
ViT-B/16 int8 is 16% of the largest output away from its literal graph, BERT-base 7.3%.
Needs the venv of Scripts/setup (numpy, onnxruntime)."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def distance(got, ref):
    """(max |got - ref|, that over max |ref|); the plain difference twice when ref is all zeros."""
    if not ref.size:
        return 0.0, 0.0
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
    return diff, (diff / scale if scale > 0 else diff)


def compare(model, args, workdir):
    stem = os.path.splitext(os.path.basename(model))[0]
    inputs_path = os.path.join(workdir, stem + ".inputs.npz")
    outputs_path = os.path.join(workdir, stem + ".outputs.npz")
    cmd = [args.vernier, "run", model, "--save-inputs", inputs_path, "--save-outputs", outputs_path,
           "--threads", str(args.threads), "--show", "0"]
    # Each --dim goes to the models that have that symbol (vernier refuses others).
    symbols = {d.dim_param for i in onnx.load(model, load_external_data=False).graph.input
               for d in i.type.tensor_type.shape.dim if d.dim_param}
    for d in args.dim:
        if d.split("=")[0] in symbols:
            cmd += ["--dim", d]
    for i in args.input:
        cmd += ["--input", i]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        return "error", run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"
    feeds = dict(np.load(inputs_path))
    ours = dict(np.load(outputs_path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    if args.literal or args.fused_int8:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, feeds)))
    allowed = {name: args.tol for name in names}
    if args.fused_int8:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        fused_session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        fused = dict(zip(names, fused_session.run(names, feeds)))
        for name in names:
            ref = np.asarray(theirs[name])
            if ref.dtype.kind == "f" and ref.size:
                allowed[name] = max(args.tol, args.fusion_slack * distance(np.asarray(fused[name]), ref)[1])
    worst = 0.0
    problems = []
    for name in names:
        ref, got = np.asarray(theirs[name]), ours.get(name)
        if got is None:
            problems.append(f"{name}: missing from Vernier's outputs")
            continue
        if got.shape != ref.shape:
            problems.append(f"{name}: shape {got.shape}, ORT {ref.shape}")
            continue
        if ref.dtype.kind == "f":
            diff, rel = distance(got, ref)
            worst = max(worst, rel)
            if not rel <= allowed[name]:
                problems.append(f"{name}: max|diff| = {diff:.3g} = {rel:.3g} x max|ref| (limit {allowed[name]:.3g})")
        elif not np.array_equal(got, ref):
            problems.append(f"{name}: {int(np.sum(got != ref))} of {ref.size} values differ")
    if problems:
        return "differs", "; ".join(problems)
    return "ok", f"max|diff| = {worst:.2e} x max|ref| over {len(names)} output(s)"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--dim", action="append", default=[])
    parser.add_argument("--input", action="append", default=[])
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--literal", action="store_true",
                        help="run ORT without graph optimizations (QDQ models: ORT otherwise fuses Q/DQ into int8 "
                             "kernels that round differently from the graph as written)")
    parser.add_argument("--fused-int8", action="store_true",
                        help="quantized models: compare with ORT's literal graph, allowing 1.5x (--fusion-slack) the "
                             "distance of ORT's own fused int8 run from it")
    parser.add_argument("--fusion-slack", type=float, default=1.5)
    parser.add_argument("--vernier", default=os.path.join(ROOT, ".build", "release", "vernier"))
    args = parser.parse_args()
    status = 0
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models:
            verdict, detail = compare(model, args, workdir)
            print(f"{verdict:8} {os.path.basename(model)}: {detail}", flush=True)
            if verdict == "error":
                status = max(status, 2)
            elif verdict == "differs":
                status = max(status, 1)
    sys.exit(status)


if __name__ == "__main__":
    main()
