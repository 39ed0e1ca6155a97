#!/usr/bin/env bash
# Two ringlet-run builds side by side on reads that usually find their data there: a
# thread-per-connection server (bench/patch/stream_read.c) reading small pieces of a stream
# that native client threads write as fast as they can. Alternating runs; MiB/s and the
# server's CPU per MiB, medians and after/before.
#   bench/patch/stream_ab.sh [--runs N] [--conns C] [--mb MB] [--read B] [--threads T] BEFORE_RINGLET_RUN AFTER_RINGLET_RUN
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5; conns=4; mb=32; rd=512; threads=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --mb) mb=$2; shift 2 ;;
    --read) rd=$2; shift 2 ;;
    --threads) threads=(--threads "$2"); shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "stream_ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: stream_ab.sh [--runs N] [--conns C] [--mb MB] [--read B] [--threads T] BEFORE_RINGLET_RUN AFTER_RINGLET_RUN" >&2; exit 2; }
for rr in "$1" "$2"; do [ -x "$rr" ] || { echo "stream_ab.sh: $rr is not an executable ringlet-run" >&2; exit 2; }; done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/stream_read" bench/patch/stream_read.c -lpthread
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
port=7800
for r in $(seq "$runs"); do
  for v in before after; do
    rr=$([ $v = before ] && echo "$1" || echo "$2")
    port=$((port + 1))
    : >"$tmp/srv.out"
    RINGLET_MAX_BLOCKING_MS=0 "$rr" "${threads[@]}" -- "$tmp/stream_read" server "$port" "$rd" >"$tmp/srv.out" 2>/dev/null &
    srv=$!
    for _ in $(seq 100); do grep -q "^listening on $port\$" "$tmp/srv.out" && break; sleep 0.05; done
    grep -q "^listening on $port\$" "$tmp/srv.out" ||
      { echo "stream_ab.sh: the server under $rr did not start listening on $port in 5 s" >&2; exit 1; }
    out=$("$tmp/stream_read" client "$port" "$conns" "$mb" "$srv")
    kill "$srv"; wait "$srv" 2>/dev/null || true
    echo "$out" | field mib_per_s >>"$tmp/$v.mps"
    echo "$out" | field server_cpu_ms_per_mib >>"$tmp/$v.cpu"
    echo "run $r $v: $out"
  done
done
bm=$(median <"$tmp/before.mps"); am=$(median <"$tmp/after.mps")
bc=$(median <"$tmp/before.cpu"); ac=$(median <"$tmp/after.cpu")
printf '| | before | after | after/before |\n|---|---:|---:|---:|\n'
printf '| MiB/s | %s | %s | %.3f |\n' "$bm" "$am" "$(awk -v a="$am" -v b="$bm" 'BEGIN { print a / b }')"
printf '| server CPU per MiB, ms | %s | %s | %.3f |\n' "$bc" "$ac" "$(awk -v a="$ac" -v b="$bc" 'BEGIN { print a / b }')"
