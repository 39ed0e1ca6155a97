// ringlet: gevent-style green threads for C++ on io_uring. The umbrella header.
#pragma once

#include "ringlet/fiber.hpp"
#include "ringlet/fiber_local.hpp"
#include "ringlet/io.hpp"
#include "ringlet/run.hpp"
#include "ringlet/time.hpp"
