#!/usr/bin/env bash
# Install ringlet into a temporary prefix and build a consumer with only pkg-config, the way
# the README says an outside program builds.
set -euo pipefail
build=$1
prefix=$(mktemp -d /tmp/ringlet-prefix-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
meson install -C "$build" --destdir "$prefix" --quiet >/dev/null
root="$prefix$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')"
pc=$(dirname "$(find "$root" -name ringlet.pc | head -n1)")
# The .pc file names the real prefix; point it at the staged one.
sed -i "s|^prefix=.*|prefix=$root|" "$pc/ringlet.pc" "$pc/ringlet-http.pc"
cat > "$prefix/consumer.cpp" <<'CPP'
#include <ringlet/ringlet.hpp>
#include <chrono>
#include <cstdio>
#include <vector>
int main() {
  using namespace std::chrono_literals;
  auto t0 = std::chrono::steady_clock::now();
  int sum = ringlet::run([] {
    std::vector<ringlet::Greenlet<int>> gs;
    for (int i = 1; i <= 10; ++i)
      gs.push_back(ringlet::spawn([i] { ringlet::sleep(100ms); return i; }));
    int s = 0;
    for (auto& g : gs) s += g.get();
    return s;
  });
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sum=%d took=%.2f\n", sum, took);
  return sum == 55 && took < 0.5 ? 0 : 1;
}
CPP
export PKG_CONFIG_PATH="$pc"
g++ -std=c++20 "$prefix/consumer.cpp" -o "$prefix/consumer" $(pkg-config --cflags --libs ringlet)
LD_LIBRARY_PATH="$(pkg-config --variable=libdir ringlet)" "$prefix/consumer"
# Every C++ block of the README must build and run as written: the first is a whole program,
# the others are fragments wrapped in main().
src=$(dirname "$0")/../README.md
python3 - "$src" "$prefix" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```cpp\n(.*?)^```", text, re.S | re.M)
for i, b in enumerate(blocks):
    if "int main" not in b:
        b = ("#include <ringlet/ringlet.hpp>\n#include <cstdio>\n#include <string>\n"
             "using namespace std::chrono_literals;\nint main() {\n" + b + "}\n")
    open(f"{sys.argv[2]}/readme{i}.cpp", "w").write(b)
print(f"README: {len(blocks)} C++ examples")
PY
for f in "$prefix"/readme*.cpp; do
  pkgs=ringlet
  grep -q "ringlet/net/http.hpp" "$f" && pkgs=ringlet-http  # the HTTP client's own library
  g++ -std=c++20 "$f" -o "${f%.cpp}" $(pkg-config --cflags --libs $pkgs)
  LD_LIBRARY_PATH="$(pkg-config --variable=libdir ringlet)" "${f%.cpp}" </dev/null >/dev/null
done
echo "README examples built and ran"
test -f "$root/include/ringlet/ringlet.hpp"
echo "installed headers, library and ringlet.pc; consumer built and ran"
