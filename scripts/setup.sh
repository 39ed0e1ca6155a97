#!/usr/bin/env bash
# Install what ringlet needs to build and test (Debian 12), only if missing. Extra package
# names given as arguments are installed too (the benchmarks ask for their baselines).
set -euo pipefail
pkgs=(g++ gcc meson ninja-build pkg-config libboost-context-dev liburing-dev catch2 libcli11-dev python3
      libpython3.11-testsuite
      libcurl4-openssl-dev curl apache2-utils
      libboost-dev libssl-dev openssl zlib1g-dev liburiparser-dev
      clang gdb libdw1 "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
