# Sourced by run.sh, cores.sh and together.sh: installs what is missing (Go, CLI11, and the
# packages in EXTRA_PACKAGES), builds ringlet and the C servers in release mode into
# build-rel, and Go's echo server into "$gobin/echo" (removed on exit). Leaves the shell in
# the repository's top directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck disable=SC2086  # EXTRA_PACKAGES is a list of package names
bash scripts/setup.sh golang-go libcli11-dev ${EXTRA_PACKAGES:-}
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
export GOCACHE="$gobin/cache" GOPATH="$gobin/path" GO111MODULE=off
go build -o "$gobin/echo" bench/echo/echo.go
