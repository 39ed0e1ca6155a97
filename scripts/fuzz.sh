#!/usr/bin/env bash
# Fuzz the HTTP parsers with libFuzzer (clang), under ASan and UBSan: the response parser,
# the request parser (http_server's), the chunked decoder of both, and the crawler's link
# scanner (examples/crawler/link_scan.cpp).
#
#   bash scripts/fuzz.sh [SECONDS] [WORKDIR] [TARGET...]   # 60 s each, in build-fuzz/, all four
#
# TARGET is response, request, chunked or links. Each starts from tests/fuzz/corpus-TARGET, keeps
# what it finds in WORKDIR/corpus-TARGET, and fails (exit 1, with the crashing input saved
# in WORKDIR) on any crash, sanitizer report, broken invariant, or bytes kept beyond the
# parser's limit plus one read (tests/fuzz/fuzz_feed.hpp). libFuzzer's memory limits are on:
# 1 GB of RSS, 64 MB in one allocation.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
work=${2:-build-fuzz}
shift $(( $# < 2 ? $# : 2 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(response request chunked links)
command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (apt-get install clang)"; exit 77; }
mkdir -p "$work"
# -O1 -g: what libFuzzer's docs suggest; the parsers and zlib glue only, no sockets. The
# parsers are compiled once, each target linked against them.
flags=(-std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -Inet/http -Inet/include
       -Iruntime/include -Iexamples/crawler)
for src in parse message url; do
  clang++ "${flags[@]}" -fsanitize=fuzzer-no-link -c "net/http/$src.cpp" -o "$work/$src.o"
done
for src in link_scan link_scan_tokenizer link_scan_refs link_scan_entities; do
  clang++ "${flags[@]}" -fsanitize=fuzzer-no-link -c "examples/crawler/$src.cpp" -o "$work/$src.o"
done
status=0
for t in "${targets[@]}"; do
  bin="$work/fuzz_$t"
  if [ "$t" = links ]; then
    objs=("$work/link_scan.o" "$work/link_scan_tokenizer.o" "$work/link_scan_refs.o" "$work/link_scan_entities.o"
          "$work/url.o" "$work/message.o" -luriparser)
  else
    objs=("$work/parse.o" "$work/message.o")
  fi
  clang++ "${flags[@]}" -fsanitize=fuzzer "tests/fuzz/fuzz_$t.cpp" "${objs[@]}" -lz -o "$bin"
  mkdir -p "$work/corpus-$t"
  echo "fuzz: running the $t target for ${seconds} s"
  set +e
  "$bin" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=64 \
    -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/corpus-$t" "tests/fuzz/corpus-$t" 2>&1 | tail -n 15
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); the input is in $work/$t-crash-* (replay: $bin FILE)"
    status=1
  else
    echo "fuzz: $t: no finding in ${seconds} s"
  fi
done
exit $status
