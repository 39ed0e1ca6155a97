#!/usr/bin/env bash
# Set up, build and run every test: the suite on io_uring and on epoll, the install check,
# the patch suite a second time with patched programs on two carriers (the test setup
# two_carriers, RINGLET_THREADS=2; the first run's default setup has 1), then the suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, and the cross-core cases under
# ThreadSanitizer. Ends with the line "N passed, M failed, K skipped" (Catch2 test cases,
# summed over every run).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

bash scripts/build.sh build --buildtype=debugoptimized || exit 1
meson test -C build --print-errorlogs --num-processes 1
meson test -C build --setup two_carriers --suite patch --print-errorlogs --num-processes 1
# The sanitizer builds compile only what their suites run (meson test builds a test's
# programs first; a build that fails leaves no log, which the summary counts as a failure).
bash scripts/build.sh --configure-only build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false || exit 1
rm -f build-asan/meson-logs/testlog.json
meson test -C build-asan --suite runtime --suite patch --suite http --print-errorlogs --num-processes 1

bash scripts/build.sh --configure-only build-tsan --buildtype=debug -Db_sanitize=thread -Db_lundef=false -Dbench=false || exit 1
rm -f build-tsan/meson-logs/testlog.json
meson test -C build-tsan --suite multicore --print-errorlogs --num-processes 1

python3 tests/summarize.py build/meson-logs/testlog.json build/meson-logs/testlog-two_carriers.json \
  build-asan/meson-logs/testlog.json build-tsan/meson-logs/testlog.json
