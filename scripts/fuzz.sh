#!/usr/bin/env bash
# Fuzz the HTTP response parser with libFuzzer (clang), under ASan and UBSan.
#
#   bash scripts/fuzz.sh [SECONDS] [WORKDIR]     # default 60 s, in build-fuzz/
#
# Starts from tests/fuzz/corpus (valid responses of every framing), keeps what it finds in
# WORKDIR/corpus, and fails (exit 1, with the crashing input saved in WORKDIR) on any crash,
# sanitizer report, or broken invariant (see tests/fuzz/fuzz_response.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=${2:-build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (apt-get install clang)"; exit 77; }
mkdir -p "$work/corpus"
bin="$work/fuzz_response"
# -O1 -g: what libFuzzer's docs suggest; the parser and zlib glue only, no sockets.
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Inet/http -Inet/include -Iruntime/include \
  tests/fuzz/fuzz_response.cpp net/http/parse.cpp net/http/message.cpp -lz -o "$bin"
echo "fuzz: running the response parser for ${seconds} s"
"$bin" -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" tests/fuzz/corpus 2>&1 | tail -n 15
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED (exit $status); the input is in $work/crash-* (replay: $bin FILE)"
  exit 1
fi
echo "fuzz: no crash in ${seconds} s"
