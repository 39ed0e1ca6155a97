// A library whose constructor uses std::cout: it makes C++'s standard streams before the
// patch's constructor runs (iostream_order.cpp).
#include <iostream>

namespace {
struct Early {
  Early() { std::cout.flush(); }
} early;
}  // namespace

void iostream_lib_hello() { std::cout << "from the library: std::cout\n"; }
