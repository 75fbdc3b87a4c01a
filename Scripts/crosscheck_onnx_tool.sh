#!/usr/bin/env bash
# Cross-checks Vernier's per-node MACs and params against onnx-tool (PyPI `onnx-tool`).
#
#   Scripts/crosscheck_onnx_tool.sh                      # Models/*.onnx and .build-models/*.onnx
#   Scripts/crosscheck_onnx_tool.sh Models/unet_mini.onnx --dim batch=4
#
# Installs the pinned onnx-tool into .venv when it is missing (silently when present),
# then runs Scripts/crosscheck_onnx_tool.py with the venv's Python. Uses the existing
# debug binary .build/debug/vernier (override with VERNIER=path); it never builds.
# Writes Reports/onnx_tool_crosscheck.md and .csv; exits 1 if a Conv, ConvTranspose,
# Gemm or MatMul node disagrees beyond the documented convention difference.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

onnx_tool_version=1.0.1
tabulate_version=0.10.0   # onnx-tool's only dependency that the base venv lacks

"$root/Scripts/setup"   # the project's venv (onnx, numpy); silent when present
py="$root/.venv/bin/python"

installed="$("$py" - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
try:
    print(m.version("onnx-tool"))
except m.PackageNotFoundError:
    pass
EOF
)"
if [ "$installed" != "$onnx_tool_version" ]; then
  echo "crosscheck: installing onnx-tool==$onnx_tool_version into .venv" >&2
  "$py" -m pip install -q --disable-pip-version-check \
    "onnx-tool==$onnx_tool_version" "tabulate==$tabulate_version" >&2
fi

exec "$py" "$root/Scripts/crosscheck_onnx_tool.py" "$@"
