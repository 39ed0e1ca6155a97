// Producer/consumer hand-offs between threads, 10^6 in all, through each kind of wait:
//   condvar   a pthread mutex + condition variable, a one-value mailbox     (250 000)
//   semaphore two sem_t (free slots, full slots) around a ring of 16          (250 000)
//   barrier   a pthread_barrier of 2: the producer writes, both wait, the consumer reads,
//             both wait again                                                 (100 000)
//   atomic    std::atomic<int>::wait/notify_one (C++20), a one-value mailbox (300 000)
//   plain     a thread made by a constructor before main (under ringlet-run: a plain OS
//             thread, not a fiber, the patch's objects all the same) consumes from a
//             thread made in main, through the mutex + condvar, then the semaphores,
//             then std::atomic wait                                           (3 x 33 334)
// Every value is 1, 2, 3... in order: the consumer checks the sequence and the sum, so a
// value lost, doubled or reordered fails. Each pair also checks that producer and consumer
// ran on different OS threads: /proc/thread-self names the kernel's task of the caller (the
// carrier of a fiber thread; gettid() is virtual for those), so under `ringlet-run --threads 2`
// the two ends must be on different carriers. alarm(100) bounds it (a deadlock is a failure).
// HANDOFF_DIVISOR=N divides every count by N (the ThreadSanitizer build: 20, 50 000 in all).
// Deterministic stdout; exit 0 only if everything held.
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// The kernel's id of the OS thread running the caller, from /proc/thread-self -> "PID/task/TID".
long os_tid() {
  char link[64] = {};
  const ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
  if (n <= 0) return -1;
  const char* slash = std::strrchr(link, '/');
  return slash ? std::atol(slash + 1) : -1;
}

struct Check {
  long count = 0, next = 1;
  unsigned long long sum = 0;
  bool in_order = true;
  void take(long v) {
    if (v != next) in_order = false;
    next = v + 1;
    sum += static_cast<unsigned long long>(v);
    ++count;
  }
  bool ok(long n) const {
    return in_order && count == n && sum == static_cast<unsigned long long>(n) * static_cast<unsigned long long>(n + 1) / 2;
  }
};

// --- the kinds of hand-off -----------------------------------------------------------------

struct Mailbox {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
  long value = 0;  // 0: empty
  void put(long v) {
    pthread_mutex_lock(&mu);
    while (value != 0) pthread_cond_wait(&changed, &mu);
    value = v;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
  }
  long take() {
    pthread_mutex_lock(&mu);
    while (value == 0) pthread_cond_wait(&changed, &mu);
    const long v = value;
    value = 0;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
    return v;
  }
};

struct SemRing {
  sem_t free_slots, full_slots;
  long ring[16] = {};
  unsigned head = 0, tail = 0;  // head: the producer's, tail: the consumer's
  SemRing() {
    sem_init(&free_slots, 0, 16);
    sem_init(&full_slots, 0, 0);
  }
  ~SemRing() {
    sem_destroy(&free_slots);
    sem_destroy(&full_slots);
  }
  static void wait(sem_t* s) {
    while (sem_wait(s) != 0) {
    }
  }
  void put(long v) {
    wait(&free_slots);
    ring[head++ % 16] = v;
    sem_post(&full_slots);
  }
  long take() {
    wait(&full_slots);
    const long v = ring[tail++ % 16];
    sem_post(&free_slots);
    return v;
  }
};

struct BarrierSlot {
  pthread_barrier_t b;
  long value = 0;
  BarrierSlot() { pthread_barrier_init(&b, nullptr, 2); }
  ~BarrierSlot() { pthread_barrier_destroy(&b); }
  void put(long v) {
    value = v;
    pthread_barrier_wait(&b);  // the consumer may read
    pthread_barrier_wait(&b);  // it has read
  }
  long take() {
    pthread_barrier_wait(&b);
    const long v = value;
    pthread_barrier_wait(&b);
    return v;
  }
};

struct AtomicSlot {
  std::atomic<int> value{0};  // 0: empty
  void put(long v) {
    for (int cur; (cur = value.load(std::memory_order_acquire)) != 0;) value.wait(cur, std::memory_order_acquire);
    value.store(static_cast<int>(v), std::memory_order_release);
    value.notify_one();
  }
  long take() {
    int cur;
    while ((cur = value.load(std::memory_order_acquire)) == 0) value.wait(0, std::memory_order_acquire);
    value.store(0, std::memory_order_release);
    value.notify_one();
    return cur;
  }
};

// --- one producer and one consumer ---------------------------------------------------------

template <class Channel>
struct Pair {
  Channel ch;
  long n = 0;
  long producer_tid = -1, consumer_tid = -1;
  Check check;
};

template <class Channel>
void* produce(void* p) {
  auto* pair = static_cast<Pair<Channel>*>(p);
  pair->producer_tid = os_tid();
  for (long v = 1; v <= pair->n; ++v) pair->ch.put(v);
  return nullptr;
}

template <class Channel>
void* consume(void* p) {
  auto* pair = static_cast<Pair<Channel>*>(p);
  pair->consumer_tid = os_tid();
  for (long k = 0; k < pair->n; ++k) pair->check.take(pair->ch.take());
  return nullptr;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The verdict on stdout; the time taken on stderr (not compared).
template <class Channel>
bool report(const char* what, Pair<Channel>& pair, double secs) {
  std::fprintf(stderr, "handoff: %s: %.2f s, %.1f us a hand-off\n", what, secs, secs * 1e6 / static_cast<double>(pair.n));
  const bool values = pair.check.ok(pair.n);
  const bool apart = pair.producer_tid > 0 && pair.consumer_tid > 0 && pair.producer_tid != pair.consumer_tid;
  std::printf("%-10s %7ld hand-offs: %s; producer and consumer on different OS threads: %s\n", what, pair.n,
              values ? "every value, in order" : "VALUES LOST OR OUT OF ORDER", apart ? "yes" : "NO");
  if (!values)
    std::fprintf(stderr, "handoff: %s: %ld taken, next %ld, sum %llu\n", what, pair.check.count, pair.check.next,
                 pair.check.sum);
  if (!apart) std::fprintf(stderr, "handoff: %s: OS threads %ld and %ld\n", what, pair.producer_tid, pair.consumer_tid);
  return values && apart;
}

// Both ends threads made by main.
template <class Channel>
bool between_threads(const char* what, long n) {
  auto* pair = new Pair<Channel>;
  pair->n = n;
  const auto t0 = std::chrono::steady_clock::now();
  pthread_t p, c;
  if (pthread_create(&p, nullptr, produce<Channel>, pair) != 0 || pthread_create(&c, nullptr, consume<Channel>, pair) != 0) {
    std::printf("%s: pthread_create failed\n", what);
    return false;
  }
  pthread_join(p, nullptr);
  pthread_join(c, nullptr);
  const bool ok = report(what, *pair, seconds_since(t0));
  delete pair;
  return ok;
}

// --- the thread made before main -----------------------------------------------------------

// Work for the plain thread: a function to run and its argument; it runs them one at a time
// and says when each is done. (A mutex + condvar of their own: these are the patch's too.)
struct Job {
  void* (*fn)(void*) = nullptr;
  void* arg = nullptr;
  bool done = false, quit = false;
};
Job g_job;
pthread_mutex_t g_job_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_job_cv = PTHREAD_COND_INITIALIZER;
pthread_t g_plain;
bool g_plain_made = false;

void* plain_thread(void*) {
  pthread_mutex_lock(&g_job_mu);
  for (;;) {
    while (!g_job.quit && (g_job.fn == nullptr || g_job.done)) pthread_cond_wait(&g_job_cv, &g_job_mu);
    if (g_job.quit) break;
    pthread_mutex_unlock(&g_job_mu);
    g_job.fn(g_job.arg);
    pthread_mutex_lock(&g_job_mu);
    g_job.done = true;
    pthread_cond_broadcast(&g_job_cv);
  }
  pthread_mutex_unlock(&g_job_mu);
  return nullptr;
}

__attribute__((constructor)) void make_plain_thread() {
  g_plain_made = pthread_create(&g_plain, nullptr, plain_thread, nullptr) == 0;
}

// The plain thread consumes; a thread made in main produces.
template <class Channel>
bool with_plain_thread(const char* what, long n) {
  auto* pair = new Pair<Channel>;
  pair->n = n;
  const auto t0 = std::chrono::steady_clock::now();
  pthread_mutex_lock(&g_job_mu);
  g_job.fn = consume<Channel>;
  g_job.arg = pair;
  g_job.done = false;
  pthread_cond_broadcast(&g_job_cv);
  pthread_mutex_unlock(&g_job_mu);
  pthread_t p;
  if (pthread_create(&p, nullptr, produce<Channel>, pair) != 0) {
    std::printf("%s: pthread_create failed\n", what);
    return false;
  }
  pthread_join(p, nullptr);
  pthread_mutex_lock(&g_job_mu);
  while (!g_job.done) pthread_cond_wait(&g_job_cv, &g_job_mu);
  g_job.fn = nullptr;
  pthread_mutex_unlock(&g_job_mu);
  const bool ok = report(what, *pair, seconds_since(t0));
  delete pair;
  return ok;
}

}  // namespace

int main() {
  alarm(100);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  long divisor = 1;
  if (const char* d = std::getenv("HANDOFF_DIVISOR"); d && std::atol(d) > 0) divisor = std::atol(d);
  long total = 0;
  auto count = [&](long n) {
    n /= divisor;
    total += n;
    return n;
  };
  bool ok = true;
  ok &= between_threads<Mailbox>("condvar", count(250'000));
  ok &= between_threads<SemRing>("semaphore", count(250'000));
  ok &= between_threads<BarrierSlot>("barrier", count(100'000));
  ok &= between_threads<AtomicSlot>("atomic", count(300'000));
  if (!g_plain_made) {
    std::printf("no thread could be made before main\n");
    return 1;
  }
  ok &= with_plain_thread<Mailbox>("plain/cv", count(33'334));
  ok &= with_plain_thread<SemRing>("plain/sem", count(33'333));
  ok &= with_plain_thread<AtomicSlot>("plain/atom", count(33'333));
  pthread_mutex_lock(&g_job_mu);
  g_job.quit = true;
  pthread_cond_broadcast(&g_job_cv);
  pthread_mutex_unlock(&g_job_mu);
  pthread_join(g_plain, nullptr);
  if (ok) std::printf("all %ld hand-offs made\n", total);
  else std::printf("FAILED\n");
  return ok ? 0 : 1;
}
