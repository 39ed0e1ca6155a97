#!/usr/bin/env bash
# Echo servers two at a time on one core (bench/echo/together.py): the ratio of each pair
# measured over the same seconds, which a shared host's drift cannot split. Installs Go if
# missing, builds ringlet and the C servers in release mode; arguments go to together.py:
#   bench/echo/together.sh [--rounds N] [--seconds S] [--scenarios 1000x64,50x64] [--pairs A/B,...]
source "$(dirname "$0")/prepare.sh"
python3 bench/echo/together.py build-rel --go "$gobin/echo" "$@"
