// printf and std::cout (and std::cerr, fprintf(stderr)) mixed on a stdout and stderr that are
// pipes, in a program whose library made C++'s standard streams before the patch's
// constructor ran: the lines come out in the order they were written, as natively (one FILE
// under both). The program runs itself with its stdout and stderr on a pipe and prints what
// came through it.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

void iostream_lib_hello();

int main(int argc, char** argv) {
  alarm(60);
  if (argc > 1 && std::strcmp(argv[1], "child") == 0) {
    for (int i = 0; i < 3; ++i) {
      std::printf("printf %d\n", i);
      std::cout << "cout " << i << "\n";
      iostream_lib_hello();
    }
    std::cerr << "cerr line\n";
    std::fprintf(stderr, "fprintf(stderr) line\n");
    return 0;
  }
  int p[2];
  if (pipe(p)) return 2;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    close(p[0]);
    close(p[1]);
    execl("/proc/self/exe", argv[0], "child", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(p[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  int st = 0;
  waitpid(pid, &st, 0);
  std::printf("the child's pipe got, in order:\n%s", got.c_str());
  std::printf("the child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return 0;
}
