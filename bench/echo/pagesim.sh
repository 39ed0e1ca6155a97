#!/usr/bin/env bash
# The epoll echo servers under valgrind's lackey (bench/echo/pagesim.py): the distinct pages
# each touches between two system calls, per message, counted rather than timed. Installs
# valgrind if missing, builds ringlet and the C servers in release mode; arguments go to
# pagesim.py:
#   bench/echo/pagesim.sh [--base OTHER_BUILD_DIR] [--conns 400] [--period 0.9] [--count 2000]
EXTRA_PACKAGES=valgrind source "$(dirname "$0")/prepare.sh"
python3 bench/echo/pagesim.py build-rel "$@"
