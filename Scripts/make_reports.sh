#!/usr/bin/env bash
# Regenerates Reports/ for the models in Models/: the static summary of each model as
# Markdown and JSON, so a reader sees real output without building.
#   Scripts/make_reports.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mkdir -p Reports
run() { Scripts/vernier "$@"; }
for model in Models/*.onnx; do
  name="$(basename "$model" .onnx)"
  args=()
  # Models with symbolic inputs get typical sizes bound; the unbound form is in the JSON too.
  if [ "$name" = "bert_mini" ]; then
    run summary "$model" --format json --output "Reports/$name.symbolic.summary.json"
    args=(--dim batch=1 --dim seq=128)
  fi
  run summary "$model" "${args[@]}" --format md --output "Reports/$name.summary.md"
  run summary "$model" "${args[@]}" --format json --output "Reports/$name.summary.json"
done
echo "Reports/ regenerated"
