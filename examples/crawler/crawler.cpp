// A concurrent web crawler whose fetch code reads as a plain sequential loop: every page is
// a fiber that calls client.get() and waits; the runtime overlaps them.
//
//   crawler URL... [--depth D] [--max-pages N] [--concurrency C] [--per-host H]
//                  [--same-host | --allow-host H... | --any-host] [--timeout T] [--retries R]
//                  [--user-agent UA] [--output FILE] [--insecure] [--no-robots] [--quiet]
//                  [--max-size BYTES] [--max-header BYTES]
//
// Breadth first from the seeds; URLs normalised (RFC 3986) and fetched once; links from
// <a>/<area> href, <iframe>/<frame> src and <meta refresh> resolved against <base>, none
// from a page with <meta name=robots content=nofollow> (link_scan.hpp); robots.txt honoured
// per origin; at most C fetches at once and H per host; timeouts, connection failures and
// 5xx retried with back-off. One JSON line per page on --output (default stdout), a live
// progress line and a summary on stderr. Ctrl-C stops it: fetches in flight are recorded as
// interrupted, the output is complete, the summary printed (a second Ctrl-C ends it at once).

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ringlet/net/http.hpp>
#include <ringlet/ringlet.hpp>

#include "json.hpp"
#include "links.hpp"
#include "robots.hpp"

namespace http = ringlet::net::http;
using Clock = std::chrono::steady_clock;

namespace {

struct Settings {
  std::vector<std::string> seeds;
  int depth = 3;
  std::size_t max_pages = 1000;
  std::size_t concurrency = 20;
  std::size_t per_host = 4;
  bool same_host = false;
  bool any_host = false;
  std::vector<std::string> allow_hosts;
  double timeout = 10;
  int retries = 2;
  double backoff = 0.5;
  std::string user_agent = "ringlet-crawler/0.1";
  std::string output = "-";
  bool insecure = false;
  std::string ca_file;
  std::size_t max_size = 10u << 20;
  std::size_t max_header = 64u << 10;
  unsigned threads = 0;
  bool robots = true;
  bool quiet = false;
};

struct Item {
  http::Url url;
  int depth;
};

// One origin (scheme://host:port): its queue, its limit of fetches at once, its robots.txt.
struct Host {
  explicit Host(std::size_t per_host) : slots(per_host) {}
  std::string origin;
  std::deque<Item> queue;
  ringlet::Semaphore slots;  // --per-host: a permit per fetch in flight
  enum class RobotsState { Unknown, Fetching, Ready } robots_state = RobotsState::Unknown;
  crawler::Robots robots;
  std::string robots_error;  // why every page of the host is refused, if it is
  ringlet::Event robots_ready;
};

class Crawler {
 public:
  explicit Crawler(const Settings& s, std::FILE* out)
      : s_(s), out_(out), client_(client_options(s)), rng_(std::random_device{}()), workers_(s.concurrency) {}

  // Returns false if no seed was valid.
  bool seed() {
    for (const auto& text : s_.seeds) {
      std::string t = text;
      if (t.find("://") == std::string::npos) t = "http://" + t;
      std::string why;
      auto u = http::Url::try_parse(t, &why);
      if (!u) {
        std::fprintf(stderr, "crawler: skipping seed '%s': %s\n", text.c_str(), why.c_str());
        continue;
      }
      seed_hosts_.insert(u->host());
      enqueue(std::move(*u), 0);
    }
    for (const auto& h : s_.allow_hosts) {
      std::string lower = h;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      allowed_.insert(lower);
    }
    return queued_ > 0;
  }

  // The dispatcher: start fetches while there is room, until nothing is queued or running.
  // The global limit is a Pool of --concurrency fibers, the per-host one a Semaphore per
  // origin. The dispatcher never blocks in either (it asks for a free slot first), so it
  // can start a fetch for whichever origin has room and stop at once on Ctrl-C.
  void run() {
    started_ = Clock::now();
    auto progress = ringlet::spawn([this] { progress_loop(); });
    while (!stopping_) {
      changed_.clear();
      bool started_one = false;
      while (workers_.free_count() > 0 && dispatched_ < s_.max_pages && !stopping_) {
        Host* h = pick();  // takes a permit of that origin's Semaphore
        if (!h) break;
        Item item = std::move(h->queue.front());
        h->queue.pop_front();
        --queued_;
        ++active_;
        ++dispatched_;
        workers_.spawn([this, h, item = std::move(item)]() mutable { fetch(*h, std::move(item)); });
        started_one = true;
      }
      if (active_ == 0 && (queued_ == 0 || dispatched_ >= s_.max_pages)) break;
      if (!started_one) changed_.wait();
    }
    workers_.kill();  // on Ctrl-C: each records itself as interrupted
    progress.kill();
    finished_ = Clock::now();
    if (progress_shown_) std::fputs("\r\033[K", stderr);
    std::fflush(out_);
  }

  void interrupt() {
    interrupted_ = true;
    stopping_ = true;
    changed_.set();
  }

  void summary() const {
    double secs = std::chrono::duration<double>(finished_ - started_).count();
    std::fprintf(stderr, "crawler: %s %zu pages in %.2f s (%.1f pages/s): %zu ok, %zu errors", interrupted_ ? "interrupted after" : "crawled",
                 done_, secs, secs > 0 ? static_cast<double>(done_) / secs : 0.0, done_ - errors_, errors_);
    std::string detail;
    for (const auto& [what, n] : error_kinds_) detail += (detail.empty() ? "" : ", ") + std::to_string(n) + " " + what;
    if (!detail.empty()) std::fprintf(stderr, " (%s)", detail.c_str());
    std::fprintf(stderr, "\ncrawler: %zu links seen, %zu queued not fetched%s, %zu blocked by robots.txt, %zu invalid or "
                 "not http(s), %zu retries, %" PRIu64 " connections for %" PRIu64 " requests\n",
                 seen_.size(), queued_, dispatched_ >= s_.max_pages && queued_ ? " (page limit)" : "", blocked_,
                 invalid_links_, retries_, client_.stats().connections, client_.stats().requests);
  }

  bool interrupted() const noexcept { return interrupted_; }

 private:
  static http::ClientOptions client_options(const Settings& s) {
    http::ClientOptions o;
    auto t = std::chrono::milliseconds(static_cast<long long>(s.timeout * 1000));
    o.connect_timeout = o.read_timeout = o.total_timeout = t;
    o.max_body = s.max_size;
    o.max_header = s.max_header;
    o.verify = !s.insecure;
    o.ca_file = s.ca_file;
    o.user_agent = s.user_agent;
    o.max_idle_per_host = std::max<std::size_t>(s.per_host, 1);
    return o;
  }

  bool host_allowed(const http::Url& u) const {
    if (s_.any_host) return true;
    if (seed_hosts_.count(u.host())) return true;
    return allowed_.count(u.host()) || allowed_.count(u.authority());
  }

  void enqueue(http::Url u, int depth) {
    if (!seen_.insert(u.str()).second) return;
    auto [it, fresh] = hosts_.try_emplace(u.origin(), s_.per_host);
    Host& h = it->second;
    if (fresh) {
      h.origin = it->first;
      if (!s_.robots) h.robots_state = Host::RobotsState::Ready;
      rotation_.push_back(&h);
    }
    h.queue.push_back({std::move(u), depth});
    ++queued_;
  }

  // The next host, round robin, with something queued and a free permit (taken).
  Host* pick() {
    for (std::size_t tried = 0; tried < rotation_.size(); ++tried) {
      Host* h = rotation_[cursor_++ % rotation_.size()];
      if (!h->queue.empty() && h->slots.try_acquire()) return h;
    }
    return nullptr;
  }

  void ensure_robots(Host& h) {
    if (h.robots_state == Host::RobotsState::Ready) return;
    if (h.robots_state == Host::RobotsState::Fetching) {
      h.robots_ready.wait();
      return;
    }
    h.robots_state = Host::RobotsState::Fetching;
    struct Done {
      Host& h;
      ~Done() {
        h.robots_state = Host::RobotsState::Ready;
        h.robots_ready.set();
      }
    } done{h};
    try {
      auto r = client_.get(h.origin + "/robots.txt");
      if (r.status >= 200 && r.status < 300) {
        h.robots = crawler::Robots::parse(r.body, s_.user_agent);
      } else if (r.status >= 500) {
        // RFC 9309: a robots.txt that is unavailable means "disallow everything".
        h.robots = crawler::Robots::disallow_all();
        h.robots_error = "robots.txt unavailable (HTTP " + std::to_string(r.status) + ")";
      } else {
        h.robots = crawler::Robots::allow_all();  // 4xx: no rules
      }
    } catch (const http::Error&) {
      // The host itself cannot be reached (DNS, connect, TLS, timeout): its pages will fail
      // the same way, and each records the reason.
      h.robots = crawler::Robots::allow_all();
    }
  }

  std::chrono::duration<double> backoff(int attempt) {
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    return std::chrono::duration<double>(std::min(30.0, s_.backoff * (1 << attempt) * jitter(rng_)));
  }

  struct Record {
    std::string final_url;
    int status = 0;
    std::string content_type;
    std::size_t bytes = 0;
    std::size_t links = 0;
    std::size_t invalid_links = 0;
    bool nofollow = false;  // <meta name=robots content=nofollow>: its links not followed
    std::size_t redirects = 0;
    int retries = 0;
    std::string error;
    std::string error_kind;
  };

  void fetch(Host& h, Item item) {
    struct Leave {
      Crawler& c;
      Host& h;
      ~Leave() {
        h.slots.release();
        --c.active_;
        c.changed_.set();
      }
    } leave{*this, h};
    auto t0 = Clock::now();
    Record rec;
    try {
      ensure_robots(h);
      if (!h.robots_error.empty()) {
        rec.error = h.robots_error;
        rec.error_kind = "robots.txt unavailable";
        write(item, rec, t0);
        return;
      }
      if (!h.robots.allowed(item.url.target())) {
        ++blocked_;
        --dispatched_;  // not a page: it does not count against --max-pages
        return;
      }
      for (int attempt = 0;; ++attempt) {
        rec = Record{};
        rec.retries = attempt;
        try {
          http::Response r = client_.get(item.url.str());
          rec.final_url = r.url;
          rec.status = r.status;
          rec.content_type = r.content_type();
          rec.bytes = r.body.size();
          rec.redirects = r.redirects.size();
          if (r.status >= 500 && attempt < s_.retries) {
            ++retries_;
            ringlet::sleep(backoff(attempt));
            continue;
          }
          if (r.status >= 400) {
            rec.error = "HTTP " + std::to_string(r.status) + (r.reason.empty() ? "" : " " + r.reason);
            rec.error_kind = "http " + std::to_string(r.status);
          }
          if (r.ok() && crawler::looks_like_html(rec.content_type, r.body)) {
            http::Url final_url = http::Url::parse(r.url);
            seen_.insert(final_url.str());
            bool follow = item.depth < s_.depth;
            auto links = parse(std::move(r.body), final_url, follow);
            rec.links = links.count;
            rec.nofollow = links.nofollow;
            rec.invalid_links = links.invalid;
            invalid_links_ += links.invalid;
            if (follow)
              for (auto& u : links.urls)
                if (host_allowed(u)) enqueue(std::move(u), item.depth + 1);
            changed_.set();
          }
          break;
        } catch (const http::Error& e) {
          auto k = e.kind();
          bool retry = k == http::ErrorKind::Timeout || k == http::ErrorKind::Io || k == http::ErrorKind::Connect;
          if (retry && attempt < s_.retries && !stopping_) {
            ++retries_;
            ringlet::sleep(backoff(attempt));
            continue;
          }
          rec.error = e.what();
          rec.error_kind = http::to_string(k);
          break;
        }
      }
    } catch (const ringlet::GreenletExit&) {
      rec.error = "interrupted";
      rec.error_kind = "interrupted";
      write(item, rec, t0);
      throw;
    } catch (const std::exception& e) {  // never expected; recorded rather than fatal
      rec.error = e.what();
      rec.error_kind = "internal";
    }
    write(item, rec, t0);
  }

  // Link extraction is the crawl's CPU work (a tokenizer pass). With --threads the other cores
  // take it: a page goes to the core with the fewest parses waiting, and this fiber waits
  // for the result as for any I/O. Core 0 also runs every fetch, so it parses a page itself
  // only when every other core has kMaxBacklog waiting: the split adapts to how heavy pages
  // are against the rest of the work. The body moves into the job, so a fiber killed while
  // it waits leaves nothing dangling.
  static constexpr int kMaxBacklog = 16;
  crawler::Links parse(std::string body, const http::Url& url, bool keep_urls) {
    unsigned n = ringlet::cores();
    unsigned best = 0;
    for (unsigned c = 1; c < n; ++c)
      if (best == 0 || backlog_[c].load(std::memory_order_relaxed) < backlog_[best].load(std::memory_order_relaxed))
        best = c;
    if (best == 0 || backlog_[best].load(std::memory_order_relaxed) >= kMaxBacklog)
      return crawler::extract_links(body, url, keep_urls);
    backlog_[best].fetch_add(1, std::memory_order_relaxed);
    auto* done = &backlog_[best];
    return ringlet::spawn_on(best, [body = std::move(body), url, done, keep_urls] {
             struct Done {
               std::atomic<int>* d;
               ~Done() { d->fetch_sub(1, std::memory_order_relaxed); }
             } leave{done};
             return crawler::extract_links(body, url, keep_urls);
           }).get();
  }

  void write(const Item& item, const Record& rec, Clock::time_point t0) {
    ++done_;
    if (!rec.error.empty()) {
      ++errors_;
      ++error_kinds_[rec.error_kind];
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::string line;
    line.reserve(256);
    line += "{\"url\":";
    crawler::json_string(line, item.url.str());
    line += ",\"final_url\":";
    if (rec.final_url.empty())
      line += "null";
    else
      crawler::json_string(line, rec.final_url);
    line += ",\"status\":";
    line += rec.status ? std::to_string(rec.status) : "null";
    line += ",\"content_type\":";
    if (rec.content_type.empty())
      line += "null";
    else
      crawler::json_string(line, rec.content_type);
    line += ",\"bytes\":" + std::to_string(rec.bytes);
    line += ",\"links\":" + std::to_string(rec.links);
    line += ",\"invalid_links\":" + std::to_string(rec.invalid_links);
    if (rec.nofollow) line += ",\"nofollow\":true";
    line += ",\"depth\":" + std::to_string(item.depth);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", ms);
    line += ",\"elapsed_ms\":";
    line += buf;
    line += ",\"redirects\":" + std::to_string(rec.redirects);
    line += ",\"retries\":" + std::to_string(rec.retries);
    line += ",\"error\":";
    if (rec.error.empty())
      line += "null";
    else
      crawler::json_string(line, rec.error);
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), out_);
  }

  void progress_loop() {
    bool tty = isatty(STDERR_FILENO);
    auto every = std::chrono::milliseconds(tty ? 250 : 2000);
    for (;;) {
      ringlet::sleep(every);
      std::fflush(out_);
      if (s_.quiet) continue;
      double secs = std::chrono::duration<double>(Clock::now() - started_).count();
      std::fprintf(stderr, "%scrawler: %zu done, %zu queued, %zu active, %zu errors, %.1f pages/s%s", tty ? "\r" : "",
                   done_, queued_, active_, errors_, secs > 0 ? static_cast<double>(done_) / secs : 0.0,
                   tty ? "\033[K" : "\n");
      progress_shown_ = tty;
    }
  }

  const Settings& s_;
  std::FILE* out_;
  http::Client client_;
  std::mt19937 rng_;
  std::unordered_map<std::string, Host> hosts_;  // by origin; nodes never move
  std::vector<Host*> rotation_;
  std::size_t cursor_ = 0;
  std::unique_ptr<std::atomic<int>[]> backlog_{new std::atomic<int>[ringlet::cores()]{}};  // parses per core
  std::unordered_set<std::string> seen_;
  std::unordered_set<std::string> seed_hosts_, allowed_;
  ringlet::Pool workers_;  // the fetches: at most --concurrency at once
  ringlet::Event changed_;
  std::size_t queued_ = 0, active_ = 0, dispatched_ = 0, done_ = 0, errors_ = 0, blocked_ = 0, retries_ = 0,
              invalid_links_ = 0;
  std::map<std::string, std::size_t> error_kinds_;
  bool stopping_ = false, interrupted_ = false, progress_shown_ = false;
  Clock::time_point started_{}, finished_{};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringlet crawler: breadth-first, many pages at once, one fiber per fetch"};
  Settings s;
  app.add_option("URL", s.seeds, "where to start (http:// is assumed without a scheme)")->required();
  app.add_option("-d,--depth", s.depth, "follow links this many steps from the seeds")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("-n,--max-pages", s.max_pages, "fetch at most N pages")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("-c,--concurrency", s.concurrency, "fetches at once")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--per-host", s.per_host, "fetches at once per host (scheme://host:port)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  auto same = app.add_flag("--same-host", s.same_host, "follow links to the seeds' hosts only (the default)");
  auto allow = app.add_option("--allow-host", s.allow_hosts, "also follow links to HOST or HOST:PORT (repeatable)");
  auto any = app.add_flag("--any-host", s.any_host, "follow links to every host");
  any->excludes(same)->excludes(allow);
  app.add_option("-t,--timeout", s.timeout, "seconds per fetch (connect, each read, and in all)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("-r,--retries", s.retries, "retries after a timeout, a failed connection or a 5xx")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--backoff", s.backoff, "seconds before the first retry (doubling, with jitter)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("-A,--user-agent", s.user_agent, "User-Agent header, and the name looked up in robots.txt")
      ->capture_default_str();
  app.add_option("-o,--output", s.output, "JSON lines go here; - is stdout")->capture_default_str();
  app.add_flag("-k,--insecure", s.insecure, "HTTPS: do not verify certificates");
  app.add_option("--ca-file", s.ca_file, "HTTPS: trust the CAs in this PEM file")->check(CLI::ExistingFile);
  app.add_option("--max-size", s.max_size, "bytes a page may have (on the wire and decoded)")->capture_default_str();
  app.add_option("--max-header", s.max_header,
                 "bytes a response may have before its body (status line, fields) and in its trailers")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("!--no-robots", s.robots, "ignore robots.txt");
  app.add_option("-T,--threads", s.threads, "cores for parsing pages (one scheduler each); 0 = one per CPU")
      ->capture_default_str();
  app.add_flag("-q,--quiet", s.quiet, "no progress line (the summary still comes)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::FILE* out = stdout;
  if (s.output != "-") {
    out = std::fopen(s.output.c_str(), "w");
    if (!out) {
      std::fprintf(stderr, "crawler: cannot write %s: %s\n", s.output.c_str(), std::strerror(errno));
      return 1;
    }
  }
  static char outbuf[1 << 16];
  std::setvbuf(out, outbuf, _IOFBF, sizeof outbuf);
  int status = 0;
  ringlet::run([&] {
    auto signals = std::make_unique<ringlet::SignalSet>(std::initializer_list<int>{SIGINT, SIGTERM});
    Crawler c{s, out};
    if (!c.seed()) {
      std::fprintf(stderr, "crawler: no valid URL to start from\n");
      status = 2;
      return;
    }
    auto watcher = ringlet::spawn([&] {
      if (signals->wait()) {
        signals.reset();  // a second Ctrl-C takes the default action: the process ends
        std::fprintf(stderr, "\rcrawler: interrupted: stopping (Ctrl-C again to quit at once)\n");
        c.interrupt();
      }
    });
    c.run();
    watcher.kill();
    c.summary();
    if (c.interrupted()) status = 130;
  }, ringlet::RunOptions{.threads = s.threads});
  if (std::fflush(out) != 0 || (out != stdout && std::fclose(out) != 0)) {
    std::fprintf(stderr, "crawler: writing %s failed: %s\n", s.output.c_str(), std::strerror(errno));
    return 1;
  }
  return status;
}
