#!/usr/bin/env bash
# The crawler's peak RSS on one big page: bench/crawl/gen_site.py --big-page (600 000 links,
# ~10 MB) served by examples/http_server, crawled at --depth 0 (the page alone: its links
# counted, not followed) and at --depth 1 --max-pages 1 (its links also queued, the crawl's
# frontier), one thread; /usr/bin/time -v's maximum resident set size and CPU.
#
#   bash bench/crawl/memory.sh [BUILD] [LINKS] [BASELINE_CRAWLER]   # build-rel, 600000
#
# BASELINE_CRAWLER: another build of examples/crawler, measured the same way beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-rel}
links=${2:-600000}
baseline=${3:-}
[ -x "$build/examples/crawler" ] || { echo "memory: $build/examples/crawler missing (bash scripts/build.sh $build --buildtype=release)"; exit 1; }
[ -x /usr/bin/time ] || { echo "memory: /usr/bin/time missing (apt-get install time)"; exit 1; }
work=$(mktemp -d /tmp/ringlet-crawl-mem-XXXXXX)
python3 bench/crawl/gen_site.py "$work" --big-page "$links"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/examples/http_server" "$work" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
echo "one page of $(stat -c %s "$work/big.html") bytes, $links links"
echo
echo "| crawler | depth | peak RSS | CPU (user + sys) |"
echo "|---|---|---:|---:|"
for c in "$build/examples/crawler" ${baseline:+"$baseline"}; do
  for d in "0" "1 --max-pages 1"; do
    # shellcheck disable=SC2086
    /usr/bin/time -f "%M %U %S" -o "$work/time" "$c" "http://127.0.0.1:$port/big.html" --no-robots -q --threads 1 \
      --max-size 100000000 --depth $d --output /dev/null 2>/dev/null
    read -r kb user sys < "$work/time"
    printf '| %s | %s | %d MB | %.2f s |\n' "$c" "$d" $((kb / 1024)) "$(echo "$user + $sys" | bc)"
  done
done
