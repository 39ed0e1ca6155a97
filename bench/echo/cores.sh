#!/usr/bin/env bash
# The echo server on 1 and 2 scheduler threads (bench/echo/cores.py), with Go alongside.
#   bench/echo/cores.sh [--runs N] [--seconds S] [--scenarios 1000x64,50x64]
# It ends with each run's own 2-thread / 1-thread ratios (median, quartiles), the issue-24 figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh golang-go libcli11-dev
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
export GOCACHE="$gobin/cache" GOPATH="$gobin/path" GO111MODULE=off
go build -o "$gobin/echo" bench/echo/echo.go
python3 bench/echo/cores.py build-rel "$gobin/echo" "$@"
