#!/usr/bin/env bash
# Opens an HTML report in headless Chromium and checks that a browser really renders it:
#   1. the page logs nothing to the console (no script error, no console.error);
#   2. the table-sorting script ran: it marks every sortable table data-sortable="ready";
#   3. a 1280x2000 screenshot comes out as a PNG and is not blank.
# The report compares two models with a device profile, so every chart is drawn. It needs
# the debug binary (swift build); Debian's chromium is installed when missing. Leaves the
# report and the screenshot in .build/html-check/ to look at.
#   Scripts/check_html_report.sh [VERNIER_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
vernier="${1:-.build/debug/vernier}"
out="$root/.build/html-check"

fail() { echo "check_html_report: FAIL: $*" >&2; exit 1; }
pass() { echo "check_html_report: ok: $*"; }

[ -x "$vernier" ] || fail "$vernier is missing; build it first (swift build)"

browser=""
find_browser() {
  for b in chromium chromium-browser; do
    if command -v "$b" > /dev/null; then browser="$(command -v "$b")"; return 0; fi
  done
  return 1
}
skip() { echo "check_html_report: SKIPPED: $*" >&2; exit 0; }
if ! find_browser; then
  command -v apt-get > /dev/null || skip "no chromium on PATH and no apt-get to install it"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "check_html_report: installing Debian package chromium" >&2
  # Like Scripts/setup: apt-get update only when something is missing.
  $sudo_cmd apt-get update -qq >&2
  apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]' \
    || skip "no chromium on PATH and no Debian package 'chromium' in this machine's apt sources"
  $sudo_cmd apt-get install -y -qq chromium >&2 || fail "apt-get install chromium failed"
  find_browser || fail "chromium installed but not on PATH"
fi

rm -rf "$out"
mkdir -p "$out"
trap 'rm -rf "$out/browser-profile" "$out/device.json"' EXIT
cat > "$out/device.json" <<'EOF'
{"schema": "vernier.device/1", "name": "check", "cpu": "test", "source": "spec-derived", "cores": 1,
 "isa": [], "caches": {}, "roofs": [{"threads": 1, "fp32_gflops": 40, "bandwidth_gbps": 10}]}
EOF
report="$out/report.html"
"$vernier" report Models/resnet_mini.onnx Models/cifar_cnn.onnx -o "$report" \
  --runs 3 --min-time 0 --warmup 1 --threads 1 --device-profile "$out/device.json"
pass "vernier report wrote $(wc -c < "$report") bytes"

# Static: nothing the page could fetch.
if grep -qE 'https?://|src=|<link|@import|url\(' "$report"; then
  fail "the report refers to something outside: $(grep -oE 'https?://[^"]*|src=[^ ]*|<link[^>]*|@import|url\(' "$report" | head -3 | tr '\n' ' ')"
fi
pass "no external references (http://, https://, src=, <link>, @import, url())"

# No sandbox: containers and root lack the kernel features it needs. The host resolver
# maps every name to nowhere, so the page could not reach the network even if it tried.
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --disable-extensions
       --user-data-dir="$out/browser-profile" --host-resolver-rules="MAP * ~NOTFOUND")
url="file://$report"

timeout 60 "$browser" "${flags[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=3000 --dump-dom "$url" \
  > "$out/dom.html" 2> "$out/browser.log" || fail "chromium --dump-dom failed (see $out/browser.log)"
# Console messages appear as INFO:CONSOLE(...) lines; an uncaught exception says "Uncaught".
if grep -E 'CONSOLE|Uncaught' "$out/browser.log" > "$out/console.log"; then
  fail "console messages while loading the page: $(head -3 "$out/console.log")"
fi
pass "no console messages or uncaught errors"

tables=$(grep -o '<table class="sortable' "$report" | wc -l)
ready=$(grep -oE '<table [^>]*data-sortable="ready"' "$out/dom.html" | wc -l)
[ "$tables" -gt 0 ] || fail "the report has no sortable table"
[ "$ready" -eq "$tables" ] || fail "the sort script marked $ready of $tables tables ready"
pass "sort script ran: $ready of $tables sortable tables marked data-sortable=\"ready\""
svgs=$(grep -o '<svg ' "$out/dom.html" | wc -l)
[ "$svgs" -ge 9 ] || fail "expected at least 9 charts in the rendered page, found $svgs"
pass "$svgs SVG charts in the rendered DOM"

shot="$out/report.png"
timeout 60 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,2000 --screenshot="$shot" "$url" \
  2>> "$out/browser.log" > /dev/null || fail "chromium --screenshot failed (see $out/browser.log)"
[ -s "$shot" ] || fail "no screenshot at $shot"
[ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$shot is not a PNG"
# IHDR: width and height, big-endian, at bytes 16-23.
size=$(od -An -tu1 -j16 -N8 "$shot" | awk '{ print ($1*16777216 + $2*65536 + $3*256 + $4) "x" ($5*16777216 + $6*65536 + $7*256 + $8) }')
[ "$size" = "1280x2000" ] || fail "screenshot is $size, expected 1280x2000"
# A blank 1280x2000 page compresses to a few KiB; text and charts take far more.
bytes=$(wc -c < "$shot")
[ "$bytes" -gt 50000 ] || fail "screenshot is only $bytes bytes: the page looks blank"
pass "screenshot $shot: PNG $size, $bytes bytes"
echo "check_html_report: all checks passed"
