/* A thread-per-connection echo server with plain blocking accept/read/write, answering N
 * connections of a checking client (tests/patch/echo_client.c, an epoll program started
 * with posix_spawn: one process cannot hold both ends of 10 000 connections within this
 * machine's RLIMIT_NOFILE of 20 000). The client is started without LD_PRELOAD: under
 * ringlet-run it is a plain program, so only the server is the patched one (and the blocking
 * monitor's reports, if any, are the server's).
 *
 *   conn_threads ECHO_CLIENT N
 *
 * An acceptor thread accepts N connections on 127.0.0.1 and starts a thread for each (the
 * default attributes: an 8 MiB stack), which echoes until the client closes. The client opens
 * all N, checks one echo on each and says "open N"; then, with every connection open, the
 * server reads its own "Threads:" line of /proc/self/status (io_uring's kernel workers are
 * counted there too). If the environment has CONN_THREADS_MAX_OS=K (compare.sh gives it to
 * the patched runs only: natively a thread per connection is N + 2 OS threads), more than K
 * OS threads then is a failure, said on stdout. The client then checks a second echo on
 * every connection, says "verified N" and exits (closing all); every connection thread must
 * see the end and finish. Deterministic stdout; exit 0 only if all of that held. alarm(100).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static int n_conns;
static int listener;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int started, finished, failed_threads, accept_failed;

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char buf[256];
  ssize_t n;
  int bad = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, (size_t)(n - off));
      if (w <= 0) {
        bad = 1;
        goto done;
      }
      off += w;
    }
  }
  if (n < 0) bad = 1;
done:
  close(fd);
  pthread_mutex_lock(&mu);
  finished++;
  failed_threads += bad;
  if (finished == n_conns) pthread_cond_signal(&all_done);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void* acceptor(void* arg) {
  (void)arg;
  for (int i = 0; i < n_conns; i++) {
    int c = accept(listener, NULL, NULL);
    pthread_t t;
    if (c < 0 || pthread_create(&t, NULL, serve, (void*)(long)c) != 0) {
      fprintf(stderr, "conn_threads: connection %d: %s\n", i, c < 0 ? strerror(errno) : "pthread_create failed");
      pthread_mutex_lock(&mu);
      accept_failed = 1;
      pthread_mutex_unlock(&mu);
      return NULL;
    }
    pthread_detach(t);
    pthread_mutex_lock(&mu);
    started++;
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static long os_threads(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long n = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "Threads:", 8) == 0) n = atol(line + 8);
  fclose(f);
  return n;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: conn_threads ECHO_CLIENT N\n");
    return 2;
  }
  alarm(100);
  n_conns = atoi(argv[2]);
  const char* max_env = getenv("CONN_THREADS_MAX_OS");
  const long max_os = max_env ? atol(max_env) : 0;
  /* Both ends of every connection are this process's and the client's: raise the soft limit. */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)n_conns + 64) {
    fprintf(stderr, "conn_threads: RLIMIT_NOFILE's hard limit %lu is below %d\n", (unsigned long)rl.rlim_max,
            n_conns + 64);
    return 1;
  }
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(listener, (struct sockaddr*)&a, sizeof a) != 0 || listen(listener, 4096) != 0 ||
      getsockname(listener, (struct sockaddr*)&a, &len) != 0) {
    perror("conn_threads: listen");
    return 1;
  }
  pthread_t acc;
  if (pthread_create(&acc, NULL, acceptor, NULL) != 0) return 1;

  int out[2];
  if (pipe(out) != 0) return 1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  posix_spawn_file_actions_addclose(&fa, listener);
  char port[16], count[16];
  snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
  snprintf(count, sizeof count, "%d", n_conns);
  char* cargv[] = {argv[1], port, count, "0.2", NULL};
  size_t n_env = 0;
  while (environ[n_env]) n_env++;
  char** cenv = calloc(n_env + 1, sizeof *cenv);
  for (size_t i = 0, j = 0; i < n_env; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) cenv[j++] = environ[i];
  pid_t client;
  if (posix_spawn(&client, argv[1], &fa, NULL, cargv, cenv) != 0) {
    perror("conn_threads: posix_spawn of the client");
    return 1;
  }
  close(out[1]);

  int ok = 1;
  long peak = -1;
  FILE* from_client = fdopen(out[0], "r");
  char line[128];
  int opened = 0, verified = 0;
  while (fgets(line, sizeof line, from_client)) {
    int k;
    if (sscanf(line, "open %d", &k) == 1) {
      opened = k;
      peak = os_threads(); /* every connection open and answered once */
    } else if (sscanf(line, "verified %d", &k) == 1) {
      verified = k;
    }
  }
  fclose(from_client);
  int status = 0;
  waitpid(client, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    printf("the client failed (status %d)\n", status);
    ok = 0;
  }
  if (opened != n_conns || verified != n_conns) {
    printf("the client opened %d and verified %d of %d connections\n", opened, verified, n_conns);
    ok = 0;
  }
  if (max_os > 0 && (peak < 1 || peak > max_os)) {
    printf("OS threads with %d connections open: %ld, more than %ld\n", n_conns, peak, max_os);
    ok = 0;
  }
  pthread_join(acc, NULL);
  pthread_mutex_lock(&mu);
  while (!accept_failed && finished < started) pthread_cond_wait(&all_done, &mu);
  if (accept_failed || started != n_conns || finished != n_conns || failed_threads != 0) {
    printf("threads: %d started, %d finished, %d failed (accept failed: %d)\n", started, finished, failed_threads,
           accept_failed);
    ok = 0;
  }
  pthread_mutex_unlock(&mu);
  fprintf(stderr, "conn_threads: %d connections; OS threads with all open: %ld\n", n_conns, peak);
  if (ok) printf("%d connections, a thread each: every echo right, twice; every thread ended\n", n_conns);
  return ok ? 0 : 1;
}
