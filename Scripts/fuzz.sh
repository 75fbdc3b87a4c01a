#!/usr/bin/env bash
# Coverage-guided fuzzing of load -> validate -> shape inference -> cost table (libFuzzer).
#
#   Scripts/fuzz.sh [SECONDS]        # default 600
#
# Environment:
#   VERNIER_FUZZ_LIBONNX=1   also exercise the libonnx shape-inference fallback (C++)
#   FUZZ_JOBS=N              parallel fuzzing processes (default 1; one per core)
#   FUZZ_KEEP_CORPUS=1       do not merge the findings back into Tests/Fuzz/corpus
#   FUZZ_MAX_LEN=BYTES       longest input tried (default 1 MiB); 65536 runs several times
#                            faster once the corpus holds the large real models
#
# Builds .build-fuzz/release/vernier-fuzz with -sanitize=fuzzer,address (a separate
# scratch path, so the normal build is untouched), seeds from Models/ and small ONNX
# node-test models, fuzzes, writes crash/timeout/oom reproducers to Tests/Fuzz/crashes/,
# and merges a minimized corpus back into Tests/Fuzz/corpus/ (capped at a few MB).
# Replay a reproducer with the normal build: swift run vernier-fuzz FILE...
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-600}"
JOBS="${FUZZ_JOBS:-1}"
SCRATCH=.build-fuzz
CORPUS=Tests/Fuzz/corpus
CRASHES=Tests/Fuzz/crashes
MAX_LEN="${FUZZ_MAX_LEN:-1048576}"
CORPUS_CAP_BYTES=$((4 * 1024 * 1024))

mkdir -p "$SCRATCH" "$CORPUS" "$CRASHES"
BUILD_LOG="$SCRATCH/fuzz-build.log"
echo "building the fuzzer (log: $BUILD_LOG)"
if ! swift build --scratch-path "$SCRATCH" -c release --product vernier-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
        -Xcxx -fsanitize=fuzzer-no-link,address >"$BUILD_LOG" 2>&1; then
    tail -40 "$BUILD_LOG"
    echo "fuzzer build failed" >&2
    exit 1
fi
BIN="$(swift build --scratch-path "$SCRATCH" -c release --show-bin-path)/vernier-fuzz"

# Seeds: the repository's models (good and broken) and the small ONNX node tests.
MODE=swift
[ "${VERNIER_FUZZ_LIBONNX:-0}" = 1 ] && MODE=libonnx
SEEDS="$SCRATCH/seeds-$MODE"
WORK="$SCRATCH/corpus-$MODE"
rm -rf "$SEEDS"
mkdir -p "$SEEDS" "$WORK"
for f in Models/*.onnx Models/broken/*.onnx; do
    [ -f "$f" ] && cp "$f" "$SEEDS/$(echo "$f" | tr '/' '_')"
done
if [ -d Tests/Data/node ]; then
    find Tests/Data/node -name model.onnx -size -16k | sort | while read -r f; do
        cp "$f" "$SEEDS/node_$(basename "$(dirname "$f")").onnx"
    done
fi
echo "seeds: $(ls "$SEEDS" | wc -l) files; committed corpus: $(ls "$CORPUS" | wc -l) files"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:symbolize=1}"
# Swift's own backtracer runs inside the crashing process and trips ASan; let libFuzzer
# report instead (replay a reproducer with the normal build for a Swift backtrace).
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
before=$(ls "$CRASHES" | wc -l)
echo "fuzzing ($MODE mode) for ${SECONDS_TO_RUN}s with $JOBS worker(s) (logs: $SCRATCH/fuzz-$MODE-w*.log)"
# Each worker is one in-process libFuzzer run over the shared corpus folder; a crash,
# hang or OOM ends that run with a reproducer in $CRASHES/, and the worker starts again
# until the time is up. (libFuzzer's fork mode keeps going by itself but restarts a
# child every few seconds, which cut throughput about eight times on these inputs.)
args=(-max_len=$MAX_LEN -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
      -artifact_prefix="$CRASHES/")
deadline=$((SECONDS + SECONDS_TO_RUN))
run_worker() {
    local log="$SCRATCH/fuzz-$MODE-w$1.log" remaining
    : >"$log"
    while remaining=$((deadline - SECONDS)); [ "$remaining" -gt 0 ]; do
        if "$BIN" "${args[@]}" -max_total_time="$remaining" "$WORK" "$CORPUS" "$SEEDS" >>"$log" 2>&1; then
            break
        fi
        echo "vernier-fuzz: run ended with a finding; restarting" >>"$log"
    done
}
rm -f "$SCRATCH"/fuzz-$MODE-w*.log   # a run with fewer workers must not count old logs
for w in $(seq 1 "$JOBS"); do
    run_worker "$w" &
done
wait
status=0

if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]; then
    # Minimize: keep only inputs that add coverage, then drop the largest files while
    # the corpus is over the cap.
    MERGED="$SCRATCH/merged-$MODE"
    rm -rf "$MERGED"
    mkdir -p "$MERGED"
    "$BIN" -merge=1 -max_len=$MAX_LEN -timeout=10 -rss_limit_mb=4096 \
        "$MERGED" "$CORPUS" "$WORK" >"$SCRATCH/merge-$MODE.log" 2>&1 || true
    if [ "$(ls "$MERGED" | wc -l)" -gt 0 ]; then
        while [ "$(du -sb "$MERGED" | cut -f1)" -gt "$CORPUS_CAP_BYTES" ]; do
            rm -f "$MERGED/$(ls -S "$MERGED" | head -1)"
        done
        rm -rf "$CORPUS"
        mv "$MERGED" "$CORPUS"
    fi
fi

# Every libFuzzer run prints its final stats, also when it stops on a finding.
execs=$(cat "$SCRATCH"/fuzz-$MODE-w*.log | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s += $1} END {print s + 0}')
findings=$(cat "$SCRATCH"/fuzz-$MODE-w*.log | grep -c 'restarting' || true)
echo "executions: $execs in ${SECONDS_TO_RUN}s ($((execs / SECONDS_TO_RUN)) exec/s over $JOBS worker(s)); runs ended by a crash, hang or OOM: $findings"
if [ "$findings" -gt 0 ]; then status=1; fi
after=$(ls "$CRASHES" | wc -l)
echo "corpus: $(ls "$CORPUS" | wc -l) files, $(du -sh "$CORPUS" | cut -f1)"
echo "findings: $((after - before)) new in $CRASHES/ ($after total)"
ls "$CRASHES" | sed 's/^/  /'
if [ "$status" -ne 0 ]; then
    echo "findings: see $CRASHES/ and $SCRATCH/fuzz-$MODE-w*.log" >&2
fi
exit "$status"
