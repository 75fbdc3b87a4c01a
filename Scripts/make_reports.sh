#!/usr/bin/env bash
# Regenerates Reports/ for the models in Models/: the static summary and the measured
# profile of each model as Markdown, JSON and HTML (and one Chrome trace), so a reader sees
# real output without building. Profiles measure this machine: run it on a quiet one.
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
  # One measurement, written in both formats and as the HTML report with charts.
  run profile "$model" "${args[@]}" --output "Reports/$name.profile.md" --output "Reports/$name.profile.json" \
    --html "Reports/$name.html"
done
# A small trace (five runs) to open in Perfetto or chrome://tracing.
run profile Models/resnet_mini.onnx --runs 5 --min-time 0 --trace Reports/resnet_mini.trace.json > /dev/null
echo "Reports/ regenerated"
