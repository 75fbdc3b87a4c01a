#!/usr/bin/env bash
# Issue 9's acceptance run: on ResNet-18, MobileNetV2 and a BERT-base encoder (the real
# exports of Scripts/make_real_models.sh), `vernier plan --latency-ms` at 60% of the
# measured median latency must yield a variant whose measured latency meets the budget,
# whose predicted latency is within 10% of the measured one, and which ONNX Runtime
# loads and runs with the original's output shapes (Scripts/check_pruned_ort.py).
# Writes Reports/plan_check.md; the variants stay in .build-plan/. Needs a quiet machine.
#   Scripts/plan_check.sh [--threads N[,N...]]     (default 1,2: one table per thread count)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
thread_list=1,2
[ "${1:-}" = "--threads" ] && thread_list="${2:?--threads needs a count}"
Scripts/make_real_models.sh > /dev/null
Scripts/vernier --version > /dev/null
bin="$(swift build -c release -Xswiftc -target-cpu -Xswiftc native -Xcc -march=native --show-bin-path)/vernier"
work=".build-plan"
rm -rf "$work"
mkdir -p "$work/devices"
# Predictions use the host profile calibrated on the real exports' profiles when
# Scripts/prediction_accuracy.sh has made them (kept in a scratch profile folder, so the
# user's stored host profile is untouched); else the uncalibrated priors.
export VERNIER_DEVICE_DIR="$root/$work/devices"
calibration="uncalibrated host profile (priors)"
if ls .build-accuracy/vernier/*.json > /dev/null 2>&1; then
  "$bin" device --calibrate host --from .build-accuracy/vernier/*.json > /dev/null 2>&1 \
    && calibration="host profile calibrated on $(ls .build-accuracy/vernier/*.json | wc -l) profiles of Scripts/prediction_accuracy.sh"
fi
tables=()
for threads in ${thread_list//,/ }; do
rows=()
for m in resnet18 mobilenet_v2 bert_base; do
  dims=(--dim batch=1)
  [ "$m" = bert_base ] && dims+=(--dim seq=128)
  "$bin" profile ".build-models/$m.onnx" "${dims[@]}" --threads "$threads" --no-roofline --format json -o "$work/$m.t$threads.original.json" 2>/dev/null
  median="$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['totals']['latency_ms']['median'])" "$work/$m.t$threads.original.json")"
  limit="$(.venv/bin/python -c "print(round(0.6 * $median, 3))")"
  status=0
  "$bin" plan ".build-models/$m.onnx" "${dims[@]}" --threads "$threads" --latency-ms "$limit" --percentile 50 \
    --emit "$work/$m.t$threads" --format json > "$work/$m.t$threads.plan.json" 2> "$work/$m.t$threads.plan.err" || status=$?
  ort="no"
  dimargs=()
  [ "$m" = bert_base ] && dimargs=(--dim seq=128)
  if .venv/bin/python Scripts/check_pruned_ort.py ".build-models/$m.onnx" "$work/$m.t$threads/$m.pruned.onnx" "${dimargs[@]}" > "$work/$m.t$threads.ort.txt" 2>&1; then
    ort="yes"
  fi
  rows+=("$(.venv/bin/python - "$work/$m.t$threads.plan.json" "$m" "$median" "$limit" "$ort" "$status" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
name, median, limit, ort, status = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
l = p["latency_ms"]
measured, predicted = l["variant_measured"], l["variant_predicted"]
err = (predicted - measured) / measured * 100
cos = min((f["cosine"] for f in p["fidelity"]), default=float("nan"))
ok = measured <= limit and abs(err) <= 10 and ort == "yes"
macs = p["after"]["macs"] / p["before"]["macs"] * 100 if p["before"]["macs"] else float("nan")
print(f"| {name} | {median:.2f} | {limit:.2f} | {measured:.2f} | {predicted:.2f} | {err:+.1f}% | {macs:.0f}% | {cos:.4f} | {ort} | {status} | {'yes' if ok else 'NO'} |")
PY
)")
  echo "planned $m at $threads thread(s)" >&2
done
tables+=("" "## $threads thread(s)" "" \
  "| model | original ms | budget ms | variant measured ms | variant predicted ms | prediction error | MACs kept | cosine | ORT runs it | plan exit | criteria met |" \
  "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|" "${rows[@]}")
done
{
  echo "# Compression plans at 60% of the measured latency"
  echo
  echo "Produced by \`Scripts/plan_check.sh\` (release build, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)) on"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores. For each model and thread count: the original's median"
  echo "latency (\`vernier profile\`), then \`vernier plan --latency-ms <60% of it> --percentile 50\` (channels kept in multiples of the machine's channel block); the"
  echo "variant's measured median, its predicted latency (device model anchored to the original's measured kernels),"
  echo "MACs kept, the worst output cosine against the original on random probe inputs (fidelity on probe inputs, not"
  echo "task accuracy: the weights are random), and whether ONNX Runtime loads and runs it with the original's output shapes."
  echo "Predictions: $calibration."
  echo "Criteria (issue 9): variant measured <= budget, |prediction error| <= 10%, ONNX Runtime runs it."
  printf '%s\n' "${tables[@]}"
  echo
  .venv/bin/python Scripts/plan_group_shares.py "$work"/*.plan.json
} > Reports/plan_check.md
cat Reports/plan_check.md
