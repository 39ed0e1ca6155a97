#!/usr/bin/env bash
# Set up, build and run the demo: ten 0.5 s "I/O" tasks, one after another and as fibers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
./build-rel/examples/sleepers "$@"
