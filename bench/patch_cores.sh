#!/usr/bin/env bash
# Issue 21: patched programs on two carriers. Unmodified thread-per-connection C servers,
# natively and under `ringlet-run --threads 2` and `--threads 1`, in one run:
#  1. CPU-bound: bench/patch/cpu_echo.c (each request costs WORK_US of arithmetic, calibrated
#     once natively), 50 connections ping-ponging 64 B: msgs/s, ratio to native (goal >= 0.95).
#  2. Pure echo: tests/patch/thread_echo.c, 1000 connections x 64 B: the server's CPU per
#     message under --threads 2 against --threads 1, and Go's echo server (bench/echo/echo.go)
#     with GOMAXPROCS=1 and 2 (goal: ringlet's 2/1 ratio no worse than Go's); native too.
# The load generator (bench/echo/loadgen.c, one thread, epoll) shares the machine's cores with
# the server: nothing is pinned. Runs alternate between the modes (the order rotated each
# round); medians of --runs. Every loadgen run is bounded (timeout SECONDS+60 s); the whole
# run takes about RUNS x (3 + 5) x (SECONDS + 1.5) s.
#   bench/patch_cores.sh [--runs N] [--seconds S] [--work-us U] [--only cpu|echo] [--quick]
#     --runs N      rounds per mode (default 5; at least 3)
#     --seconds S   measured seconds per run (default 3; 0.5 s warm-up before)
#     --work-us U   CPU per request of the CPU-bound server (default 100)
#     --only P      run one part: cpu or echo
#     --quiet-wait W  before each run wait up to W s for the machine to be quiet (under 0.3
#                   cores busy over 0.5 s; default 0: do not wait)
#     --quick       --runs 3 --seconds 1 (about a minute)
# Needs Go for part 2's baseline (`go version`; Debian's golang-go); without it Go's rows are
# left out and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
seconds=3
work_us=100
only=""
quiet_wait=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --work-us) work_us=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --quick) runs=3; seconds=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "patch_cores.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 3 ] 2>/dev/null || { echo "patch_cores.sh: --runs must be at least 3 (medians)" >&2; exit 2; }
case $only in ""|cpu|echo) ;; *) echo "patch_cores.sh: --only takes cpu or echo" >&2; exit 2 ;; esac

bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
rr=$PWD/build-rel/patch/ringlet-run
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/cpu_echo" bench/patch/cpu_echo.c -lpthread
gcc -O2 -o "$tmp/thread_echo" tests/patch/thread_echo.c -lpthread
gcc -O2 -o "$tmp/loadgen" bench/echo/loadgen.c
gobin=""
if command -v go >/dev/null; then
  GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath" GO111MODULE=off go build -o "$tmp/go_echo" bench/echo/echo.go
  gobin=$tmp/go_echo
else
  echo "patch_cores.sh: go is not installed (apt-get install golang-go): Go's rows are left out" >&2
fi
ulimit -n "$(ulimit -Hn)"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
port=$((7800 + RANDOM % 1000))

# Busy ticks of all CPUs (/proc/stat: user nice system irq softirq steal), and a process's.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# --quiet-wait: wait (at most that many seconds) until the machine used under 0.3 cores over
# half a second; says so on stderr when it gives up.
wait_quiet() {
  local end b
  end=$(($(date +%s) + quiet_wait))
  while :; do
    b=$(busy_ticks); sleep 0.5
    [ $(($(busy_ticks) - b)) -lt $(($(getconf CLK_TCK) * 3 / 20)) ] && return
    [ "$(date +%s)" -ge "$end" ] && { echo "  (not quiet after ${quiet_wait} s: measuring anyway)" >&2; return; }
  done
}

# start MODE PROGRAM ARGS... -> $srv, the server's pid (ringlet-run execs the program, so the
# pid is the program's and loadgen reads its CPU time). MODE: native, t1, t2, go1, go2.
start() {
  local mode=$1; shift
  : >"$tmp/srv.out"
  : >"$tmp/srv.err"
  case $mode in
    native) "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" & ;;
    t1) "$rr" --threads 1 -- "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" & ;;
    t2) "$rr" --threads 2 -- "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" & ;;
    go1) GOMAXPROCS=1 "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" & ;;
    go2) GOMAXPROCS=2 "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" & ;;
  esac
  srv=$!
  for _ in $(seq 100); do grep -q "listening" "$tmp/srv.out" && return; sleep 0.05; done
  echo "patch_cores.sh: the $mode server did not start: $(cat "$tmp/srv.err")" >&2; exit 1
}
stop() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true; }
# measure MODE CONNS FILE PROGRAM ARGS...: one loadgen run; appends loadgen's line to FILE.
measure() {
  local mode=$1 conns=$2 file=$3; shift 3
  port=$((port + 1))
  local args=("$@")
  args=("${args[@]//\{port\}/$port}")
  [ "$quiet_wait" != 0 ] && wait_quiet
  start "$mode" "${args[@]}"
  local th out lg m0 s0 t0
  m0=$(busy_ticks); s0=$(proc_ticks "$srv"); t0=$(date +%s.%N)
  timeout $((${seconds%.*} + 60)) "$tmp/loadgen" 127.0.0.1 "$port" "$conns" 64 "$seconds" 0.5 "$srv" >"$tmp/lg.out" 2>&1 &
  lg=$!
  # The server's OS threads (as /proc/PID/status counts them, io_uring's workers included),
  # read halfway through the measured window.
  sleep "$(awk -v s="$seconds" 'BEGIN { print 0.5 + s / 2 }')"
  th=$(awk '$1 == "Threads:" {print $2}' "/proc/$srv/status")
  wait "$lg" || { echo "patch_cores.sh: loadgen failed against $mode: $(cat "$tmp/lg.out") $(cat "$tmp/srv.err")" >&2; stop; exit 1; }
  # What the rest of the machine (the load generator included) used meanwhile, in cores:
  # all CPUs' busy time less the server's.
  local other
  other=$(awk -v m="$(($(busy_ticks) - m0))" -v s="$(($(proc_ticks "$srv") - s0))" -v t0="$t0" -v t1="$(date +%s.%N)" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (m - s) / hz / (t1 - t0) }')
  out=$(cat "$tmp/lg.out")
  stop
  echo "$out os_threads=$th other_cores=$other" >>"$file"
  echo "  $mode: $out os_threads=$th other_cores=$other" >&2
}
col() { field "$1" <"$2" | median; }
# rotate N WORDS...: the words, starting at the N-th (mod count), so no mode always runs first.
rotate() { local n=$1; shift; local a=("$@") i; for ((i = 0; i < ${#a[@]}; i++)); do echo "${a[(i + n) % ${#a[@]}]}"; done; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg);" \
     "$runs rounds, ${seconds} s each, nothing pinned (the load generator shares the cores)"
echo "# ringlet at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- runtime patch net || echo ' + uncommitted changes')"

if [ "$only" != echo ]; then
  iters=$("$tmp/cpu_echo" --calibrate "$work_us")
  echo "## 1. CPU-bound thread per connection (cpu_echo, $work_us us = $iters iterations per request), 50 connections x 64 B"
  for r in $(seq "$runs"); do
    echo "round $r" >&2
    for m in $(rotate "$r" native t2 t1); do measure "$m" 50 "$tmp/cpu.$m" "$tmp/cpu_echo" "{port}" "$iters"; done
  done
  nm=$(col msgs_per_s "$tmp/cpu.native")
  printf '| server | msgs/s | vs native | vs native, same round (median) | p50 us | p99 us | server CPU us/msg | OS threads | rest of the machine, cores |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for m in native t2 t1; do
    name=$(case $m in native) echo "native (a thread per connection)" ;; t2) echo "ringlet-run --threads 2" ;; t1) echo "ringlet-run --threads 1" ;; esac)
    mps=$(col msgs_per_s "$tmp/cpu.$m")
    # Each round's ratio to the native run of the same round (runs next to each other in
    # time see the same machine), then their median.
    rr_ratio=$(paste <(field msgs_per_s <"$tmp/cpu.$m") <(field msgs_per_s <"$tmp/cpu.native") |
      awk '{ printf "%.4f\n", $1 / $2 }' | median)
    printf '| %s | %s | %sx | %.2fx | %s | %s | %s | %s | %s |\n' "$name" "$mps" "$(div "$mps" "$nm")" "$rr_ratio" "$(col p50_us "$tmp/cpu.$m")" \
      "$(col p99_us "$tmp/cpu.$m")" "$(col cpu_us_per_msg "$tmp/cpu.$m")" "$(col os_threads "$tmp/cpu.$m")" "$(col other_cores "$tmp/cpu.$m")"
  done
  echo "every run (msgs/s, in round order):"
  for m in native t2 t1; do echo "  $m: $(field msgs_per_s <"$tmp/cpu.$m" | tr '\n' ' ')   (rest of the machine, cores: $(field other_cores <"$tmp/cpu.$m" | tr '\n' ' '))"; done
fi

if [ "$only" != cpu ]; then
  echo "## 2. Pure echo, 1000 connections x 64 B: server CPU per message, 1 -> 2 carriers / GOMAXPROCS"
  modes=(t1 t2 native)
  [ -n "$gobin" ] && modes+=(go1 go2)
  for r in $(seq "$runs"); do
    echo "round $r" >&2
    for m in $(rotate "$r" "${modes[@]}"); do
      case $m in
        go1|go2) measure "$m" 1000 "$tmp/echo.$m" "$gobin" "{port}" ;;
        *) measure "$m" 1000 "$tmp/echo.$m" "$tmp/thread_echo" "{port}" ;;
      esac
    done
  done
  printf '| server | msgs/s | p50 us | p99 us | server CPU us/msg | CPU vs its 1-core run | same round (median) | OS threads | rest of the machine, cores |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for m in "${modes[@]}"; do
    name=$(case $m in native) echo "thread_echo native (1000 threads)" ;; t1) echo "thread_echo, ringlet-run --threads 1" ;;
      t2) echo "thread_echo, ringlet-run --threads 2" ;; go1) echo "Go GOMAXPROCS=1" ;; go2) echo "Go GOMAXPROCS=2" ;; esac)
    c=$(col cpu_us_per_msg "$tmp/echo.$m")
    rel="-" per_round="-"
    base=$(case $m in t2) echo t1 ;; go2) echo go1 ;; esac)
    case $m in t1|go1) rel="1.00x" per_round="1.00x" ;; esac
    if [ -n "$base" ]; then
      rel="$(div "$c" "$(col cpu_us_per_msg "$tmp/echo.$base")")x"
      per_round=$(paste <(field cpu_us_per_msg <"$tmp/echo.$m") <(field cpu_us_per_msg <"$tmp/echo.$base") |
        awk '{ printf "%.4f\n", $1 / $2 }' | median | awk '{ printf "%.2fx", $1 }')
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(col msgs_per_s "$tmp/echo.$m")" "$(col p50_us "$tmp/echo.$m")" \
      "$(col p99_us "$tmp/echo.$m")" "$c" "$rel" "$per_round" "$(col os_threads "$tmp/echo.$m")" "$(col other_cores "$tmp/echo.$m")"
  done
  echo "every run (server CPU us/msg, in round order):"
  for m in "${modes[@]}"; do echo "  $m: $(field cpu_us_per_msg <"$tmp/echo.$m" | tr '\n' ' ')   (rest of the machine, cores: $(field other_cores <"$tmp/echo.$m" | tr '\n' ' '))"; done
fi
echo "# done $(date -u +%H:%MZ), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
