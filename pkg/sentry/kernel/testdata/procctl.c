// Job control, CPU-time accounting, POSIX timers and shared futexes, as a
// real program sees them under the Sentry. Prints one line per check.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t vtalrm;
static void on_vtalrm(int sig) { (void)sig; vtalrm = 1; }

int main(void) {
  // Stop and continue a child.
  pid_t pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  int st;
  kill(pid, SIGSTOP);
  int stopped = waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP;
  kill(pid, SIGCONT);
  int continued = waitpid(pid, &st, WCONTINUED) == pid && WIFCONTINUED(st);
  kill(pid, SIGKILL);
  int killed = waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
  printf("jobctl stopped=%d continued=%d killed=%d\n", stopped, continued, killed);

  // ITIMER_VIRTUAL fires on CPU time spent spinning in user code.
  signal(SIGVTALRM, on_vtalrm);
  struct itimerval it = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_VIRTUAL, &it, NULL);
  volatile unsigned long x = 0;
  for (unsigned long i = 0; !vtalrm && i < 4000000000UL; i++) x += i;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("cpu vtalrm=%d utime_ok=%d\n", (int)vtalrm, ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec >= 10000);

  // A POSIX timer's signal, taken with sigtimedwait.
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &m, NULL);
  struct sigevent sev = {0};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN;
  sev.sigev_value.sival_int = 5;
  timer_t t;
  timer_create(CLOCK_MONOTONIC, &sev, &t);
  struct itimerspec its = {{0, 0}, {0, 5000000}};
  timer_settime(t, 0, &its, NULL);
  siginfo_t si;
  struct timespec to = {5, 0};
  int got = sigtimedwait(&m, &si, &to);
  printf("timer sig_ok=%d code_ok=%d value=%d\n", got == SIGRTMIN, si.si_code == SI_TIMER, si.si_value.sival_int);

  // A futex in MAP_SHARED memory wakes a waiter in a forked child.
  int *word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pid = fork();
  if (pid == 0) {
    while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == 0) syscall(SYS_futex, word, FUTEX_WAIT, 0, NULL, NULL, 0);
    _exit(__atomic_load_n(word, __ATOMIC_SEQ_CST) == 42 ? 0 : 1);
  }
  usleep(20000);
  __atomic_store_n(word, 42, __ATOMIC_SEQ_CST);
  for (;;) {
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    usleep(1000);
  }
  printf("futex child_ok=%d\n", WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return 0;
}
