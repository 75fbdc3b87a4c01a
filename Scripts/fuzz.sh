#!/usr/bin/env bash
# Coverage-guided fuzzing of load -> validate -> shape inference -> cost table (libFuzzer).
#
#   Scripts/fuzz.sh [SECONDS]        # default 600
#
# Environment:
#   VERNIER_FUZZ_LIBONNX=1   also exercise the libonnx shape-inference fallback (C++)
#   FUZZ_JOBS=N              parallel fuzzing processes (default 1)
#   FUZZ_KEEP_CORPUS=1       do not merge the findings back into Tests/Fuzz/corpus
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
MAX_LEN=1048576
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
LOG="$SCRATCH/fuzz-$MODE.log"
before=$(ls "$CRASHES" | wc -l)
echo "fuzzing ($MODE mode) for ${SECONDS_TO_RUN}s with $JOBS job(s) (log: $LOG)"
# Fork mode keeps fuzzing after a crash, hang or OOM (each is written as a reproducer).
args=(-max_len=$MAX_LEN -timeout=10 -rss_limit_mb=4096 -max_total_time="$SECONDS_TO_RUN"
      -artifact_prefix="$CRASHES/" -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
set +e
"$BIN" "${args[@]}" "$WORK" "$CORPUS" "$SEEDS" >"$LOG" 2>&1
status=$?
set -e

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

# Fork mode's progress lines: "#EXECS: cov: .. exec/s: N oom/timeout/crash: a/b/c time: Ts"
last=$(grep -h '^#[0-9]*: cov:' "$LOG" | tail -1)
execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
secs=$(echo "$last" | sed -n 's/.* time: \([0-9]*\)s.*/\1/p')
rate=$(( ${execs:-0} / (${secs:-0} > 0 ? ${secs:-1} : 1) ))
otc=$(echo "$last" | sed -n 's/.*oom\/timeout\/crash: \([0-9\/]*\).*/\1/p')
after=$(ls "$CRASHES" | wc -l)
echo "executions: ${execs:-0} in ${secs:-0}s (${rate} exec/s); oom/timeout/crash events: ${otc:-0/0/0}"
echo "corpus: $(ls "$CORPUS" | wc -l) files, $(du -sh "$CORPUS" | cut -f1)"
echo "findings: $((after - before)) new in $CRASHES/ ($after total)"
ls "$CRASHES" | sed 's/^/  /'
if [ "$status" -ne 0 ]; then
    echo "libFuzzer stopped with status $status; see $LOG" >&2
fi
exit "$status"
