#!/usr/bin/env bash
# The echo benchmark: installs the baselines (Go, gevent) if missing, builds ringlet and the
# C servers in release mode, then runs bench/echo/run.py. Arguments go to run.py:
#   bench/echo/run.sh [--runs N] [--seconds S] [--idle N]
EXTRA_PACKAGES=python3-gevent
source "$(dirname "$0")/prepare.sh"
python3 bench/echo/run.py build-rel "$gobin/echo" "$@"
