// Unmodified programs under ringlet-run (LD_PRELOAD=libringlet_patch.so): curl, python3
// scripts, a C program using poll. Each runs natively and patched in the same test; the
// output and exit status must be the same, and the patch's own counters (--stats) must show
// that the calls really went through the reactor.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "process_helpers.hpp"
#include "http_test_server.hpp"

using namespace std::chrono_literals;
using ringlet::test::env_or_skip;
using ringlet::test::patched;
using ringlet::test::python;
using ringlet::test::Run;
using ringlet::test::run;
using ringlet::test::stat_of;

TEST_CASE("ringlet-run: curl fetches a page exactly as it does unpatched", "[patch][process]") {
  REQUIRE_TOOL(env_or_skip("RINGLET_RUN"), "RINGLET_RUN");
  if (run({"curl", "--version"}).code() != 0) RINGLET_SKIP("curl is not installed");
  std::string page;
  for (int i = 0; i < 300'000; ++i) page += static_cast<char>('a' + i % 26);
  ringlet::test::HttpTestServer server{page, 100ms};  // late enough that curl has to wait
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/page";
  Run plain = run({"curl", "-sS", url});
  Run with = run(patched({"curl", "-sS", url}));
  CHECK(plain.code() == 0);
  CHECK(with.code() == plain.code());
  CHECK(plain.out == server.body());
  CHECK(with.out == plain.out);
  // curl waits in poll and reads with recv: on the main fiber, through the reactor.
  INFO(with.err);
  // (curl makes its sockets non-blocking itself, so its recv calls pass straight through.)
  CHECK(stat_of(with.err, "poll").second + stat_of(with.err, "ppoll").second > 0);
  // A refused connection: the same error and exit status.
  Run refused_plain = run({"curl", "-sS", "http://127.0.0.1:1/"});
  Run refused_with = run(patched({"curl", "-sS", "http://127.0.0.1:1/"}, false));
  CHECK(refused_plain.code() == 7);
  CHECK(refused_with.code() == refused_plain.code());
  // The same words; curl's "after N ms" is a timing, which a loaded machine moves by a
  // millisecond either way, so it is compared as a number within 50 ms.
  const std::regex after(R"(after (\d+) ms)");
  std::smatch mp, mw;
  const bool timed_plain = std::regex_search(refused_plain.err, mp, after);
  const bool timed_with = std::regex_search(refused_with.err, mw, after);
  CHECK(timed_plain == timed_with);
  if (timed_plain && timed_with) CHECK(std::abs(std::stol(mp[1]) - std::stol(mw[1])) <= 50);
  CHECK(std::regex_replace(refused_with.err, after, "after N ms") ==
        std::regex_replace(refused_plain.err, after, "after N ms"));
}

TEST_CASE("ringlet-run: a python3 script using sleep, socket, select and urllib", "[patch][process]") {
  REQUIRE_TOOL(env_or_skip("RINGLET_RUN"), "RINGLET_RUN");
  const std::string script = env_or_skip("RINGLET_PATCH_TESTS") + "/basic.py";
  const std::string py = python();
  if (py.empty()) RINGLET_SKIP("python3 is not installed");
  Run plain = run({py, script});
  Run with = run(patched({py, script}));
  INFO(plain.err);
  INFO(with.err);
  CHECK(plain.code() == 4);
  CHECK(with.code() == plain.code());
  CHECK(plain.out.find("OFF") == std::string::npos);
  CHECK(plain.out.find("urllib b 200") != std::string::npos);
  CHECK(with.out == plain.out);
  CHECK(stat_of(with.err, "clock_nanosleep").second >= 1);
  CHECK(stat_of(with.err, "select").second >= 1);
  CHECK(stat_of(with.err, "poll").second >= 1);
  CHECK(stat_of(with.err, "getaddrinfo").first >= 1);
  CHECK(stat_of(with.err, "connect").first >= 1);
  // RINGLET_PATCH=none: everything passes through, and the output is still the same.
  Run none = run(patched({py, script}), {"RINGLET_PATCH=none"});
  CHECK(none.out == plain.out);
  CHECK(stat_of(none.err, "select").first == 0);
}

TEST_CASE("ringlet-run: Ctrl-C interrupts a patched sleep, recv and select in python3", "[patch][process]") {
  REQUIRE_TOOL(env_or_skip("RINGLET_RUN"), "RINGLET_RUN");
  const std::string script = env_or_skip("RINGLET_PATCH_TESTS") + "/sigint.py";
  const std::string py = python();
  if (py.empty()) RINGLET_SKIP("python3 is not installed");
  auto interrupt_on_ready = [](const std::string& line, pid_t pid) {
    if (line.rfind("ready", 0) == 0) {
      std::this_thread::sleep_for(200ms);  // let it block
      kill(pid, SIGINT);
    }
  };
  Run plain = run({py, "-u", script}, {}, interrupt_on_ready);
  Run with = run(patched({py, "-u", script}), {}, interrupt_on_ready);
  INFO(with.err);
  CHECK(plain.code() == 3);
  CHECK(with.code() == plain.code());
  CHECK(with.out == plain.out);
  CHECK(with.out.find("interrupted recv ok") != std::string::npos);
  CHECK(stat_of(with.err, "recv").second >= 1);
}

TEST_CASE("ringlet-run: a C program waiting in poll, select and nanosleep", "[patch][process]") {
  const std::string prog = env_or_skip("RINGLET_POLL_PROG");
  REQUIRE_TOOL(prog, "RINGLET_POLL_PROG");
  Run plain = run({prog});
  Run with = run(patched({prog}));
  INFO(plain.out);
  INFO(with.err);
  CHECK(plain.code() == 5);
  CHECK(with.code() == plain.code());
  CHECK(plain.out.find("OFF") == std::string::npos);
  CHECK(with.out == plain.out);
  CHECK(stat_of(with.err, "poll").second >= 2);
  CHECK(stat_of(with.err, "select").second >= 1);
  CHECK(stat_of(with.err, "nanosleep").second >= 1);
}

TEST_CASE("ringlet-run: --stats adds the runtime's counters; --dump-signal is checked first", "[patch][process]") {
  const std::string rr = env_or_skip("RINGLET_RUN");
  const std::string prog = env_or_skip("RINGLET_POLL_PROG");
  REQUIRE_TOOL(prog, "RINGLET_POLL_PROG");
  Run with = run(patched({prog}));
  INFO(with.err);
  CHECK(with.code() == 5);
  // One report per process (the program forks a child that exits through exit()): each has
  // the runtime's line for its one scheduler, whose thread is that process's.
  const std::regex core_line(
      R"(ringlet patch:   core 0 \(tid (\d+)\): fibers (\d+) alive \(peak (\d+)\), (\d+) spawned, (\d+) switches; )"
      R"(parks (\d+) \(io (\d+), sleep (\d+), primitive \d+, join \d+, other \d+\); io (\d+) submitted, (\d+) completed; )"
      R"(timers (\d+) armed, (\d+) fired; remote wakes \d+ sent, \d+ received; )"
      R"(sleeps \d+, idle spins \d+ \(\d+ found a post, \d+ us\); stacks \d+ [KM]iB in use, \d+ [KM]iB cached; fair yields \d+)");
  std::vector<std::smatch> lines;
  for (auto it = std::sregex_iterator(with.err.begin(), with.err.end(), core_line); it != std::sregex_iterator(); ++it)
    lines.push_back(*it);
  REQUIRE(lines.size() == 2);
  CHECK(with.err.find("ringlet patch: runtime: 1 scheduler\n") != std::string::npos);
  CHECK(lines[0][1] != lines[1][1]);  // the parent's and the child's threads
  unsigned long io_parks = 0, sleep_parks = 0, submitted = 0, armed = 0, fired = 0;
  for (const auto& m : lines) {
    CHECK(std::stoul(m[2]) >= 1);   // main's fiber, alive at exit
    CHECK(std::stoul(m[4]) >= 1);   // spawned
    CHECK(std::stoul(m[5]) >= 2);   // switches
    io_parks += std::stoul(m[7]);
    sleep_parks += std::stoul(m[8]);
    submitted += std::stoul(m[9]);
    armed += std::stoul(m[11]);
    fired += std::stoul(m[12]);
  }
  CHECK(io_parks >= 3);     // poll for the child's write, poll and select timing out
  CHECK(sleep_parks >= 1);  // nanosleep
  CHECK(submitted >= io_parks);
  CHECK(armed >= 3);
  CHECK(fired >= 3);

  // A signal that cannot be one is refused before anything runs (the program would print).
  for (const char* bad : {"NOPE", "SIGNOPE", "0", "99", "KILL", "SIGSTOP", ""}) {
    Run r = run({rr, "--dump-signal", bad, "--", "echo", "ran"});
    INFO(bad);
    CHECK(r.code() == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("ringlet-run: --dump-signal: ", 0) == 0);
  }
  CHECK(run({rr, "--dump-signal"}).code() == 2);
  // A good one reaches the program's environment, as a number.
  for (const auto& [arg, num] : std::vector<std::pair<std::string, std::string>>{
           {"QUIT", "3"}, {"SIGQUIT", "3"}, {"usr2", "12"}, {"10", "10"}}) {
    Run r = run({rr, "--dump-signal=" + arg, "--", "sh", "-c", "echo $RINGLET_DUMP_SIGNAL"});
    INFO(arg);
    CHECK(r.code() == 0);
    CHECK(r.out == num + "\n");
  }
  Run help = run({rr, "--help"});
  CHECK(help.out.find("--dump-signal SIG") != std::string::npos);
}

TEST_CASE("ringlet-run: options, exit codes and programs it cannot patch", "[patch][process]") {
  const std::string rr = env_or_skip("RINGLET_RUN");
  REQUIRE_TOOL(rr, "RINGLET_RUN");
  Run help = run({rr, "--help"});
  CHECK(help.code() == 0);
  CHECK(help.out.find("usage: ringlet-run") != std::string::npos);
  CHECK(run({rr, "--bogus", "true"}).code() == 2);
  Run bad_groups = run({rr, "--patch", "all,-sockets", "--", "true"});
  CHECK(bad_groups.code() == 2);
  CHECK(bad_groups.err.find("unknown group 'sockets'") != std::string::npos);
  CHECK(run({rr}).code() == 2);
  Run missing = run({rr, "--", "no-such-program-ringlet"});
  CHECK(missing.code() == 127);
  CHECK(missing.err.find("not found") != std::string::npos);
  CHECK(run({rr, "--", "sh", "-c", "exit 3"}).code() == 3);
  Run check = run({rr, "--check", "--", "sh"});
  CHECK(check.code() == 0);
  // A statically linked program: said, and refused.
  const std::string stat_prog = env_or_skip("RINGLET_STATIC_PROG");
  if (!stat_prog.empty()) {
    Run st = run({rr, "--", stat_prog});
    CHECK(st.code() == 126);
    CHECK(st.err.find("statically linked") != std::string::npos);
    Run forced = run({rr, "--force", "--", stat_prog});
    CHECK(forced.code() == 0);
    CHECK(forced.out == "hello\n");
  }
  // Plain LD_PRELOAD works on its own, without the launcher.
  const std::string lib = env_or_skip("RINGLET_PATCH_LIB_PATH");
  if (!lib.empty()) {
    Run pre = run({"sh", "-c", "sleep 0.1; echo done"}, {"LD_PRELOAD=" + lib, "RINGLET_PATCH_STATS=1"});
    CHECK(pre.out == "done\n");
    CHECK(stat_of(pre.err, "clock_nanosleep").second + stat_of(pre.err, "nanosleep").second >= 1);
  }
}
