// Each call of the exec family (patch/exec.cpp hooks them all) from a forked child, and each
// failing as natively: the child prints what the exec'd shell was given, or the errno its
// failed exec left; the parent prints the child's status. Run natively and under ringlet-run
// (tests/patch/compare.sh), the output must be the same.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static const char kScript[] = "echo \"$0 [$1] [$2] X=${X-unset}\"";

static void run(const char* name, int which) {
  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  if (pid == 0) {
    char* argv[] = {(char*)name, (char*)"-c", (char*)kScript, (char*)name, (char*)"two words", NULL};
    char* envp[] = {(char*)"X=from-envp", (char*)"PATH=/usr/bin:/bin", NULL};
    int r = 0;
    switch (which) {
      case 0: r = execl("/bin/sh", name, "-c", kScript, name, "two words", (char*)NULL); break;
      case 1: r = execlp("sh", name, "-c", kScript, name, "two words", (char*)NULL); break;
      case 2: r = execle("/bin/sh", name, "-c", kScript, name, "two words", (char*)NULL, envp); break;
      case 3: r = execv("/bin/sh", argv); break;
      case 4: r = execvp("sh", argv); break;
      case 5: r = execvpe("sh", argv, envp); break;
      case 6: r = execve("/bin/sh", argv, envp); break;
      case 7: {
        const int fd = open("/bin/sh", O_RDONLY | O_CLOEXEC);
        r = fexecve(fd, argv, envp);
        break;
      }
      case 8: r = execveat(AT_FDCWD, "/bin/sh", argv, envp, 0); break;
      case 9: r = (int)syscall(SYS_execve, "/bin/sh", argv, envp); break;
      // Failures: what errno says, and that the caller goes on.
      case 10: r = execl("/nonexistent/prog", name, (char*)NULL); break;
      case 11: r = execlp("no-such-command-ringlet", name, (char*)NULL); break;
      case 12: r = execv("/tmp", argv); break;
      case 13: r = execle("/nonexistent/prog", name, (char*)NULL, envp); break;
      case 14: r = execveat(-1, "relative", argv, envp, 0); break;
      case 15: r = (int)syscall(SYS_execve, "/nonexistent/prog", argv, envp); break;
    }
    const int e = errno;
    printf("%s: returned %d, errno %s\n", name, r, strerrorname_np(e));
    fflush(stdout);
    _exit(3);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    perror("waitpid");
    exit(1);
  }
  printf("%s: child %s %d\n", name, WIFEXITED(status) ? "exited" : "signalled",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int main(void) {
  setenv("X", "from-environ", 1);
  const char* names[] = {"execl",  "execlp",  "execle",    "execv",     "execvp",  "execvpe",
                         "execve", "fexecve", "execveat",  "syscall",   "execl-missing",
                         "execlp-missing", "execv-directory", "execle-missing", "execveat-bad-fd",
                         "syscall-missing"};
  for (int i = 0; i < 16; ++i) run(names[i], i);
  return 0;
}
