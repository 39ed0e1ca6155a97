#!/usr/bin/env bash
# The echo benchmark: installs the baselines (Go, gevent) if missing, builds ringlet and the
# C servers in release mode, then runs bench/echo/run.py. Arguments go to run.py:
#   bench/echo/run.sh [--runs N] [--seconds S] [--idle N]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh golang-go python3-gevent libcli11-dev
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
export GOCACHE="$gobin/cache" GOPATH="$gobin/path" GO111MODULE=off
go build -o "$gobin/echo" bench/echo/echo.go
python3 bench/echo/run.py build-rel "$gobin/echo" "$@"
