#!/usr/bin/env bash
# Measures how well `vernier predict` predicts latency on this machine, by leave-one-out
# over the real exports (Scripts/make_real_models.sh): each model is predicted by the
# host profile calibrated on all the other models. Two tables:
#   1. Vernier: calibrated on Vernier's own profiles, predicting Vernier's latency
#      (end to end and per layer), at 1 and 2 threads;
#   2. cross-runtime: calibrated on ONNX Runtime profiler traces of the other models,
#      predicting ONNX Runtime's latency of the held-out one from Vernier's kernel list.
# Writes Reports/prediction_accuracy.md; the profiles stay in .build-accuracy/.
# Needs a quiet machine (about 10 minutes on 2 cores).
#   Scripts/prediction_accuracy.sh [--min-time S]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
min_time=1
[ "${1:-}" = "--min-time" ] && min_time="${2:?--min-time needs seconds}"
Scripts/make_real_models.sh > /dev/null
models=".build-models"
work=".build-accuracy"
mkdir -p "$work/vernier" "$work/ort"
# Set up and build once; then the release binary itself (no build check per call).
Scripts/vernier --version > /dev/null
bin="$(swift build -c release -Xswiftc -target-cpu -Xswiftc native -Xcc -march=native --show-bin-path)/vernier"
vernier() { "$bin" "$@"; }
names=(resnet18 resnet50 mobilenet_v2 mobilenet_v3_small efficientnet_b0 shufflenet_v2_x1_0 squeezenet1_0 densenet121
       vgg11 vit_b_16 bert_base yolo_small ocr_det_db ocr_rec_crnn audio_kws_if resnet18_int8_qdq)
bindings() {  # the dims each export leaves symbolic, bound to batch 1 (BERT: sequence 128)
  local summary
  summary="$(vernier summary "$models/$1.onnx" --format json 2>/dev/null || true)"
  local args=()
  grep -q '"batch"' <<< "$summary" && args+=(--dim batch=1)
  grep -q '"seq"' <<< "$summary" && args+=(--dim seq=128)
  echo "${args[@]}"
}
for threads in 1 2; do
  for m in "${names[@]}"; do
    [ -f "$models/$m.onnx" ] || { echo "missing $m" >&2; continue; }
    # shellcheck disable=SC2046
    vernier profile "$models/$m.onnx" $(bindings "$m") --threads "$threads" --min-time "$min_time" \
      --format json -o "$work/vernier/$m.t$threads.json" 2>/dev/null
    echo "profiled $m at $threads thread(s)" >&2
  done
  .venv/bin/python Scripts/ort_profile.py --out "$work/ort" --threads "$threads" --min-time "$min_time" \
    $(for m in "${names[@]}"; do echo "$models/$m.onnx"; done) >&2
done
{
  echo "# Latency prediction accuracy (leave-one-out)"
  echo
  echo "Produced by \`Scripts/prediction_accuracy.sh\` (release build, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))"
  echo "on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, over ${#names[@]} real models"
  echo "(random weights, batch 1, BERT at sequence 128). Each model is predicted by the host profile (measured roofs)"
  echo "calibrated on every *other* model's profiles, at both thread counts; the held-out model's own measurements never"
  echo "enter its prediction. Errors are (predicted - measured) / measured."
  echo
  echo "## 1. Vernier: calibrated on Vernier profiles, predicting Vernier's latency"
  echo
  vernier device --accuracy host --from "$work"/vernier/*.json
  echo
  for threads in 1 2; do
    echo "## 2. Cross-runtime at $threads thread(s): calibrated on ONNX Runtime traces, predicting ONNX Runtime's latency"
    echo
    echo "Kernels to predict come from Vernier's graph (its fused groups); the truth is ONNX Runtime's median run."
    echo
    vernier device --accuracy host --from "$work"/ort/*.t"$threads".json --ort-threads "$threads" \
      --rows "$work"/vernier/*.t"$threads".json
    echo
  done
} > Reports/prediction_accuracy.md
cat Reports/prediction_accuracy.md
