// Blocking syscalls and spurious interruptions.
//
// Linux ends a blocking wait early only when the sleeping thread has a
// signal it will take (signal_pending: queued, not blocked by it, not
// ignored), or a group stop or exit. Signals that are ignored (SIGCHLD,
// SIGWINCH, SIGURG, SIGCONT at SIG_DFL, or SIG_IGN) are discarded when
// sent; a signal blocked by the waiting thread goes to another thread of
// the process or stays pending. None of these may wake a sleeper.
//
// An interrupted restartable call is restarted transparently when no
// handler runs, so the tests watch calls whose interruption shows:
//   - nanosleep writes the time left to *rem when interrupted (even when
//     it is then restarted), so a sentinel in rem must survive;
//   - epoll_wait fails with EINTR when interrupted;
//   - timed poll and futex wait must last their whole timeout;
// and check that read, accept and connect complete only with their
// event (data, a connection, an accepted handshake), with their result.

#include <netinet/in.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <thread>

namespace {

std::atomic<int> g_failures{0};
std::atomic<bool> g_storm_done{false};

// WCHECK records a failure seen in a waiter thread (inside RunInChild,
// where gtest assertions are lost) and lets the child report it.
#define WCHECK(cond)                                                          \
  do {                                                                        \
    if (!(cond)) {                                                            \
      int e_ = errno;                                                         \
      fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n", __FILE__,   \
              __LINE__, #cond, e_, strerror(e_));                             \
      g_failures.fetch_add(1);                                                \
    }                                                                         \
  } while (0)

int64_t NowNS() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr int kTimedRounds = 6;
constexpr int64_t kTimedMS = 150;

// Timed waiters: each round must last its whole timeout and report no
// interruption.
void NanosleepWaiter() {
  for (int i = 0; i < kTimedRounds; i++) {
    struct timespec req = {0, kTimedMS * 1000000};
    struct timespec rem = {12345, 678};
    int64_t start = NowNS();
    WCHECK(nanosleep(&req, &rem) == 0);
    WCHECK(NowNS() - start >= kTimedMS * 1000000);
    WCHECK(rem.tv_sec == 12345 && rem.tv_nsec == 678);
  }
}

void EpollWaiter(bool eintr_allowed) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  WCHECK(ep >= 0);
  for (int i = 0; i < kTimedRounds; i++) {
    struct epoll_event ev;
    int64_t start = NowNS();
    int n = epoll_wait(ep, &ev, 1, kTimedMS);
    if (n == -1 && errno == EINTR && eintr_allowed) continue;
    WCHECK(n == 0);
    WCHECK(NowNS() - start >= (kTimedMS - 1) * 1000000);
  }
  close(ep);
}

void PollWaiter() {
  int p[2];
  WCHECK(pipe2(p, O_CLOEXEC) == 0);
  for (int i = 0; i < kTimedRounds; i++) {
    struct pollfd pfd = {p[0], POLLIN, 0};
    int64_t start = NowNS();
    WCHECK(poll(&pfd, 1, kTimedMS) == 0);
    WCHECK(NowNS() - start >= (kTimedMS - 1) * 1000000);
  }
  close(p[0]);
  close(p[1]);
}

void FutexWaiter() {
  uint32_t word = 0;
  for (int i = 0; i < kTimedRounds; i++) {
    struct timespec ts = {0, kTimedMS * 1000000};
    int64_t start = NowNS();
    long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0);
    WCHECK(r == -1 && errno == ETIMEDOUT);
    WCHECK(NowNS() - start >= kTimedMS * 1000000);
  }
}

// Event waiters: the call must complete with its event, which the test
// produces only once the storm is over.
void ReadWaiter(int fd) {
  char c = 0;
  WCHECK(read(fd, &c, 1) == 1);
  WCHECK(c == 'x');
  WCHECK(g_storm_done.load());
}

void AcceptWaiter(int listener) {
  int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  WCHECK(fd >= 0);
  WCHECK(g_storm_done.load());
  if (fd >= 0) close(fd);
}

void ConnectWaiter(int fd, const struct sockaddr_in* addr) {
  int r = connect(fd, reinterpret_cast<const struct sockaddr*>(addr), sizeof(*addr));
  WCHECK(r == 0);
  struct sockaddr_in peer = {};
  socklen_t len = sizeof(peer);
  WCHECK(getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &len) == 0);
  WCHECK(peer.sin_port == addr->sin_port);
}

int LoopbackListener(int backlog, struct sockaddr_in* addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  *addr = {};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(*addr);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(addr), len) != 0 ||
      listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<struct sockaddr*>(addr), &len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int ConnectTo(const struct sockaddr_in* addr, int flags) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) return -1;
  connect(fd, reinterpret_cast<const struct sockaddr*>(addr), sizeof(*addr));
  return fd;
}

enum class Storm { kIgnored, kBlockedHere, kStopContinue };

void CountSignal(int) {}

// RunWaitersUnder starts every waiter in its own thread (with mask
// blocked), runs storm for about a second from this thread, then
// produces the events the event waiters wait for and joins them all.
// It returns the number of failures (to be called in a child).
int RunWaitersUnder(Storm storm) {
  g_failures = 0;
  g_storm_done = false;
  sigset_t waiter_mask;
  sigemptyset(&waiter_mask);
  if (storm == Storm::kBlockedHere) {
    // Handled by this (storm) thread, blocked in every waiter.
    struct sigaction sa = {};
    sa.sa_handler = CountSignal;
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &sa, nullptr) != 0 || sigaction(SIGPROF, &sa, nullptr) != 0) return 1;
    sigaddset(&waiter_mask, SIGUSR1);
    sigaddset(&waiter_mask, SIGPROF);
  }

  int data[2];
  if (pipe2(data, O_CLOEXEC) != 0) return 1;
  struct sockaddr_in accept_addr, full_addr;
  int accept_listener = LoopbackListener(1, &accept_addr);
  // A listener whose accept queue is full: further SYNs are dropped, so
  // a connect to it blocks until the queue is drained.
  int full_listener = LoopbackListener(0, &full_addr);
  if (accept_listener < 0 || full_listener < 0) return 1;
  std::vector<int> fillers;
  for (int i = 0; i < 2; i++) fillers.push_back(ConnectTo(&full_addr, SOCK_NONBLOCK));
  usleep(100 * 1000);
  int connecting = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connecting < 0) return 1;

  std::vector<std::thread> threads;
  std::vector<pid_t> tids(8);
  std::atomic<int> started{0};
  auto spawn = [&](std::function<void()> fn) {
    size_t slot = threads.size();
    threads.emplace_back([&, fn, slot] {
      pthread_sigmask(SIG_BLOCK, &waiter_mask, nullptr);
      tids[slot] = gettid();
      started.fetch_add(1);
      fn();
    });
  };
  bool stops = storm == Storm::kStopContinue;
  if (!stops) {
    // A stop and continue interrupts these in Linux too (nanosleep
    // writes rem, epoll_wait fails with EINTR: signal(7)).
    spawn(NanosleepWaiter);
  }
  spawn([stops] { EpollWaiter(stops); });
  spawn(PollWaiter);
  spawn(FutexWaiter);
  spawn([&] { ReadWaiter(data[0]); });
  spawn([&] { AcceptWaiter(accept_listener); });
  spawn([&] { ConnectWaiter(connecting, &full_addr); });
  while (started.load() < int(threads.size())) usleep(1000);
  usleep(20 * 1000);

  pid_t self = getpid();
  pid_t stopper = -1;
  if (stops) {
    stopper = fork();
    if (stopper == 0) {
      for (int i = 0; i < 8; i++) {
        kill(self, SIGSTOP);
        usleep(30 * 1000);
        kill(self, SIGCONT);
        usleep(60 * 1000);
      }
      _exit(0);
    }
  } else if (storm == Storm::kBlockedHere) {
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_PROF, &it, nullptr);
  }

  int64_t end = NowNS() + 1000 * 1000000LL;
  while (NowNS() < end) {
    switch (storm) {
      case Storm::kIgnored: {
        for (int sig : {SIGWINCH, SIGURG, SIGCHLD, SIGCONT}) {
          kill(self, sig);
          for (size_t i = 0; i < threads.size(); i++) {
            syscall(SYS_tgkill, self, tids[i], sig);
          }
        }
        // Children exiting send SIGCHLD (ignored by default).
        pid_t c = fork();
        if (c == 0) _exit(0);
        if (c > 0) waitpid(c, nullptr, 0);
        // Threads exiting.
        std::thread([] {}).join();
        usleep(2000);
        break;
      }
      case Storm::kBlockedHere: {
        kill(self, SIGUSR1);
        for (size_t i = 0; i < threads.size(); i++) {
          syscall(SYS_tgkill, self, tids[i], SIGUSR1);
        }
        std::thread([] {}).join();
        // Burn CPU for ITIMER_PROF.
        for (volatile int i = 0; i < 100000; i++) {
        }
        break;
      }
      case Storm::kStopContinue:
        usleep(5000);
        break;
    }
  }
  if (stopper > 0) {
    int st;
    waitpid(stopper, &st, 0);
  }
  if (storm == Storm::kBlockedHere) {
    struct itimerval off = {};
    setitimer(ITIMER_PROF, &off, nullptr);
  }
  g_storm_done = true;

  // Produce the events.
  if (write(data[1], "x", 1) != 1) return 1;
  int client = ConnectTo(&accept_addr, 0);
  // Drain the full queue so that the blocked connect's next SYN gets in.
  int64_t deadline = NowNS() + 20 * 1000000000LL;
  std::vector<int> accepted;
  fcntl(full_listener, F_SETFL, O_NONBLOCK);
  // Join the waiters while accepting on the full listener.
  std::atomic<bool> joining_done{false};
  std::thread acceptor([&] {
    while (!joining_done.load() && NowNS() < deadline) {
      int fd = accept4(full_listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) accepted.push_back(fd);
      else usleep(10 * 1000);
    }
  });
  for (auto& th : threads) th.join();
  joining_done = true;
  acceptor.join();
  for (int fd : accepted) close(fd);
  for (int fd : fillers) if (fd >= 0) close(fd);
  if (client >= 0) close(client);
  close(connecting);
  close(accept_listener);
  close(full_listener);
  close(data[0]);
  close(data[1]);
  return g_failures.load() == 0 ? 0 : 2;
}

TEST(Interrupt, IgnoredSignalsDoNotInterruptBlockedCalls) {
  EXPECT_CHILD_OK([] { return RunWaitersUnder(Storm::kIgnored); });
}

TEST(Interrupt, SignalsBlockedByWaitersDoNotInterruptThem) {
  EXPECT_CHILD_OK([] { return RunWaitersUnder(Storm::kBlockedHere); });
}

TEST(Interrupt, StopAndContinueRestartBlockedCalls) {
  EXPECT_CHILD_OK([] { return RunWaitersUnder(Storm::kStopContinue); });
}

std::atomic<int> g_handled{0};
void CountHandled(int) { g_handled.fetch_add(1); }

// A signal handled while the thread runs must not leave a wake-up behind
// that cuts the thread's next sleep short.
TEST(Interrupt, HandledSignalLeavesNoWakeupBehind) {
  EXPECT_CHILD_OK([] {
    g_failures = 0;
    struct sigaction sa = {};
    sa.sa_handler = CountHandled;
    CHILD_CHECK(sigaction(SIGUSR1, &sa, nullptr) == 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHILD_CHECK(ep >= 0);
    pid_t self = getpid(), tid = gettid();
    for (int i = 0; i < 10; i++) {
      // Raised from this thread, then from another while this one spins.
      syscall(SYS_tgkill, self, tid, SIGUSR1);
      std::atomic<bool> sent{false};
      std::thread sender([&] {
        syscall(SYS_tgkill, self, tid, SIGUSR1);
        sent = true;
      });
      while (!sent.load()) {
      }
      sender.join();
      while (g_handled.load() < 2 * (i + 1)) {
      }
      struct epoll_event ev;
      errno = 0;
      int n = epoll_wait(ep, &ev, 1, 30);
      CHILD_CHECK(n == 0);
      struct timespec req = {0, 20 * 1000000};
      struct timespec rem = {777, 888};
      CHILD_CHECK(nanosleep(&req, &rem) == 0);
      CHILD_CHECK(rem.tv_sec == 777 && rem.tv_nsec == 888);
      struct pollfd pfd = {ep, POLLIN, 0};
      int64_t start = NowNS();
      CHILD_CHECK(poll(&pfd, 1, 30) == 0);
      CHILD_CHECK(NowNS() - start >= 29 * 1000000);
    }
    close(ep);
    return 0;
  });
}

std::atomic<uintptr_t> g_handler_sp{0};
void RecordStack(int) {
  int local;
  g_handler_sp = reinterpret_cast<uintptr_t>(&local);
}

// SA_ONSTACK asks for the alternate stack only when one is set up: a
// thread without one (a new thread never has one, sigaltstack(2)) takes
// the handler on its own stack.
TEST(Interrupt, OnStackHandlerWithoutAltStackUsesThreadStack) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_handler = RecordStack;
    sa.sa_flags = SA_ONSTACK;
    CHILD_CHECK(sigaction(SIGUSR1, &sa, nullptr) == 0);
    auto check_here = [] {
      stack_t ss;
      CHILD_CHECK(sigaltstack(nullptr, &ss) == 0);
      CHILD_CHECK(ss.ss_flags == SS_DISABLE);
      int local;
      uintptr_t here = reinterpret_cast<uintptr_t>(&local);
      g_handler_sp = 0;
      CHILD_CHECK(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1) == 0);
      uintptr_t sp = g_handler_sp.load();
      CHILD_CHECK(sp != 0 && sp < here && here - sp < (1 << 20));
    };
    check_here();
    std::thread(check_here).join();
    // A forked child keeps its parent's alternate stack.
    static char alt[1 << 16];
    stack_t ss = {};
    ss.ss_sp = alt;
    ss.ss_size = sizeof(alt);
    CHILD_CHECK(sigaltstack(&ss, nullptr) == 0);
    pid_t pid = fork();
    if (pid == 0) {
      stack_t cur;
      if (sigaltstack(nullptr, &cur) != 0 || cur.ss_sp != alt || cur.ss_size != sizeof(alt)) _exit(3);
      g_handler_sp = 0;
      syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
      uintptr_t sp = g_handler_sp.load();
      _exit(sp >= uintptr_t(alt) && sp < uintptr_t(alt) + sizeof(alt) ? 0 : 4);
    }
    int st;
    CHILD_CHECK(waitpid(pid, &st, 0) == pid);
    CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    // A new thread does not.
    std::thread(check_here).join();
    return 0;
  });
}

}  // namespace
