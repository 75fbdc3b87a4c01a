#!/usr/bin/env bash
# Measures how well `vernier predict` predicts latency on this machine, by leave-one-out
# over the real exports (Scripts/make_real_models.sh): each model is predicted by the
# host profile calibrated on all the other models. Two tables:
#   1. Vernier: calibrated on Vernier's own profiles, predicting Vernier's latency
#      (end to end and per layer), at 1 and 2 threads;
#   2. cross-runtime: calibrated on ONNX Runtime profiler traces of the other models,
#      predicting ONNX Runtime's latency of the held-out one from Vernier's kernel list.
# Writes Reports/prediction_accuracy.md; the profiles stay in .build-accuracy/.
# Needs a quiet machine (9 to 20 minutes on 2 cores with 5 passes, by the machine).
# The models are measured in --passes interleaved passes (every model once per pass), and
# of each model the fastest pass is kept (Scripts/fastest_pass.py), for Vernier and ONNX
# Runtime alike: interference on a shared machine only slows runs down, so the fastest
# pass is the one closest to the machine's own speed. --report-only skips measuring and
# reports on the passes already in .build-accuracy/passes (after a change to prediction).
#   Scripts/prediction_accuracy.sh [--min-time S] [--passes N] [--report-only]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
min_time=0.5
passes=5
report_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --min-time) min_time="${2:?--min-time needs seconds}"; shift 2 ;;
    --passes) passes="${2:?--passes needs a count}"; shift 2 ;;
    --report-only) report_only=true; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
Scripts/make_real_models.sh > /dev/null
models=".build-models"
work=".build-accuracy"
if ! $report_only; then rm -rf "$work"; fi
rm -rf "$work/vernier" "$work/ort"
mkdir -p "$work/vernier" "$work/ort" "$work/passes"
# Set up and build once; then the release binary itself (no build check per call).
Scripts/vernier --version > /dev/null
bin="$(swift build -c release -Xswiftc -target-cpu -Xswiftc native -Xcc -march=native --show-bin-path)/vernier"
vernier() { "$bin" "$@"; }
# The roofs every profile's % of roof and every prediction rest on: measured here, at the
# start of a quiet run, not read from a stored profile that may have been measured while
# other work (a test suite) loaded the machine.
export VERNIER_DEVICE_DIR="$root/$work/devices"
if ! $report_only || [ ! -f "$VERNIER_DEVICE_DIR/host.json" ]; then
  mkdir -p "$VERNIER_DEVICE_DIR"
  vernier device --measure > /dev/null
fi
names=(resnet18 resnet50 mobilenet_v2 mobilenet_v3_small efficientnet_b0 shufflenet_v2_x1_0 squeezenet1_0 densenet121
       vgg11 vit_b_16 bert_base yolo_small ocr_det_db ocr_rec_crnn audio_kws_if audio_lstm unet_seg resnet18_int8_qdq
       mobilenet_v2_int8_qdq resnet50_int8_qdq bert_base_int8_qdq mobilenet_v3_small_int8_qdq efficientnet_b0_int8_qdq
       vit_b_16_int8_qdq)
bindings() {  # the dims each export leaves symbolic, bound to batch 1 (BERT: sequence 128)
  local summary
  summary="$(vernier summary "$models/$1.onnx" --format json 2>/dev/null || true)"
  local args=()
  grep -q '"batch"' <<< "$summary" && args+=(--dim batch=1)
  grep -q '"seq"' <<< "$summary" && args+=(--dim seq=128)
  echo "${args[@]}"
}
$report_only && passes=0
$report_only || git rev-parse --short HEAD > "$work/passes/COMMIT"
$report_only || echo "$min_time" > "$work/passes/MIN_TIME"
for pass in $(seq 1 "$passes"); do
  for threads in 1 2; do
    for m in "${names[@]}"; do
      [ -f "$models/$m.onnx" ] || { echo "missing $m" >&2; continue; }
      # shellcheck disable=SC2046
      vernier profile "$models/$m.onnx" $(bindings "$m") --threads "$threads" --min-time "$min_time" \
        --format json -o "$work/passes/$m.t$threads.p$pass.json" 2>/dev/null
    done
    .venv/bin/python Scripts/ort_profile.py --out "$work/passes/ort$pass" --threads "$threads" --min-time "$min_time" \
      $(for m in "${names[@]}"; do echo "$models/$m.onnx"; done) > /dev/null
  done
  echo "pass $pass of $passes done" >&2
done
for threads in 1 2; do
  for m in "${names[@]}"; do
    [ -f "$work/passes/$m.t$threads.p1.json" ] || continue
    .venv/bin/python Scripts/fastest_pass.py "$work/vernier/$m.t$threads.json" "$work/passes/$m.t$threads".p*.json
    .venv/bin/python Scripts/fastest_pass.py "$work/ort/$m.t$threads.json" "$work"/passes/ort*/"$m.t$threads.json"
  done
done
measured_passes="$(find "$work/passes" -name "resnet18.t1.p*.json" | wc -l)"
# Every table twice: on medians (what the profiles report) and on fastest runs
# (`--statistic min`, calibration and truth alike), which a shared machine's load moves
# much less from one pass to the next.
sections="$work/sections"
rm -rf "$sections"
mkdir -p "$sections"
for statistic in median min; do
  vernier device --accuracy host --statistic "$statistic" --from "$work"/vernier/*.json > "$sections/vernier.$statistic.md"
  for threads in 1 2; do
    vernier device --accuracy host --statistic "$statistic" --from "$work"/ort/*.t"$threads".json --ort-threads "$threads" \
      --rows "$work"/vernier/*.t"$threads".json > "$sections/ort.t$threads.$statistic.md"
  done
done
# How far the load moved one model's median between passes: the largest slowest/fastest.
pass_swing="$(.venv/bin/python - "$work/passes" <<'PY'
import glob, json, re, sys
medians = {}
for path in glob.glob(sys.argv[1] + "/*.t[0-9]*.p[0-9]*.json"):
    key = re.sub(r"\.p[0-9]+\.json$", "", path)
    medians.setdefault(key, []).append(json.load(open(path))["totals"]["latency_ms"]["median"])
swings = [max(v) / min(v) for v in medians.values() if len(v) > 1 and min(v) > 0]
print(f"{max(swings):.2f}x" if swings else "an unknown factor (one pass)")
PY
)"
summary_row() {  # the end-to-end figures of one section as a table row
  grep -m1 '^| end to end |' "$1" | cut -d'|' -f3-
}
{
  echo "# Latency prediction accuracy (leave-one-out)"
  echo
  echo "Produced by \`Scripts/prediction_accuracy.sh\` (release build, $(date -u +%Y-%m-%d), predictions by commit $(git rev-parse --short HEAD),"
  echo "profiles measured by commit $(cat "$work/passes/COMMIT" 2>/dev/null || echo unknown))"
  echo "on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, over ${#names[@]} real models"
  echo "(random weights, batch 1, BERT at sequence 128), measured in $measured_passes interleaved passes (\`--min-time $(cat "$work/passes/MIN_TIME" 2>/dev/null || echo "$min_time")\` each),"
  echo "each model's fastest pass kept (Vernier and ONNX Runtime alike; Scripts/fastest_pass.py)."
  echo "Each model is predicted by the host profile (measured roofs)"
  echo "calibrated on every *other* model's profiles, at both thread counts; the held-out model's own measurements never"
  echo "enter its prediction. Errors are (predicted - measured) / measured."
  echo
  echo "Every table comes twice. On **medians**: each kernel's and each run's median time, what the profiles report."
  echo "On **fastest runs** (\`vernier device --accuracy --statistic min\`): each kernel's and each run's fastest time,"
  echo "in calibration and truth alike. Other work on a shared machine only slows runs down; the medians of one model"
  echo "moved by up to $pass_swing between passes of this run, and a prediction cannot know that load."
  echo
  echo "## Summary: end to end"
  echo
  echo "| predictions | statistic | count | within 10% | within 20% | RMSPE | median abs. error |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for statistic in median min; do
    echo "| Vernier, 1 and 2 threads | $statistic |$(summary_row "$sections/vernier.$statistic.md")"
  done
  for threads in 1 2; do
    for statistic in median min; do
      echo "| ONNX Runtime, $threads thread(s) | $statistic |$(summary_row "$sections/ort.t$threads.$statistic.md")"
    done
  done
  echo
  for statistic in median min; do
    label="medians"; [ "$statistic" = min ] && label="fastest runs"
    echo "## 1. Vernier on $label: calibrated on Vernier profiles, predicting Vernier's latency"
    echo
    cat "$sections/vernier.$statistic.md"
    echo
    for threads in 1 2; do
      echo "## 2. Cross-runtime on $label at $threads thread(s): calibrated on ONNX Runtime traces, predicting ONNX Runtime's latency"
      echo
      echo "Kernels to predict come from Vernier's graph (its fused groups); the truth is ONNX Runtime's run."
      echo
      cat "$sections/ort.t$threads.$statistic.md"
      echo
    done
  done
} > Reports/prediction_accuracy.md
cat Reports/prediction_accuracy.md
