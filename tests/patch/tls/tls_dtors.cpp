// C++ thread_local destructors at thread exit.
//
// 15 threads: std::thread joined, std::thread detached, pthread_create joined, pthread_create
// detached, and pthread_create joined that ends by pthread_exit from a nested function (3 of
// each). Each constructs two thread_local objects, a then b (function-local statics, so the
// order is the order of first use), parks with both alive and checks it still reaches its own
// objects, and sets a pthread_key whose destructor records the end. Every constructor and
// destructor appends to the thread's event list, marked '!' if it ran on another thread than
// the one it belongs to (pthread_self() at the event against the thread's own, or against the
// one captured at construction), and '~' if the thread-locals in force when it ran were not
// the thread's own (a plain `thread_local int` tag the thread set at its start, read again in
// the destructor, against the value captured at construction). glibc's order at a thread's end is:
// the stack unwound (for pthread_exit), the thread_local destructors in reverse order of
// construction, then the key destructors; each exactly once, on the thread itself, and all of it
// before a join returns. So the expected list is "a+ b+ b- a- key", with "unwind" after "b+" for
// pthread_exit and "joined" (appended by main after pthread_join) at the end for joined threads.
//
// Detached threads are waited for with a counter and a condition variable that their key
// destructor (the last of their destructors) signals, for at most 10 s. The lists are printed
// in thread order, so the output is deterministic. Finally main has a thread_local of its own
// whose destructor prints a line at exit (glibc runs it in exit(), after main's output).
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace {

enum Kind { StdJoined, StdDetached, PthreadJoined, PthreadDetached, PthreadExit, NKinds };
const char* const kind_name[NKinds] = {"std::thread, joined", "std::thread, detached",
                                       "pthread_create, joined", "pthread_create, detached",
                                       "pthread_create, joined, pthread_exit from a nested call"};
constexpr int kPerKind = 3;
constexpr int kThreads = NKinds * kPerKind;

struct Rec {
  int tag = 0;
  Kind kind = StdJoined;
  pthread_t self{};
  bool self_set = false;
  bool done = false;  // its key destructor ran
  std::string events;
};
Rec recs[kThreads];

pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  // events, done, n_done
pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
int n_done = 0;
pthread_key_t key;
thread_local int tl_tag = 0;  // constant-initialised: no constructor, no destructor

void add_event(Rec* r, const char* ev, bool own, bool own_tls = true) {
  pthread_mutex_lock(&mu);
  if (!r->events.empty()) r->events += ' ';
  r->events += ev;
  if (!own) r->events += '!';
  if (!own_tls) r->events += '~';
  pthread_mutex_unlock(&mu);
}
bool is_owner(const Rec* r) { return r->self_set && pthread_equal(pthread_self(), r->self); }

// The record a constructor belongs to: set by the constructing thread around the first use.
pthread_mutex_t ctor_mu = PTHREAD_MUTEX_INITIALIZER;
Rec* constructing = nullptr;
int ctors_without_record = 0;

struct Tracker {
  char slot;
  Rec* rec;
  pthread_t self_at_ctor;
  int tag_at_ctor;
  explicit Tracker(char s)
      : slot(s), rec(constructing), self_at_ctor(pthread_self()), tag_at_ctor(tl_tag) {
    if (rec)
      add_event(rec, slot == 'a' ? "a+" : "b+", is_owner(rec), tl_tag == rec->tag);
    else
      ++ctors_without_record;
  }
  ~Tracker() {
    if (rec)
      add_event(rec, slot == 'a' ? "a-" : "b-",
                is_owner(rec) && pthread_equal(pthread_self(), self_at_ctor),
                tl_tag == tag_at_ctor);
  }
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;
};
Tracker& tl_a() {
  thread_local Tracker t('a');
  return t;
}
Tracker& tl_b() {
  thread_local Tracker t('b');
  return t;
}

void key_dtor(void* p) {
  Rec* r = static_cast<Rec*>(p);
  add_event(r, "key", is_owner(r), tl_tag == r->tag);
  pthread_mutex_lock(&mu);
  r->done = true;
  ++n_done;
  pthread_cond_broadcast(&done_cv);
  pthread_mutex_unlock(&mu);
}

struct Unwound {  // a local of the frame pthread_exit leaves
  Rec* r;
  ~Unwound() { add_event(r, "unwind", is_owner(r), tl_tag == r->tag); }
};
__attribute__((noinline)) void exit_inner(Rec* r) {
  Unwound u{r};
  pthread_exit(nullptr);
}
__attribute__((noinline)) void exit_middle(Rec* r) {
  exit_inner(r);
  asm volatile("" ::: "memory");  // not a tail call
}
__attribute__((noinline)) void exit_outer(Rec* r) {
  exit_middle(r);
  asm volatile("" ::: "memory");
}

void body(Rec* r) {
  r->self = pthread_self();
  r->self_set = true;
  tl_tag = r->tag;
  pthread_setspecific(key, r);
  pthread_mutex_lock(&ctor_mu);
  constructing = r;
  tl_a();
  tl_b();
  constructing = nullptr;
  pthread_mutex_unlock(&ctor_mu);
  usleep(1000 + 300 * (r->tag % 5));  // a park with both alive
  if (tl_a().rec != r || tl_b().rec != r) add_event(r, "foreign-objects-after-usleep", true);
  if (r->kind == PthreadExit) exit_outer(r);
}

void* pthread_body(void* p) {
  body(static_cast<Rec*>(p));
  return nullptr;
}

}  // namespace

struct MainTracker {
  pthread_t self_at_ctor = pthread_self();
  ~MainTracker() {
    printf(
        "tls_dtors: main's thread_local destroyed at exit%s\n",
        pthread_equal(pthread_self(), self_at_ctor) ? ", on main's thread" : " by ANOTHER thread");
    fflush(stdout);
  }
};
thread_local MainTracker main_tracker;

int main() {
  alarm(60);
  (void)&main_tracker;  // constructed (and its destructor registered) here, in main's thread
  if (pthread_key_create(&key, key_dtor) != 0) {
    printf("tls_dtors: pthread_key_create failed\n");
    return 1;
  }
  pthread_t joinable[kThreads];
  std::thread std_joinable[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    Rec* r = &recs[i];
    r->tag = i + 1;
    r->kind = static_cast<Kind>(i % NKinds);
    switch (r->kind) {
      case StdJoined: std_joinable[i] = std::thread(body, r); break;
      case StdDetached: std::thread(body, r).detach(); break;
      case PthreadJoined:
      case PthreadExit:
        if (pthread_create(&joinable[i], nullptr, pthread_body, r) != 0) return 1;
        break;
      case PthreadDetached: {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        if (pthread_create(&t, &a, pthread_body, r) != 0) return 1;
        pthread_attr_destroy(&a);
        break;
      }
      case NKinds: break;
    }
  }
  for (int i = 0; i < kThreads; ++i) {
    Rec* r = &recs[i];
    if (r->kind == StdJoined)
      std_joinable[i].join();
    else if (r->kind == PthreadJoined || r->kind == PthreadExit)
      pthread_join(joinable[i], nullptr);
    else
      continue;
    add_event(r, "joined", true);
  }

  // The detached ones: at most 10 s.
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&mu);
  while (n_done < kThreads)
    if (pthread_cond_timedwait(&done_cv, &mu, &deadline) != 0) break;
  int done = n_done;
  std::string lines;
  int bad = 0;
  for (const Rec& r : recs) {
    std::string want = r.kind == PthreadExit ? "a+ b+ unwind b- a- key" : "a+ b+ b- a- key";
    if (r.kind == StdJoined || r.kind == PthreadJoined || r.kind == PthreadExit) want += " joined";
    char head[128];
    snprintf(head, sizeof head, "tls_dtors: thread %2d (%s): ", r.tag, kind_name[r.kind]);
    lines += head;
    lines += r.events.empty() ? "(nothing)" : r.events;
    if (r.events != want) {
      ++bad;
      lines += "   <- FAILED, expected: " + want;
    }
    lines += '\n';
  }
  pthread_mutex_unlock(&mu);

  fputs(lines.c_str(), stdout);
  if (done < kThreads)
    printf("tls_dtors: FAILED: %d of %d threads ran their key destructor within 10 s\n", done,
           kThreads);
  if (ctors_without_record)
    printf("tls_dtors: FAILED: %d thread_local constructors ran outside a thread's first use\n",
           ctors_without_record);
  if (bad == 0 && done == kThreads && ctors_without_record == 0)
    printf(
        "tls_dtors: %d threads: thread_local destructors ran once each, in reverse order, on "
        "their own thread, before the key destructors and before join returned\n",
        kThreads);
  else
    printf(
        "tls_dtors: FAILED: %d of %d threads differ (!: ran on another thread, ~: with other "
        "thread-locals than its own)\n",
        bad, kThreads);
  fflush(stdout);
  return bad == 0 && done == kThreads && ctors_without_record == 0 ? 0 : 1;
}
