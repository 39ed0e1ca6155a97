// ringlet: gevent-style green threads for C++ on io_uring. The umbrella header.
#pragma once

#include "ringlet/async_result.hpp"
#include "ringlet/dump.hpp"
#include "ringlet/fiber.hpp"
#include "ringlet/fiber_local.hpp"
#include "ringlet/io.hpp"
#include "ringlet/pool.hpp"
#include "ringlet/queue.hpp"
#include "ringlet/run.hpp"
#include "ringlet/sync.hpp"
#include "ringlet/thread_pool.hpp"
#include "ringlet/signal.hpp"
#include "ringlet/stats.hpp"
#include "ringlet/time.hpp"
