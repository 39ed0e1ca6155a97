// A small HTTP server on its own thread (and scheduler) for the patch tests: every request
// gets `body` after `delay`, with Connection: close.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "ringlet/net.hpp"
#include "ringlet/ringlet.hpp"

namespace ringlet::test {

class HttpTestServer {
 public:
  HttpTestServer(std::string body, std::chrono::milliseconds delay) : body_(std::move(body)) {
    thread_ = std::thread([this, delay] {
      ringlet::run([this, delay] {
        ringlet::net::StreamServer server{"127.0.0.1:0", [this, delay](ringlet::net::TcpStream& c) {
          std::string req;
          char buf[4096];
          while (req.find("\r\n\r\n") == std::string::npos) {
            std::size_t n = c.read_some({buf, sizeof buf});
            if (n == 0) return;
            req.append(buf, n);
          }
          ringlet::sleep(delay);
          c.write_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                      std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_);
        }};
        server.start();
        port_ = server.address().port();
        ready_.set();
        stop_.wait();
        server.stop(std::chrono::seconds(1));
      });
    });
    ready_.wait();
  }
  ~HttpTestServer() {
    stop_.set();
    thread_.join();
  }
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;
  int port() const { return port_; }
  const std::string& body() const { return body_; }

 private:
  std::string body_;
  std::thread thread_;
  ringlet::Event ready_, stop_;
  int port_ = 0;
};

}  // namespace ringlet::test
