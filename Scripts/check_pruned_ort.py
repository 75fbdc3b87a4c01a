#!/usr/bin/env python3
"""Loads an original model and its pruned variant in ONNX Runtime, runs both on the
same random inputs and checks that the pruned one has the same outputs (names, shapes,
types). Also runs onnx.checker (full check) on the pruned model.

    Scripts/check_pruned_ort.py ORIGINAL.onnx PRUNED.onnx [--dim SYM=N ...]

Symbolic dims default to 1 (batch) or 128 (anything else). Exit 0 when the pruned model
loads, runs and keeps the output shapes; 1 otherwise."""
import argparse
import sys

import numpy as np
import onnx
import onnxruntime as ort


def feeds_for(session, dims):
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else dims.get(d, 1 if d == "batch" else 128) for d in i.shape]
        if "int" in i.type:
            # Token ids and masks: small non-negative values are valid for every embedding.
            feeds[i.name] = (np.ones(shape) if "mask" in i.name else rng.integers(0, 100, size=shape)).astype(np.int64)
        else:
            feeds[i.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
    return feeds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("original")
    parser.add_argument("pruned")
    parser.add_argument("--dim", action="append", default=[])
    args = parser.parse_args()
    dims = {k: int(v) for k, v in (d.split("=") for d in args.dim)}
    onnx.checker.check_model(onnx.load(args.pruned), full_check=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    a = ort.InferenceSession(args.original, options, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(args.pruned, options, providers=["CPUExecutionProvider"])
    feeds = feeds_for(a, dims)
    ra = a.run(None, feeds)
    rb = b.run(None, feeds)
    names_a = [o.name for o in a.get_outputs()]
    names_b = [o.name for o in b.get_outputs()]
    problems = []
    if names_a != names_b:
        problems.append(f"output names {names_a} vs {names_b}")
    for name, x, y in zip(names_a, ra, rb):
        if x.shape != y.shape or x.dtype != y.dtype:
            problems.append(f"{name}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
        elif not np.all(np.isfinite(y)):
            problems.append(f"{name}: non-finite values")
    shapes = ", ".join(f"{n}{list(x.shape)}" for n, x in zip(names_b, rb))
    if problems:
        print(f"FAIL {args.pruned}: " + "; ".join(problems))
        return 1
    print(f"ok   {args.pruned}: checker ok, ORT loads and runs, outputs {shapes} as the original")
    return 0


if __name__ == "__main__":
    sys.exit(main())
