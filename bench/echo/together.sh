#!/usr/bin/env bash
# Echo servers two at a time on one core (bench/echo/together.py): the ratio of each pair
# measured over the same seconds, which a shared host's drift cannot split. Installs Go if
# missing, builds ringlet and the C servers in release mode; arguments go to together.py:
#   bench/echo/together.sh [--rounds N] [--seconds S] [--scenarios 1000x64,50x64] [--pairs A/B,...]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh golang-go libcli11-dev
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
export GOCACHE="$gobin/cache" GOPATH="$gobin/path" GO111MODULE=off
go build -o "$gobin/echo" bench/echo/echo.go
python3 bench/echo/together.py build-rel --go "$gobin/echo" "$@"
