#!/usr/bin/env bash
# The crawler benchmark: installs the baselines (nginx, Go with golang.org/x/net/html, gevent)
# if missing, builds ringlet in release mode, then runs bench/crawl/run.py (arguments go to
# it: --runs N, --pages N, --conc C, --words 30,450, --slow-conc 50,500, --skip-fast, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh golang-go golang-golang-x-net-dev python3-gevent nginx-light
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
python3 bench/crawl/run.py --build build-rel "$@"
