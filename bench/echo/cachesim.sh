#!/usr/bin/env bash
# The epoll echo servers under callgrind (bench/echo/cachesim.py): instructions and simulated
# cache misses per message, counted rather than timed, so a noisy host cannot move them.
# Installs valgrind if missing, builds ringlet and the C servers in release mode; arguments go
# to cachesim.py:
#   bench/echo/cachesim.sh [--base OTHER_BUILD_DIR] [--conns 1000,50] [--window 10] [--ll BYTES]
EXTRA_PACKAGES=valgrind source "$(dirname "$0")/prepare.sh"
python3 bench/echo/cachesim.py build-rel "$@"
