#!/usr/bin/env bash
# The echo server on 1 and 2 scheduler threads (bench/echo/cores.py), with Go alongside.
#   bench/echo/cores.sh [--runs N] [--seconds S] [--scenarios 1000x64,50x64]
# It ends with each run's own 2-thread / 1-thread ratios (median, quartiles), the issue-24 figure.
source "$(dirname "$0")/prepare.sh"
python3 bench/echo/cores.py build-rel "$gobin/echo" "$@"
