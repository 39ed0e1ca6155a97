#!/usr/bin/env bash
# Configure (once) and build one build directory: build.sh [--configure-only] DIR [meson options...]
# --configure-only: leave the building to `meson test`, which builds just what the tests it
# runs need (the sanitizer builds of scripts/test.sh).
set -euo pipefail
configure_only=0
if [ "${1:-}" = --configure-only ]; then
  configure_only=1
  shift
fi
dir=$1
shift
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >/dev/null
fi
((configure_only)) || ninja -C "$dir" >/dev/null
