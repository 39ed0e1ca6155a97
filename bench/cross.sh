#!/usr/bin/env bash
# Cross-core wake-ups, ringlet (bench/bench_cross.cpp) and Go (bench/go/cross.go, GOMAXPROCS=2)
# side by side in one go: N runs of each, alternating. Each run's figure is itself the median
# of 5 rounds; the table gives, per figure, the median of the runs and every run's figure.
# The like-for-like rows are cross_busy_waker (a wake across cores / Ps, the waker busy).
#   bench/cross.sh [--runs N] [--seconds S] [BUILD_DIR]
# BUILD_DIR (default build-rel) is a release build with the benchmarks (-Dbench=true).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
seconds=0.5
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "cross.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
build=${1:-build-rel}
[ -x "$build/bench/bench_cross" ] || { echo "cross.sh: $build/bench/bench_cross is missing (bash scripts/build.sh $build --buildtype=release)" >&2; exit 2; }
command -v go >/dev/null || { echo "cross.sh: go is missing (bash scripts/setup.sh golang-go)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GOCACHE="$tmp/cache" GOPATH="$tmp/path" GO111MODULE=off go build -o "$tmp/cross" bench/go/cross.go
for r in $(seq "$runs"); do
  echo "run $r:" >&2
  "$build/bench/bench_cross" --seconds "$seconds" | tee -a "$tmp/all" >&2
  "$tmp/cross" "$seconds" | tee -a "$tmp/all" >&2
done
echo "# cross-core wakes: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores; $runs runs, each figure the median of 5 rounds of $seconds s"
echo
echo "| figure | implementation | ns per wake, median of $runs | runs |"
echo "|---|---|---:|---|"
awk '
  { b = ""; i = ""; v = ""
    for (k = 1; k <= NF; k++) {
      split($k, kv, "=")
      if (kv[1] == "bench") b = kv[2]; else if (kv[1] == "impl") i = kv[2]; else if (kv[1] == "ns_per_wake") v = kv[2]
    }
    if (b == "") next
    key = b SUBSEP i
    if (!(key in n)) { order[++keys] = key; bench_of[key] = b; impl_of[key] = i }
    vals[key, ++n[key]] = v
  }
  END {
    # grouped by figure, in the order first seen
    for (g = 1; g <= keys; g++) {
      b = bench_of[order[g]]
      if (b in done) continue
      done[b] = 1
      for (j = 1; j <= keys; j++) {
        key = order[j]
        if (bench_of[key] != b) continue
        m = n[key]; list = ""
        for (k = 1; k <= m; k++) { a[k] = vals[key, k] + 0; list = list (k > 1 ? ", " : "") vals[key, k] }
        for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
        med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        printf "| %s | %s | %d | %s |\n", b, impl_of[key], med, list
      }
    }
  }' "$tmp/all"
