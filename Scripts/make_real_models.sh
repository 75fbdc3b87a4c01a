#!/usr/bin/env bash
# Exports real networks (torchvision CNNs and ViT, a BERT-base-style encoder, a YOLO-style
# detector, DBNet/CRNN OCR models, a UNet-style segmenter, a scripted audio model with If
# subgraphs and an LSTM one, and int8 QDQ variants) with random weights into the gitignored
# .build-models/, for trying and benchmarking Vernier on models as a user gets them.
# Nothing here is ever committed.
#
#   Usage: Scripts/make_real_models.sh [--force] [--only NAME,...] [--table] [--list]
#          (the options go to Scripts/export_real_models.py)
#
# Prepares its own venv at .build-models/venv (not the project's .venv) with pinned torch,
# torchvision, onnx and onnxruntime, idempotently: when everything is in place it prints
# nothing and exits 0. About 1.2 GB of disk for the venv and 1.6 GB for the models; the
# first run takes about 1 minute to install and 3 minutes to export on 2 cores.
#
# torch without CUDA: every package is installed with --no-deps from the pinned list below,
# so none of the nvidia-* CUDA wheels that PyPI's Linux torch depends on are fetched when
# pip finds a CPU build. pip takes `torch==2.13.0+cpu` (183 MB) for `torch==2.13.0` when a
# find-links folder offers it (these machines' pip config points at /opt/wheels, which
# holds that wheel). PyPI itself only has the CUDA build (527 MB), whose libtorch_cpu.so
# and libtorch_cuda.so link libcudart, libcupti, libcublas, libcudnn and a dozen more, so
# `import torch` fails without them ("libcublasLt.so.*[0-9] not found in the system
# path"). In that case only, the script installs torch's NVIDIA requirements from its
# metadata (except triton, a GPU compiler that import and export do not need): about
# 1.9 GB more to download (the full `pip install torch==2.13.0` is 2.6 GB), and the venv
# takes 4.2 GB instead of 1.2 GB. Both ways export byte-identical models.
#
# Environment: VERNIER_REAL_MODELS_DIR (default <repo>/.build-models) moves the venv and
# the models; PYTHON (default python3) is the interpreter the venv is made from.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${VERNIER_REAL_MODELS_DIR:-$root/.build-models}"
venv="$out/venv"
python="$venv/bin/python"

# Pinned, with every dependency listed, because they are installed with --no-deps.
packages=(
  torch==2.13.0 torchvision==0.28.0
  filelock==4.3.1 typing-extensions==4.16.0 setuptools==84.2.1 sympy==1.14.0 mpmath==1.3.0
  networkx==3.6.1 jinja2==3.1.6 markupsafe==3.0.4 fsspec==2026.9.0 numpy==2.4.6 pillow==13.0.0
  onnx==1.23.2 onnxruntime==1.32.0 protobuf==7.36.2 ml-dtypes==0.6.0 flatbuffers==25.12.19
  packaging==26.4
)
stamp="$venv/.vernier-real-models"
wanted="${packages[*]}"

pip_install() {
  "$python" -m pip install -q --disable-pip-version-check --no-warn-conflicts "$@" >&2
}

torch_works() {
  "$python" - <<'EOF' 2>/dev/null
import io
import torch
assert torch.randn(2).sum().isfinite()
buf = io.BytesIO()
torch.onnx.export(torch.nn.Linear(4, 2).eval(), (torch.randn(1, 4),), buf, dynamo=False, opset_version=17)
assert buf.tell() > 0
EOF
}

if [ ! -x "$python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "make_real_models: preparing the export venv at $venv" >&2
  mkdir -p "$out"
  [ -x "$python" ] || "${PYTHON:-python3}" -m venv "$venv"
  pip_install --no-deps "${packages[@]}"
  if ! torch_works; then
    import_error="$("$python" -c 'import torch' 2>&1 || true)"
    if grep -q -E 'libcu|libnv|libnccl' <<<"$import_error"; then
      echo "make_real_models: pip found only PyPI's CUDA build of torch, which needs the NVIDIA" \
        "libraries even on CPU; installing them (about 1.9 GB to download)" >&2
      mapfile -t cuda_requirements < <("$python" - <<'EOF'
from importlib.metadata import requires
from packaging.requirements import Requirement
for text in requires("torch") or []:
    r = Requirement(text)
    if r.name in ("triton",) or (r.marker is not None and not r.marker.evaluate({"extra": ""})):
        continue
    if r.name.startswith(("nvidia", "cuda")):
        print(text.split(";")[0].strip())
EOF
      )
      pip_install "${cuda_requirements[@]}"
    fi
    if ! torch_works; then
      echo "make_real_models: torch does not work in $venv:" >&2
      "$python" -c 'import io, torch; torch.onnx.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),), io.BytesIO(), dynamo=False)' >&2 || true
      exit 1
    fi
  fi
  echo "$wanted" > "$stamp"
fi

exec "$python" "$root/Scripts/export_real_models.py" --out "$out" "$@"
