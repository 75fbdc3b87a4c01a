#!/usr/bin/env bash
# Checks the profiler against itself on real models: the sum of the per-node medians must
# be within 3% of the end-to-end median (issue 5's criterion), for ResNet-18 and a
# BERT-base encoder at sequence 128, at 1 and 2 threads; also profiles every other real
# export once and reports the same figure. Writes Reports/profile_consistency.md.
# Needs the real exports (Scripts/make_real_models.sh) and a quiet machine.
#   Scripts/profile_consistency.sh [--min-time S]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
min_time=2
[ "${1:-}" = "--min-time" ] && min_time="${2:?--min-time needs seconds}"
Scripts/make_real_models.sh > /dev/null
models=".build-models"
out="Reports/profile_consistency.md"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
vernier() { Scripts/vernier "$@"; }
rows=()
profile() {  # name model threads extra...
  local name="$1" model="$2" threads="$3"; shift 3
  if ! vernier profile "$models/$model" --threads "$threads" --min-time "$min_time" --format json -o "$tmp/p.json" "$@" 2> "$tmp/err"; then
    rows+=("| $name | $threads | $(tail -1 "$tmp/err" | sed 's/|/\\|/g') | | | | | | | |")
    return 0
  fi
  rows+=("$(.venv/bin/python - "$tmp/p.json" "$name" "$threads" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
t = p["totals"]
e2e = t["latency_ms"]["median"]
ok = "yes" if abs(t["overhead_pct"]) <= 3 else "NO"
# Means add up exactly (a sum of medians does not when timings skew right): the sum of the
# node means against the mean of the timed runs is the time spent outside kernels.
mean_sum = sum(n["latency_ms"]["mean"] for n in p["nodes"])
timed_mean = t["timed_runs_latency_ms"]["mean"]
outside = (timed_mean - mean_sum) / timed_mean * 100
print(f'| {sys.argv[2]} | {sys.argv[3]} | {len(p["nodes"])} | {e2e:.3f} | {t["node_sum_ms"]:.3f} | {t["overhead_pct"]:+.2f} | '
      f'{t["timed_runs_latency_ms"]["median"]:.3f} | {outside:.2f} | {t["spread"]:.3f} | {t["runs"]} | {ok} |')
PY
)")
}
for threads in 1 2; do
  profile resnet18 resnet18.onnx "$threads" --dim batch=1
  profile "bert_base (seq 128)" bert_base.onnx "$threads" --dim batch=1 --dim seq=128
done
for m in resnet50 mobilenet_v2 mobilenet_v3_small efficientnet_b0 shufflenet_v2_x1_0 squeezenet1_0 densenet121 \
         vit_b_16 yolo_small ocr_det_db ocr_rec_crnn; do
  [ -f "$models/$m.onnx" ] || continue
  # Bind batch only where the export has it as a symbol.
  summary="$(vernier summary "$models/$m.onnx" --format json 2>/dev/null || true)"
  if grep -q '"batch"' <<< "$summary"; then
    profile "$m" "$m.onnx" 2 --dim batch=1
  else
    profile "$m" "$m.onnx" 2
  fi
done
{
  echo "# Profiler consistency: sum of node medians against the end-to-end median"
  echo
  echo "Produced by \`Scripts/profile_consistency.sh\` (release build, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))"
  echo "on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores. Each model measured with"
  echo "\`vernier profile --min-time $min_time\`: rounds of one run with per-node timers and one without, interleaved."
  echo "Criterion (issue 5): |node sum - end-to-end median| <= 3% of the end-to-end median."
  echo
  echo "The \"outside kernels\" column compares means, which add up exactly: (mean of the timed runs - sum of node"
  echo "means) / mean of the timed runs, i.e. the share of a run spent between kernels (input and output copies, bookkeeping)."
  echo "The sum of medians also differs from the median of the sum when per-kernel timings skew right (thread wake-ups)."
  echo
  echo "| model | threads | kernels | end-to-end median ms | node median sum ms | difference % | timed-run median ms | outside kernels % | spread p90/median | runs | within 3% |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  printf '%s\n' "${rows[@]}"
} > "$out"
cat "$out"
