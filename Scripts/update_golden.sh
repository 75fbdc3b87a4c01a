#!/usr/bin/env bash
# Regenerates the golden outputs of `vernier summary` in Tests/Golden/, which
# Tests/VernierCLITests/GoldenTests.swift compares against byte for byte.
#
# Run it after an intended change of the summary output, then review the diff
# (git diff Tests/Golden) before committing:
#
#   swift build && Scripts/update_golden.sh
#
# Cases: every top-level Models/*.onnx, plus Models/external/ext_weights.onnx and
# bert_mini with --dim batch=1 --dim seq=128. Each case gives <case>.summary.json
# (--format json) and <case>.summary.txt (--format table). The list of cases, with
# their arguments, goes to Tests/Golden/cases.tsv, which the test reads.
# Runs from the repository root, so the "model" path in the output is Models/x.onnx.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bin=".build/debug/vernier"
if [ ! -x "$bin" ]; then
    echo "update_golden.sh: $bin is missing; run 'swift build' first" >&2
    exit 1
fi

out="Tests/Golden"
mkdir -p "$out"
# Start clean so a removed model does not leave a stale golden file behind.
rm -f "$out"/*.summary.json "$out"/*.summary.txt "$out"/cases.tsv

# case name <TAB> model path <TAB> extra arguments (space-separated, no quoting needed)
cases=()
for model in Models/*.onnx; do
    cases+=("$(basename "$model" .onnx)"$'\t'"$model"$'\t')
done
cases+=("ext_weights"$'\t'"Models/external/ext_weights.onnx"$'\t')
cases+=("bert_mini.batch1_seq128"$'\t'"Models/bert_mini.onnx"$'\t'"--dim batch=1 --dim seq=128")

{
    echo "# Written by Scripts/update_golden.sh: case<TAB>model<TAB>extra arguments. Do not edit by hand."
    printf '%s\n' "${cases[@]}"
} > "$out/cases.tsv"

for line in "${cases[@]}"; do
    IFS=$'\t' read -r name model extra <<< "$line"
    read -r -a args <<< "$extra"
    "$bin" summary "$model" ${args[@]+"${args[@]}"} --format json > "$out/$name.summary.json"
    "$bin" summary "$model" ${args[@]+"${args[@]}"} --format table > "$out/$name.summary.txt"
    echo "wrote $out/$name.summary.json, $out/$name.summary.txt"
done
