// ringlet::net: addresses, DNS, sockets and StreamServer on fibers. The umbrella header.
#pragma once

#include "ringlet/net/address.hpp"
#include "ringlet/net/dns.hpp"
#include "ringlet/net/server.hpp"
#include "ringlet/net/socket.hpp"
