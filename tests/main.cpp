#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "ringlet/ringlet.hpp"

int main(int argc, char** argv) {
  // Say which engine this run exercises, as the first line of the log.
  std::string engine = "?";
  try {
    engine = ringlet::run([] { return std::string(ringlet::engine()); });
  } catch (const std::exception& e) {
    engine = std::string("unavailable: ") + e.what();
  }
  std::printf("ringlet tests on engine: %s\n", engine.c_str());
  return Catch::Session().run(argc, argv);
}
