#!/usr/bin/env bash
# Puts ONNX's backend node tests (onnx/backend/test/data/node/* from the onnx 1.16.0 wheel,
# one folder per test case: model.onnx plus test_data_set_*/{input,output}_*.pb) into
# Tests/Data/node/, which is gitignored. Idempotent: a stamp file records what is there,
# and when it matches the script prints nothing and exits 0.
# Needs the venv that Scripts/setup creates (for pip and for unpacking the wheel).
#   Usage: Scripts/fetch_node_tests.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="1.16.0"
dest="$root/Tests/Data/node"
stamp="$dest/.vernier-stamp"
wanted="onnx==$version node tests"
python="$root/.venv/bin/python"

if [ "${1:-}" != "--force" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi
if [ ! -x "$python" ]; then
  echo "fetch_node_tests: no venv at .venv; run Scripts/setup first" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_node_tests: downloading the onnx==$version wheel" >&2
"$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux2014_x86_64 -d "$tmp/wheel" "onnx==$version" >&2
wheel="$(ls "$tmp"/wheel/onnx-"$version"-*.whl)"

# Unpack into a sibling folder first, then swap it in, so an interrupted run leaves no
# half-filled Tests/Data/node behind a stamp.
mkdir -p "$(dirname "$dest")"
staging="$dest.partial"
rm -rf "$staging"
"$python" - "$wheel" "$staging" <<'EOF'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "onnx/backend/test/data/node/"
count = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise SystemExit(f"fetch_node_tests: unexpected path in wheel: {info.filename}")
        target = os.path.join(out, *parts)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            dst.write(src.read())
        count += 1
if count == 0:
    raise SystemExit("fetch_node_tests: the wheel holds no node tests")
EOF
rm -rf "$dest"
mv "$staging" "$dest"
echo "$wanted" > "$stamp"
cases="$(find "$dest" -mindepth 1 -maxdepth 1 -type d | wc -l)"
files="$(find "$dest" -type f ! -name .vernier-stamp | wc -l)"
bytes="$(find "$dest" -type f ! -name .vernier-stamp -printf '%s\n' | awk '{s += $1} END {print s}')"
echo "fetch_node_tests: $cases test cases, $files files, $bytes bytes in Tests/Data/node" >&2
