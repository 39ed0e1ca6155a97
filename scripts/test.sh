#!/usr/bin/env bash
# Set up, build and run every test: the suite on io_uring and on epoll, the install check,
# the patch suite a second time with patched programs on two carriers (the test setup
# two_carriers, RINGLET_THREADS=2; the first run's default setup has 1), then the suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, and the cross-core cases under
# ThreadSanitizer. Ends with the line "N passed, M failed, K skipped" (Catch2 test cases,
# summed over every run), after a line with the time each phase took (the CI's budget is
# 45 minutes; that line shows where it goes).
# Two things keep it inside that budget on 2 cores: the sanitizer builds compile in the
# background while the first two runs' tests go on, at SCHED_IDLE (nice 19 where that is
# refused), so the compilers take only the CPU the tests leave idle; and the tests that only
# wait (tests/patch/blocking/, is_parallel : true) run up to four at once (every other test
# runs alone).
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

# The sanitizer builds compile only what their suites run (scripts/suite_targets.py lists
# it, as meson test would build it), in the background. If that fails, meson test below
# builds again and shows why; a build that fails leaves no log, which the summary counts as
# a failure.
asan_suites=(runtime patch http)
tsan_suites=(multicore)
bash scripts/build.sh --configure-only build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false || exit 1
bash scripts/build.sh --configure-only build-tsan --buildtype=debug -Db_sanitize=thread -Db_lundef=false -Dbench=false || exit 1
idle=(nice -n 19)
chrt -i 0 true 2>/dev/null && idle=(chrt -i 0)
sanitizer_log=build/meson-logs/sanitizer-builds.log
(
  targets=$(python3 scripts/suite_targets.py build-asan "${asan_suites[@]}") &&
    "${idle[@]}" ninja -C build-asan $targets &&
    targets=$(python3 scripts/suite_targets.py build-tsan "${tsan_suites[@]}") &&
    "${idle[@]}" ninja -C build-tsan $targets
) >"$sanitizer_log" 2>&1 &
sanitizer_builds=$!
took "configure the sanitizer builds"

meson test -C build --print-errorlogs --num-processes 4
took tests
meson test -C build --setup two_carriers --suite patch --print-errorlogs --num-processes 4
took "patch on two carriers"

if ! wait "$sanitizer_builds"; then
  echo "scripts/test.sh: the sanitizer builds failed in the background ($sanitizer_log, last lines below); meson test builds again"
  tail -30 "$sanitizer_log"
fi
took "the rest of the sanitizer builds"
rm -f build-asan/meson-logs/testlog.json
meson test -C build-asan "${asan_suites[@]/#/--suite=}" --print-errorlogs --num-processes 1
took "ASan+UBSan tests"
rm -f build-tsan/meson-logs/testlog.json
meson test -C build-tsan "${tsan_suites[@]/#/--suite=}" --print-errorlogs --num-processes 1
took "TSan tests"

line="time per phase (min:s):"
sep=" "
for t in "${times[@]}"; do
  line+="$sep$t"
  sep=", "
done
echo "$line; total $((SECONDS / 60)):$(printf %02d $((SECONDS % 60)))"
python3 tests/summarize.py build/meson-logs/testlog.json build/meson-logs/testlog-two_carriers.json \
  build-asan/meson-logs/testlog.json build-tsan/meson-logs/testlog.json
