/* Thread-locals of libraries dlopened while threads run.
 *
 *   tls_dlopen [LIBTLS_GD.so LIBTLS_IE.so]   (default: libtls_gd.so, libtls_ie.so next to the
 *                                             executable)
 *
 * libtls_gd.so has `__thread int tls_gd_var = 4242` (default model, reached through
 * __tls_get_addr), libtls_ie.so `__thread int tls_ie_var = 1717` (initial-exec, so glibc puts
 * it in every thread's static TLS at dlopen). Both export get/set/addr.
 *
 *  1. Two threads start, and only then main dlopens both libraries. Each thread reads the
 *     initial values, checks that dlsym() of the variable gives its own address (glibc answers
 *     the calling thread's), then writes values of its own and reads back only its own writes
 *     across parks (usleep), at a stable address.
 *  2. main has made a second copy of each file (a new module, with a TLS block of its own);
 *     thread 1 dlopens both copies, and reopens the originals (the same handles), while
 *     thread 0 is parked in sem_wait. Then both run the checks of 1 on the
 *     copies, and still see their own last writes in the originals.
 *  3. A thread started after the dlopens sees the initial values in all four (not the others'
 *     writes), and runs the same checks.
 *  The addresses of each variable are distinct between the three threads and main (all
 *  alive), main still sees the initial values, then everything is dlclosed and joined.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lib {
  const char* what; /* "gd", "ie", "gd copy", "ie copy" */
  const char* var;  /* the variable's symbol */
  int image;        /* its initial value */
  void* h;
  int (*get)(void);
  void (*set)(int);
  int* (*addr)(void);
};
enum { GD, IE, GD_COPY, IE_COPY, NLIBS };
static struct lib libs[NLIBS] = {
    {"gd", "tls_gd_var", 4242, 0, 0, 0, 0},
    {"ie", "tls_ie_var", 1717, 0, 0, 0, 0},
    {"gd copy", "tls_gd_var", 4242, 0, 0, 0, 0},
    {"ie copy", "tls_ie_var", 1717, 0, 0, 0, 0},
};
static const char* prefix[NLIBS] = {"tls_gd", "tls_ie", "tls_gd", "tls_ie"};

#define NT 3    /* threads 0 and 1 start before the dlopens, 2 after */
#define MAIN NT /* main's slot in addrs */
static int* addrs[NT + 1][NLIBS];
static int last_written[NT][NLIBS];

/* ---- failures: counted per category, the first 3 of each printed ---- */
enum { F_INITIAL, F_OWN, F_DLSYM, F_COPIES, F_LATE, F_MAIN, F_OPS, NCAT };
static atomic_int fails[NCAT];
static atomic_int printed[NCAT];
static void report(int cat, const char* fmt, ...) {
  atomic_fetch_add(&fails[cat], 1);
  if (atomic_fetch_add(&printed[cat], 1) >= 3) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  printf("tls_dlopen: %s\n", line);
  fflush(stdout);
}

static int load(int which, const char* path) {
  struct lib* L = &libs[which];
  L->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!L->h) {
    report(F_OPS, "dlopen %s: %s", path, dlerror());
    return -1;
  }
  char name[64];
  snprintf(name, sizeof name, "%s_get", prefix[which]);
  *(void**)&L->get = dlsym(L->h, name);
  snprintf(name, sizeof name, "%s_set", prefix[which]);
  *(void**)&L->set = dlsym(L->h, name);
  snprintf(name, sizeof name, "%s_addr", prefix[which]);
  *(void**)&L->addr = dlsym(L->h, name);
  if (!L->get || !L->set || !L->addr) {
    report(F_OPS, "dlsym in %s: %s", path, dlerror());
    return -1;
  }
  return 0;
}

/* Thread k on library `which`: the initial value, dlsym, then its own writes across parks.
 * `cat` is the category a wrong initial value counts in. */
static void exercise(int k, int which, int cat) {
  struct lib* L = &libs[which];
  int v = L->get();
  if (v != L->image)
    report(cat, "thread %d saw %s %d in the %s library before writing to it (initial value %d)", k,
           L->var, v, L->what, L->image);
  int* a = L->addr();
  addrs[k][which] = a;
  void* s = dlsym(L->h, L->var);
  if (s != (void*)a)
    report(F_DLSYM, "thread %d: dlsym(%s) in the %s library gave %s address than its own", k,
           L->var, L->what, s ? "another" : "no");
}
static void own_writes(int k, const int* which, int nwhich) {
  for (int round = 0; round < 10; ++round) {
    for (int j = 0; j < nwhich; ++j) {
      int w = which[j];
      last_written[k][w] = (k + 1) * 100000 + w * 1000 + round;
      libs[w].set(last_written[k][w]);
    }
    usleep(300 + (unsigned)k * 400 + (unsigned)round * 50);
    for (int j = 0; j < nwhich; ++j) {
      int w = which[j];
      struct lib* L = &libs[w];
      int v = L->get(), *a = L->addr();
      if (v != last_written[k][w] || *a != v)
        report(F_OWN, "thread %d saw %s %d in the %s library after usleep (it wrote %d)", k, L->var,
               v, L->what, last_written[k][w]);
      else if (a != addrs[k][w])
        report(F_OWN, "thread %d: the address of %s in the %s library moved across usleep", k,
               L->var, L->what);
    }
  }
}
static void still_own(int k, int which, const char* after) {
  struct lib* L = &libs[which];
  int v = L->get();
  if (v != last_written[k][which])
    report(F_OWN, "thread %d saw %s %d in the %s library after %s (it wrote %d)", k, L->var, v,
           L->what, after, last_written[k][which]);
}

static sem_t go[NT], copies_loaded, finish[NT], early_done, late_done;
static pthread_barrier_t both; /* threads 0 and 1 */
static const char* copy_path[2];
static const char* orig_path[2];

static void* early_thread(void* arg) {
  int k = (int)(long)arg;
  sem_wait(&go[k]); /* main dlopens the libraries meanwhile */
  exercise(k, GD, F_INITIAL);
  exercise(k, IE, F_INITIAL);
  const int orig[2] = {GD, IE}, copies[2] = {GD_COPY, IE_COPY};
  own_writes(k, orig, 2);
  pthread_barrier_wait(&both);

  if (k == 0) {
    sem_wait(&copies_loaded); /* parked while thread 1 dlopens */
    still_own(k, GD, "sem_wait");
    still_own(k, IE, "sem_wait");
  } else {
    usleep(2000);
    if (load(GD_COPY, copy_path[0]) == 0 && load(IE_COPY, copy_path[1]) == 0) {
      for (int j = 0; j < 2; ++j) {
        void* again = dlopen(orig_path[j], RTLD_NOW | RTLD_LOCAL);
        if (again != libs[j].h)
          report(F_COPIES, "thread 1: dlopen of %s again gave another handle", orig_path[j]);
      }
    }
    sem_post(&copies_loaded);
  }
  if (libs[GD_COPY].h && libs[IE_COPY].h) {
    exercise(k, GD_COPY, F_COPIES);
    exercise(k, IE_COPY, F_COPIES);
    own_writes(k, copies, 2);
  }
  still_own(k, GD, "working on the copies");
  still_own(k, IE, "working on the copies");
  pthread_barrier_wait(&both);
  sem_post(&early_done);
  sem_wait(&finish[k]);
  return NULL;
}

static void* late_thread(void* arg) {
  int k = (int)(long)arg;
  sem_wait(&go[k]);
  const int all[NLIBS] = {GD, IE, GD_COPY, IE_COPY};
  for (int w = 0; w < NLIBS; ++w)
    if (libs[w].h) exercise(k, w, F_LATE);
  own_writes(k, all, libs[GD_COPY].h && libs[IE_COPY].h ? NLIBS : 2);
  sem_post(&late_done);
  sem_wait(&finish[k]);
  return NULL;
}

static int copy_file(const char* from, const char* to) {
  int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, ok = 0;
  if (in >= 0) out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (in >= 0 && out >= 0) {
    char buf[65536];
    ssize_t n;
    ok = 1;
    while ((n = read(in, buf, sizeof buf)) > 0)
      if (write(out, buf, (size_t)n) != n) ok = 0;
    if (n < 0) ok = 0;
  }
  if (in >= 0) close(in);
  if (out >= 0 && close(out) != 0) ok = 0;
  return ok ? 0 : -1;
}

static int distinct(int which, int count) {
  for (int x = 0; x < count; ++x)
    for (int y = x + 1; y < count; ++y)
      if (addrs[x][which] == addrs[y][which]) return 0;
  return 1;
}

int main(int argc, char** argv) {
  alarm(60);
  static char exe_dir[PATH_MAX], def_gd[PATH_MAX + 32], def_ie[PATH_MAX + 32];
  if (argc >= 3) {
    orig_path[0] = argv[1];
    orig_path[1] = argv[2];
  } else {
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (n <= 0) return 1;
    exe_dir[n] = 0;
    char* dir = dirname(exe_dir);
    snprintf(def_gd, sizeof def_gd, "%s/libtls_gd.so", dir);
    snprintf(def_ie, sizeof def_ie, "%s/libtls_ie.so", dir);
    orig_path[0] = def_gd;
    orig_path[1] = def_ie;
  }
  char tmpl[] = "/tmp/tls_dlopen-XXXXXX";
  if (!mkdtemp(tmpl)) {
    perror("mkdtemp");
    return 1;
  }
  static char cgd[64], cie[64];
  snprintf(cgd, sizeof cgd, "%s/libtls_gd_copy.so", tmpl);
  snprintf(cie, sizeof cie, "%s/libtls_ie_copy.so", tmpl);
  copy_path[0] = cgd;
  copy_path[1] = cie;
  if (copy_file(orig_path[0], cgd) != 0 || copy_file(orig_path[1], cie) != 0) {
    printf("tls_dlopen: cannot copy %s and %s into %s\n", orig_path[0], orig_path[1], tmpl);
    return 1;
  }

  pthread_barrier_init(&both, NULL, 2);
  sem_init(&copies_loaded, 0, 0);
  sem_init(&early_done, 0, 0);
  sem_init(&late_done, 0, 0);
  for (int k = 0; k < NT; ++k) sem_init(&go[k], 0, 0), sem_init(&finish[k], 0, 0);
  pthread_t t[NT];
  for (int k = 0; k < 2; ++k)
    if (pthread_create(&t[k], NULL, early_thread, (void*)(long)k) != 0) return 1;
  usleep(5000); /* the threads exist (and are parked) before the libraries */
  if (load(GD, orig_path[0]) != 0 || load(IE, orig_path[1]) != 0) {
    printf("tls_dlopen: FAILED: cannot load the libraries\n");
    return 1;
  }
  sem_post(&go[0]);
  sem_post(&go[1]);
  sem_wait(&early_done); /* both early threads are done with the copies */
  sem_wait(&early_done);
  if (pthread_create(&t[2], NULL, late_thread, (void*)2L) != 0) return 1;
  sem_post(&go[2]);
  sem_wait(&late_done); /* its checks are done */

  /* main: never wrote, so it sees the initial values */
  for (int w = 0; w < NLIBS; ++w) {
    if (!libs[w].h) continue;
    int v = libs[w].get();
    addrs[MAIN][w] = libs[w].addr();
    if (v != libs[w].image)
      report(F_MAIN, "main saw %s %d in the %s library (initial value %d, main never wrote)",
             libs[w].var, v, libs[w].what, libs[w].image);
  }
  int addr_ok = 1;
  for (int w = 0; w < NLIBS; ++w)
    if (libs[w].h && !distinct(w, NT + 1)) {
      addr_ok = 0;
      printf("tls_dlopen: two threads share the address of %s in the %s library\n", libs[w].var,
             libs[w].what);
    }

  /* dlclose everything (the originals were opened twice), then let the threads end */
  int closed = 1;
  for (int w = 0; w < NLIBS; ++w)
    if (libs[w].h && dlclose(libs[w].h) != 0) closed = 0;
  for (int j = 0; j < 2; ++j)
    if (libs[GD_COPY].h && dlclose(libs[j].h) != 0) closed = 0;
  for (int k = 0; k < NT; ++k) sem_post(&finish[k]);
  for (int k = 0; k < NT; ++k) pthread_join(t[k], NULL);
  unlink(cgd);
  unlink(cie);
  rmdir(tmpl);

  int ok = 1;
#define VERDICT(cond, text)                                       \
  do {                                                            \
    if (cond)                                                     \
      printf("tls_dlopen: %s\n", text);                           \
    else                                                          \
      printf("tls_dlopen: FAILED: not true: %s\n", text), ok = 0; \
  } while (0)
  VERDICT(fails[F_OPS] == 0, "libraries loaded");
  VERDICT(fails[F_INITIAL] == 0, "threads started before dlopen see the initial values");
  VERDICT(fails[F_OWN] == 0, "each thread reads back only its own writes across parks");
  VERDICT(fails[F_DLSYM] == 0, "dlsym of the __thread variable gives the caller's address");
  VERDICT(fails[F_COPIES] == 0, "copies dlopened while a thread was parked: initial values seen");
  VERDICT(fails[F_LATE] == 0, "a thread started after dlopen sees the initial values");
  VERDICT(fails[F_MAIN] == 0, "main still sees the initial values");
  VERDICT(addr_ok, "addresses distinct per thread");
  VERDICT(closed, "dlclose and join done");
  return ok ? 0 : 1;
}
