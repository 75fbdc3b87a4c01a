#!/bin/sh
''''exec "$(dirname "$0")/../.venv/bin/python" "$0" "$@" # '''
"""Load benchmark: a VGG-style model of about 500 MB (random weights, fixed seed) is
written to .build-models/vgg_500mb.onnx, then `vernier summary` runs on it under
/usr/bin/time; prints wall time and peak RSS against the file size.

The loader's target: under 1 s and peak RSS under 1.3x the file size (weights are
memory-mapped, never copied).

Usage: Scripts/bench_load.py [--binary PATH] [--size-mb 500]
"""
import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_model(path, size_mb):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    channels = [3, 64, 128, 256, 512, 512]
    x = "input"
    for i in range(len(channels) - 1):
        w = rng.standard_normal((channels[i + 1], channels[i], 3, 3), dtype=np.float32)
        inits.append(numpy_helper.from_array(w, f"conv{i}.w"))
        nodes.append(helper.make_node("Conv", [x, f"conv{i}.w"], [f"conv{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        nodes.append(helper.make_node("MaxPool", [f"relu{i}"], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
        x = f"pool{i}"
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    features = 512 * 7 * 7
    used = sum(t.ByteSize() for t in inits)
    # Fully connected layers make up the rest of the size, as in VGG.
    hidden = max(1024, int((size_mb * 1e6 - used) / 4 / (features + 1000)))
    w1 = rng.standard_normal((features, hidden), dtype=np.float32)
    w2 = rng.standard_normal((hidden, 1000), dtype=np.float32)
    inits += [numpy_helper.from_array(w1, "fc1.w"), numpy_helper.from_array(w2, "fc2.w")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc1.w"], ["fc1"]))
    nodes.append(helper.make_node("Relu", ["fc1"], ["fc1r"]))
    nodes.append(helper.make_node("Gemm", ["fc1r", "fc2.w"], ["logits"]))
    graph = helper.make_graph(nodes, "vgg_like",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(root, ".build/release/vernier"))
    parser.add_argument("--size-mb", type=int, default=500)
    args = parser.parse_args()
    out = os.path.join(root, ".build-models")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"vgg_{args.size_mb}mb.onnx")
    if not os.path.exists(path):
        make_model(path, args.size_mb)
    size = os.path.getsize(path)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-v", args.binary, "summary", path, "--format", "json"],
                                capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"vernier failed: {result.stderr}")
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
        runs.append((wall, rss_kb * 1024))
    wall = sorted(r[0] for r in runs)[len(runs) // 2]
    rss = max(r[1] for r in runs)
    print(f"model       {path}")
    print(f"file size   {size / 1e6:.1f} MB")
    print(f"wall time   {wall * 1000:.0f} ms (median of {len(runs)}, whole process: load, validate, infer, cost, print)")
    print(f"peak RSS    {rss / 1e6:.1f} MB = {rss / size:.3f} x file size")


if __name__ == "__main__":
    main()
