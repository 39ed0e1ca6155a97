#!/usr/bin/env bash
# strace_echo.sh BUILD NAME PORT CONNS: strace -c -f the server under a 2 s load of CONNS
# connections x 64 B ping-pong; prints round trips and the syscall table.
b=$1; name=$2; port=$3; conns=$4
if [ "$name" = ringlet ]; then cmd=("$b/examples/echo_server" --listen "127.0.0.1:$port"); else cmd=("$b/bench/epoll_echo" "$port"); fi
out=$(mktemp)
RINGLET_BACKEND=epoll strace -c -f -o "$out" "${cmd[@]}" > /dev/null 2>&1 &
sp=$!
sleep 1
lg=$("$b/bench/loadgen" 127.0.0.1 "$port" "$conns" 64 2)
echo "$lg"
kill -INT $(pgrep -P $sp) 2>/dev/null; sleep 0.5; kill $(pgrep -P $sp) 2>/dev/null; wait $sp
cat "$out"; rm -f "$out"
