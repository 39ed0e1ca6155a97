#!/usr/bin/env bash
# Set up, build and run every test: the suite on io_uring and on epoll, the install check,
# the patch suite a second time with patched programs on two carriers (the test setup
# two_carriers, RINGLET_THREADS=2; the first run's default setup has 1), then the suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, and the cross-core cases under
# ThreadSanitizer. Ends with the line "N passed, M failed, K skipped" (Catch2 test cases,
# summed over every run), after a line with the time each phase took (the CI's budget is
# 45 minutes; that line shows where it goes).
set -uo pipefail
cd "$(dirname "$0")/.."
times=()
phase_start=$SECONDS
# Record how long the phase that just ended took.
took() {
  local s=$((SECONDS - phase_start))
  times+=("$1 $((s / 60)):$(printf %02d $((s % 60)))")
  phase_start=$SECONDS
}

bash scripts/setup.sh || exit 1
took setup

bash scripts/build.sh build --buildtype=debugoptimized || exit 1
took build
meson test -C build --print-errorlogs --num-processes 1
took tests
meson test -C build --setup two_carriers --suite patch --print-errorlogs --num-processes 1
took "patch on two carriers"
# The sanitizer builds compile only what their suites run (meson test builds a test's
# programs first; a build that fails leaves no log, which the summary counts as a failure).
bash scripts/build.sh --configure-only build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false || exit 1
rm -f build-asan/meson-logs/testlog.json
meson test -C build-asan --suite runtime --suite patch --suite http --print-errorlogs --num-processes 1
took "ASan+UBSan (build and tests)"

bash scripts/build.sh --configure-only build-tsan --buildtype=debug -Db_sanitize=thread -Db_lundef=false -Dbench=false || exit 1
rm -f build-tsan/meson-logs/testlog.json
meson test -C build-tsan --suite multicore --print-errorlogs --num-processes 1
took "TSan (build and tests)"

line="time per phase (min:s):"
sep=" "
for t in "${times[@]}"; do
  line+="$sep$t"
  sep=", "
done
echo "$line; total $((SECONDS / 60)):$(printf %02d $((SECONDS % 60)))"
python3 tests/summarize.py build/meson-logs/testlog.json build/meson-logs/testlog-two_carriers.json \
  build-asan/meson-logs/testlog.json build-tsan/meson-logs/testlog.json
