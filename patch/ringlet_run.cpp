// ringlet-run: start an unmodified program with libringlet_patch.so preloaded, so that its
// main runs on a ringlet fiber and its blocking calls go through io_uring (as torsocks does
// for its library, or `python -m gevent.monkey script.py` for gevent).
//
//   ringlet-run [options] [--] program [args...]
//
// It checks first that the patch can apply: a statically linked program, one that is not
// built against glibc, a Go program (it makes its system calls itself) or a set-user-ID one
// (the loader ignores LD_PRELOAD for it) would run unpatched, so it says so and stops.
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ringlet/patch.hpp"

namespace {

constexpr const char* kUsage =
    "usage: ringlet-run [options] [--] program [args...]\n"
    "\n"
    "Runs program with libringlet_patch.so preloaded: its main runs on a ringlet fiber and\n"
    "its blocking libc calls (sleep, sockets, poll/select/epoll, DNS) park the fiber on\n"
    "io_uring instead of blocking the thread. Its output and exit status are its own.\n"
    "\n"
    "options:\n"
    "  --patch GROUPS   which calls to patch (RINGLET_PATCH): all (default), none, or a\n"
    "                   list of time, socket, select, dns, thread, process; '-name' leaves one out\n"
    "                   (e.g. --patch=-dns)\n"
    "  --stats          print at exit how many calls of each kind went through the\n"
    "                   reactor and how many passed through, and the runtime's counters\n"
    "                   for every core: fibers, switches, parks, I/O, timers, stacks\n"
    "                   (RINGLET_PATCH_STATS=1)\n"
    "  --dump-signal SIG  on signal SIG (a name such as QUIT, SIGQUIT, USR2, or a number)\n"
    "                   write every fiber thread's state and stack to stderr (or to\n"
    "                   RINGLET_DUMP_FILE) and keep running (RINGLET_DUMP_SIGNAL); off by\n"
    "                   default, as the program may use SIGQUIT itself\n"
    "  --backend B      auto, io_uring or epoll (RINGLET_BACKEND)\n"
    "  --threads N      OS threads carrying the program's threads, a scheduler each\n"
    "                   (RINGLET_THREADS): 0 or unset is one per CPU of the affinity\n"
    "                   mask, as the program gets natively; 1 runs it on one OS thread;\n"
    "                   at most 1024\n"
    "  --check          only say whether the patch can apply to program; exit 0 if so\n"
    "  --force          run even if the check says the patch cannot apply\n"
    "  --lib PATH       the libringlet_patch.so to preload (default: the one installed\n"
    "                   with this launcher; or RINGLET_PATCH_LIB)\n"
    "  -v, --verbose    say which library and settings are used\n"
    "  -h, --help       this text\n"
    "  --version        the version\n"
    "\n"
    "exit status: the program's; 2 for bad options, 126 if the patch cannot apply,\n"
    "127 if the program is not found.\n";

[[noreturn]] void die(int code, const std::string& msg) {
  std::fprintf(stderr, "ringlet-run: %s\n", msg.c_str());
  std::exit(code);
}

std::string dirname_of(const std::string& p) {
  auto k = p.rfind('/');
  return k == std::string::npos ? "." : (k == 0 ? "/" : p.substr(0, k));
}

bool is_file(const std::string& p) {
  struct stat sb;
  return ::stat(p.c_str(), &sb) == 0 && S_ISREG(sb.st_mode);
}

// The preload library: next to this executable (build tree), or in ../lib[/triplet].
std::optional<std::string> find_library() {
  if (const char* v = std::getenv("RINGLET_PATCH_LIB"); v && *v) return std::string(v);
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return std::nullopt;
  self[n] = '\0';
  const std::string dir = dirname_of(self);
  for (const char* rel : {"/libringlet_patch.so", "/../lib/x86_64-linux-gnu/libringlet_patch.so",
                          "/../lib/aarch64-linux-gnu/libringlet_patch.so", "/../lib64/libringlet_patch.so",
                          "/../lib/libringlet_patch.so"}) {
    std::string p = dir + rel;
    if (is_file(p)) {
      char real[PATH_MAX];
      return std::string(::realpath(p.c_str(), real) ? real : p.c_str());
    }
  }
  return std::nullopt;
}

// execvp's search, to examine the file that will run.
std::optional<std::string> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), F_OK) == 0 ? std::optional(name) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string d;
  while (std::getline(ss, d, ':')) {
    std::string p = (d.empty() ? "." : d) + "/" + name;
    if (is_file(p) && ::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

// Why the patch cannot apply to the program at `path`, or "" if it can.
std::string why_not(const std::string& path, int depth = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + path + ": " + std::strerror(errno);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0 && (sb.st_mode & (S_ISUID | S_ISGID)))
    return path + " is set-user-ID or set-group-ID: the loader ignores LD_PRELOAD for it";
  if (data.size() >= 2 && data[0] == '#' && data[1] == '!') {
    if (depth > 2) return "";
    std::string line(data.begin() + 2, std::find(data.begin(), data.end(), '\n'));
    std::stringstream ss(line);
    std::string interp, arg;
    ss >> interp >> arg;
    if (interp.empty()) return path + ": empty #! line";
    if (dirname_of(interp) != "." && interp.substr(interp.rfind('/') + 1) == "env" && !arg.empty()) {
      auto p = find_program(arg);
      if (!p) return path + ": its interpreter '" + arg + "' is not on PATH";
      return why_not(*p, depth + 1);
    }
    return why_not(interp, depth + 1);
  }
  if (data.size() < sizeof(Elf64_Ehdr) || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0)
    return path + " is neither an ELF program nor a #! script";
  if (data[EI_CLASS] != ELFCLASS64) return path + " is a 32-bit program; the patch library is 64-bit";
  Elf64_Ehdr eh;
  std::memcpy(&eh, data.data(), sizeof eh);
  bool interp = false;
  std::string interp_name;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    const std::size_t off = eh.e_phoff + std::size_t(i) * eh.e_phentsize;
    if (off + sizeof(Elf64_Phdr) > data.size()) break;
    Elf64_Phdr ph;
    std::memcpy(&ph, data.data() + off, sizeof ph);
    if (ph.p_type == PT_INTERP && ph.p_offset + ph.p_filesz <= data.size()) {
      interp = true;
      interp_name.assign(data.data() + ph.p_offset, strnlen(data.data() + ph.p_offset, ph.p_filesz));
    }
  }
  if (!interp)
    return path + " is statically linked: there is no dynamic loader to preload the patch into it";
  if (interp_name.find("ld-linux") == std::string::npos)
    return path + " is not built against glibc (its loader is " + interp_name + ")";
  // Section names: a Go program makes its own system calls, past any libc symbol.
  if (eh.e_shoff && eh.e_shstrndx < eh.e_shnum) {
    const std::size_t stroff = eh.e_shoff + std::size_t(eh.e_shstrndx) * eh.e_shentsize;
    if (stroff + sizeof(Elf64_Shdr) <= data.size()) {
      Elf64_Shdr strh;
      std::memcpy(&strh, data.data() + stroff, sizeof strh);
      for (unsigned i = 0; i < eh.e_shnum; ++i) {
        const std::size_t off = eh.e_shoff + std::size_t(i) * eh.e_shentsize;
        if (off + sizeof(Elf64_Shdr) > data.size()) break;
        Elf64_Shdr sh;
        std::memcpy(&sh, data.data() + off, sizeof sh);
        if (strh.sh_offset + sh.sh_name >= data.size()) continue;
        const char* name = data.data() + strh.sh_offset + sh.sh_name;
        if (std::strcmp(name, ".go.buildinfo") == 0 || std::strcmp(name, ".note.go.buildid") == 0)
          return path + " is a Go program: it makes its system calls itself, which no libc patch sees";
      }
    }
  }
  return "";
}

// A signal a dump may be asked with: a name (QUIT, SIGQUIT, usr2) or a number, one that a
// handler can catch. Its number, or 0 with the reason in `why`.
int parse_signal(const std::string& s, std::string& why) {
  int sig = 0;
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
    sig = s.size() <= 3 ? std::atoi(s.c_str()) : -1;
    if (sig < 1 || sig > SIGRTMAX) {
      why = "no signal has the number " + s;
      return 0;
    }
  } else {
    std::string name = s;
    if (name.size() > 3 && strncasecmp(name.c_str(), "SIG", 3) == 0) name = name.substr(3);
    for (int i = 1; i < SIGRTMIN && !sig; ++i)
      if (const char* abbrev = sigabbrev_np(i); abbrev && strcasecmp(abbrev, name.c_str()) == 0) sig = i;
    if (!sig) {
      why = "'" + s + "' is not a signal name (QUIT, SIGQUIT, USR2, ...) or number";
      return 0;
    }
  }
  if (sig == SIGKILL || sig == SIGSTOP) {
    why = std::string("SIG") + sigabbrev_np(sig) + " cannot be caught";
    return 0;
  }
  return sig;
}

}  // namespace

int main(int argc, char** argv) {
  std::string patch, backend, lib, dump_signal, threads;
  bool threads_given = false;
  bool stats = false, check = false, force = false, verbose = false, dump_given = false;
  int i = 1;
  auto value = [&](const std::string& opt, std::string& out) {
    const std::string a = argv[i];
    if (a.size() > opt.size() && a.compare(0, opt.size() + 1, opt + "=") == 0) {
      out = a.substr(opt.size() + 1);
      return;
    }
    if (i + 1 >= argc) die(2, opt + " needs a value (see --help)");
    out = argv[++i];
  };
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::puts("ringlet-run " RINGLET_VERSION);
      return 0;
    }
    if (a == "--stats") stats = true;
    else if (a == "--check") check = true;
    else if (a == "--force") force = true;
    else if (a == "-v" || a == "--verbose") verbose = true;
    else if (a.rfind("--patch", 0) == 0) value("--patch", patch);
    else if (a.rfind("--backend", 0) == 0) value("--backend", backend);
    else if (a.rfind("--lib", 0) == 0) value("--lib", lib);
    else if (a.rfind("--threads", 0) == 0) {
      value("--threads", threads);
      threads_given = true;
    }
    else if (a.rfind("--dump-signal", 0) == 0) {
      value("--dump-signal", dump_signal);
      dump_given = true;
    }
    else die(2, "unknown option '" + a + "' (see --help)");
  }
  if (i >= argc) die(2, "no program to run (usage: ringlet-run [options] [--] program [args...])");
  if (!patch.empty()) {
    unsigned groups;
    std::string error;
    if (!ringlet::patch::parse_groups(patch, groups, error)) die(2, "--patch " + patch + ": " + error);
  }
  if (!backend.empty() && backend != "auto" && backend != "io_uring" && backend != "epoll")
    die(2, "--backend must be auto, io_uring or epoll, not '" + backend + "'");
  // --threads, or a RINGLET_THREADS inherited: a whole number 0..1024, checked before the
  // program starts (the library refuses a bad one too, for LD_PRELOAD without this launcher).
  if (!threads_given)
    if (const char* v = std::getenv("RINGLET_THREADS"); v && *v) threads = v;
  if (!threads.empty()) {
    const bool digits = threads.size() <= 5 && threads.find_first_not_of("0123456789") == std::string::npos;
    const std::string what = threads_given ? "--threads " + threads : "RINGLET_THREADS=" + threads;
    if (!digits || std::stoul(threads) > ringlet::patch::kMaxCarriers)
      die(2, what + ": not a number of OS threads from 0 (one per CPU) to " +
                 std::to_string(ringlet::patch::kMaxCarriers));
  } else if (threads_given) {
    die(2, "--threads needs a number (0: one per CPU)");
  }
  int dump_sig = 0;
  if (dump_given) {
    std::string why;
    dump_sig = parse_signal(dump_signal, why);
    if (!dump_sig) die(2, "--dump-signal: " + why);
  }

  const std::string prog = argv[i];
  auto path = find_program(prog);
  if (!path) die(127, prog + ": not found");
  if (std::string why = why_not(*path); !why.empty()) {
    if (check || !force) die(126, "the patch cannot apply: " + why + (check ? "" : " (--force runs it anyway, unpatched)"));
    std::fprintf(stderr, "ringlet-run: warning: %s; running it anyway\n", why.c_str());
  } else if (check) {
    std::printf("ringlet-run: the patch can apply to %s\n", path->c_str());
    return 0;
  }

  if (lib.empty()) {
    auto found = find_library();
    if (!found) die(126, "cannot find libringlet_patch.so next to this launcher or in ../lib (set --lib or RINGLET_PATCH_LIB)");
    lib = *found;
  }
  if (!is_file(lib)) die(126, "no patch library at " + lib);
  std::string preload = lib;
  if (const char* old = std::getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  if (!patch.empty()) ::setenv("RINGLET_PATCH", patch.c_str(), 1);
  if (stats) ::setenv("RINGLET_PATCH_STATS", "1", 1);
  if (!backend.empty()) ::setenv("RINGLET_BACKEND", backend.c_str(), 1);
  if (threads_given) ::setenv("RINGLET_THREADS", threads.c_str(), 1);
  // The number: the runtime reads a name or a number; a number needs no spelling agreed.
  const std::string dump_env = dump_sig ? std::to_string(dump_sig) : "";
  if (dump_sig) ::setenv("RINGLET_DUMP_SIGNAL", dump_env.c_str(), 1);
  if (verbose)
    std::fprintf(stderr, "ringlet-run: LD_PRELOAD=%s RINGLET_PATCH=%s RINGLET_THREADS=%s%s%s%s exec %s\n",
                 preload.c_str(), patch.empty() ? "all" : patch.c_str(),
                 threads.empty() ? "0 (one per CPU)" : threads.c_str(), stats ? " RINGLET_PATCH_STATS=1" : "",
                 dump_sig ? " RINGLET_DUMP_SIGNAL=" : "", dump_env.c_str(), path->c_str());
  ::execvp(prog.c_str(), argv + i);
  const int e = errno;
  die(e == ENOENT ? 127 : 126, prog + ": " + std::strerror(e));
}
