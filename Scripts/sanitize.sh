#!/usr/bin/env bash
# Runs the test suite under a sanitizer, each in its own scratch folder (.build-address,
# .build-thread) so the normal build is untouched. The CLI tests run the sanitized
# vernier binary too (VERNIER_CLI_BINARY). The mutated-model sweep is skipped: 2,000
# sanitized processes add nothing the fuzzer (Scripts/fuzz.sh, AddressSanitizer) does not.
#   Scripts/sanitize.sh [address|thread]... [-- extra swift test arguments, e.g. --filter Profile]
# Note: oneDNN and libgomp are not instrumented; ThreadSanitizer cannot see an OpenMP
# team's fork and join, so code called from libgomp is suppressed
# (Scripts/tsan-suppressions.txt) and it checks the rest: Swift concurrency, Dispatch,
# the CLI's and the tests' own threads.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
Scripts/setup --test
Scripts/fetch_node_tests.sh
Scripts/make_reference_models.py > /dev/null
sanitizers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sanitizers+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address thread)
status=0
for s in "${sanitizers[@]}"; do
  case "$s" in address|thread) ;; *) echo "sanitize.sh: unknown sanitizer $s (address or thread)" >&2; exit 2 ;; esac
  scratch=".build-$s"
  echo "== $s sanitizer: building in $scratch" >&2
  swift build --build-tests --sanitize="$s" --scratch-path "$scratch"
  bin="$(swift build --sanitize="$s" --scratch-path "$scratch" --show-bin-path)"
  echo "== $s sanitizer: testing" >&2
  if VERNIER_CLI_BINARY="$bin/vernier" ASAN_OPTIONS="detect_leaks=0" TSAN_OPTIONS="halt_on_error=1 suppressions=$root/Scripts/tsan-suppressions.txt" \
     swift test --skip-build --sanitize="$s" --scratch-path "$scratch" --skip MutatedModelTests "$@" 2>&1 | tee "$scratch/test-output.txt"; then
    echo "== $s sanitizer: passed" >&2
  else
    echo "== $s sanitizer: FAILED (log: $scratch/test-output.txt)" >&2
    status=1
  fi
done
exit $status
