#!/usr/bin/env python3
"""Writes the small NumPy files the tests read (Tests/Fixtures/numpy), with numpy itself,
so the .npy/.npz reader is checked against NumPy's own writer. Values are arange-based:
the Swift test recomputes them independently."""
import os
import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "numpy")
os.makedirs(out, exist_ok=True)
arrays = {
    "f32": np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5,
    "f64": np.arange(5, dtype=np.float64) - 2.5,
    "f16": np.arange(6, dtype=np.float16).reshape(3, 2),
    "i64": np.arange(7, dtype=np.int64) * -3,
    "i32": np.arange(4, dtype=np.int32).reshape(2, 2),
    "u8": np.arange(10, dtype=np.uint8),
    "b": np.array([True, False, True]),
    "scalar": np.array(7.25, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
}
np.savez(os.path.join(out, "stored.npz"), **arrays)
np.savez_compressed(os.path.join(out, "deflated.npz"), **arrays)
np.save(os.path.join(out, "single.npy"), arrays["f32"])
np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(arrays["f32"]))
