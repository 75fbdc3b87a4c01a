#!/usr/bin/env python3
"""ONNX Runtime profiler traces of models, for `vernier device --calibrate` / `--accuracy`.

    Scripts/ort_profile.py --out DIR --threads T MODEL.onnx...

Runs each model in ONNX Runtime (ORT_ENABLE_ALL, T intra-op threads, sequential) with
profiling on, for at least --runs runs and --min-time seconds, and writes the trace as
DIR/<model>.t<T>.json (the model name is the file stem). Dynamic dims are bound to
batch 1 and sequence 128; integer inputs are fed ones, float inputs uniform noise
(fixed seed). Vernier drops the first run of each trace (warm-up)."""
import argparse
import os
import shutil
import time

import numpy as np
import onnxruntime as ort

DIMS = {"batch": 1, "batch_size": 1, "seq": 128, "sequence": 128, "sequence_length": 128}


def feeds_for(session, rng):
    feeds = {}
    for info in session.get_inputs():
        shape = [d if isinstance(d, int) else DIMS.get(str(d), 1) for d in info.shape]
        if "int" in info.type:
            dtype = np.int64 if "int64" in info.type else np.int32
            feeds[info.name] = np.ones(shape, dtype=dtype)
        else:
            feeds[info.name] = rng.random(shape, dtype=np.float32)
    return feeds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(1234)
    for path in args.models:
        name = os.path.splitext(os.path.basename(path))[0]
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(args.out, f"ort_tmp_{name}")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feeds = feeds_for(session, rng)
        start, runs = time.perf_counter(), 0
        while runs < args.runs + 1 or time.perf_counter() - start < args.min_time:
            session.run(None, feeds)
            runs += 1
            if runs >= 2000:
                break
        trace = session.end_profiling()
        target = os.path.join(args.out, f"{name}.t{args.threads}.json")
        shutil.move(trace, target)
        print(f"{name}: {runs} runs -> {target}")


if __name__ == "__main__":
    main()
