// sigaction(2), sigprocmask(2), sigaltstack(2), sigreturn(2) (via handler
// return), kill(2), tgkill(2), sigtimedwait(2), sigsuspend(2), sigpending(2),
// sigqueue(3)/rt_sigqueueinfo(2).
#include <pthread.h>
#include <ucontext.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace {

volatile sig_atomic_t g_count;
volatile sig_atomic_t g_last_sig;
volatile sig_atomic_t g_info_code;
volatile sig_atomic_t g_info_value;
volatile uintptr_t g_handler_sp;

void CountingHandler(int sig) {
  g_count = g_count + 1;
  g_last_sig = sig;
}

void InfoHandler(int sig, siginfo_t* si, void*) {
  g_last_sig = sig;
  g_info_code = si->si_code;
  g_info_value = si->si_value.sival_int;
}

TEST(Sigaction, InstallAndQueryHandler) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {}, old = {};
    sa.sa_handler = CountingHandler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHILD_CHECK(sigaction(SIGUSR1, &sa, nullptr) == 0);
    CHILD_CHECK(sigaction(SIGUSR1, nullptr, &old) == 0);
    CHILD_CHECK(old.sa_handler == CountingHandler);
    CHILD_CHECK(old.sa_flags & SA_RESTART);
    CHILD_CHECK(sigismember(&old.sa_mask, SIGUSR2));
    return 0;
  });
}

TEST(Sigaction, KillAndStopCannotBeCaught) {
  struct sigaction sa = {};
  sa.sa_handler = CountingHandler;
  EXPECT_ERRNO(EINVAL, sigaction(SIGKILL, &sa, nullptr));
  EXPECT_ERRNO(EINVAL, sigaction(SIGSTOP, &sa, nullptr));
  sa.sa_handler = SIG_IGN;
  EXPECT_ERRNO(EINVAL, sigaction(SIGKILL, &sa, nullptr));
}

TEST(Sigaction, InvalidSignalIsEINVAL) {
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  EXPECT_ERRNO(EINVAL, sigaction(0, &sa, nullptr));
  EXPECT_ERRNO(EINVAL, sigaction(65, &sa, nullptr));
}

TEST(Sigaction, BadPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, syscall(SYS_rt_sigaction, SIGUSR1, kBadPtr, nullptr, 8));
}

TEST(Sigaction, WrongSigsetSizeIsEINVAL) {
  struct sigaction sa = {};
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigaction, SIGUSR1, nullptr, &sa, 4));
}

TEST(Sigaction, HandlerRunsAndReturns) {
  EXPECT_CHILD_OK([] {
    g_count = 0;
    CHILD_CHECK(InstallHandler(SIGUSR1, CountingHandler) == 0);
    CHILD_CHECK(raise(SIGUSR1) == 0);
    CHILD_CHECK(g_count == 1 && g_last_sig == SIGUSR1);
    CHILD_CHECK(raise(SIGUSR1) == 0);
    CHILD_CHECK(g_count == 2);
    return 0;
  });
}

TEST(Sigaction, ResetHandResetsToDefault) {
  EXPECT_CHILD_OK([] {
    g_count = 0;
    CHILD_CHECK(InstallHandler(SIGUSR1, CountingHandler, SA_RESETHAND) == 0);
    raise(SIGUSR1);
    struct sigaction old;
    sigaction(SIGUSR1, nullptr, &old);
    CHILD_CHECK(old.sa_handler == SIG_DFL);
    CHILD_CHECK(g_count == 1);
    return 0;
  });
}

TEST(Sigaction, SiginfoCarriesSigqueueValue) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_sigaction = InfoHandler;
    sa.sa_flags = SA_SIGINFO;
    CHILD_CHECK(sigaction(SIGRTMIN + 1, &sa, nullptr) == 0);
    union sigval v;
    v.sival_int = 1234;
    CHILD_CHECK(sigqueue(getpid(), SIGRTMIN + 1, v) == 0);
    CHILD_CHECK(g_last_sig == SIGRTMIN + 1);
    CHILD_CHECK(g_info_code == SI_QUEUE);
    CHILD_CHECK(g_info_value == 1234);
    return 0;
  });
}

TEST(Sigaction, IgnoredSignalIsDiscarded) {
  EXPECT_CHILD_OK([] {
    signal(SIGUSR1, SIG_IGN);
    CHILD_CHECK(raise(SIGUSR1) == 0);
    sigset_t pend;
    sigpending(&pend);
    CHILD_CHECK(!sigismember(&pend, SIGUSR1));
    return 0;
  });
}

TEST(Sigaction, DefaultActionTerminates) {
  EXPECT_TRUE(KilledBy(RunInChild([] {
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
    return 0;
  }), SIGTERM));
}

TEST(Sigaction, DefaultIgnoreForSIGCHLDandSIGWINCH) {
  EXPECT_CHILD_OK([] {
    raise(SIGWINCH);
    raise(SIGCHLD);
    raise(SIGURG);
    return 0;
  });
}

TEST(Sigaction, HandlerMaskBlocksDuringHandler) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_handler = [](int) {
      sigset_t cur;
      sigprocmask(SIG_BLOCK, nullptr, &cur);
      // The delivered signal (no SA_NODEFER) and sa_mask are blocked.
      g_count = sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2);
    };
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, nullptr);
    g_count = 0;
    raise(SIGUSR1);
    CHILD_CHECK(g_count == 1);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(!sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGUSR2));
    return 0;
  });
}

TEST(Sigaction, NodeferLeavesSignalUnblocked) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_handler = [](int) {
      sigset_t cur;
      sigprocmask(SIG_BLOCK, nullptr, &cur);
      g_count = !sigismember(&cur, SIGUSR1);
    };
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR1, &sa, nullptr);
    g_count = 0;
    raise(SIGUSR1);
    CHILD_CHECK(g_count == 1);
    return 0;
  });
}

TEST(Sigreturn, HandlerModificationsOfContextTakeEffect) {
  // Returning from a handler restores the (possibly modified) ucontext:
  // here the handler changes the saved signal mask.
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t*, void* uc) {
      sigaddset(&static_cast<ucontext_t*>(uc)->uc_sigmask, SIGUSR2);
    };
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, nullptr);
    raise(SIGUSR1);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(sigismember(&cur, SIGUSR2));
    return 0;
  });
}

TEST(Sigreturn, RegistersPreservedAcrossHandler) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(InstallHandler(SIGUSR1, [](int) {
      volatile double junk = 3.25;
      for (int i = 0; i < 100; i++) junk = junk * 1.5 + i;
    }) == 0);
    volatile double a = 1.5, b = 2.25;
    double before = a * b;
    raise(SIGUSR1);
    CHILD_CHECK(a * b == before);
    return 0;
  });
}

TEST(Sigprocmask, BlockUnblockAndQuery) {
  EXPECT_CHILD_OK([] {
    sigset_t m, old, cur;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &m, &old) == 0);
    CHILD_CHECK(!sigismember(&old, SIGUSR1));
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(sigismember(&cur, SIGUSR1));
    CHILD_CHECK(sigprocmask(SIG_UNBLOCK, &m, nullptr) == 0);
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(!sigismember(&cur, SIGUSR1));
    return 0;
  });
}

TEST(Sigprocmask, KillAndStopCannotBeBlocked) {
  EXPECT_CHILD_OK([] {
    sigset_t all, cur;
    sigfillset(&all);
    CHILD_CHECK(sigprocmask(SIG_SETMASK, &all, nullptr) == 0);
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(!sigismember(&cur, SIGKILL));
    CHILD_CHECK(!sigismember(&cur, SIGSTOP));
    return 0;
  });
}

TEST(Sigprocmask, InvalidHowIsEINVAL) {
  sigset_t m;
  sigemptyset(&m);
  EXPECT_ERRNO(EINVAL, syscall(SYS_rt_sigprocmask, 99, &m, nullptr, 8));
}

TEST(Sigprocmask, UnblockingDeliversPending) {
  EXPECT_CHILD_OK([] {
    g_count = 0;
    InstallHandler(SIGUSR1, CountingHandler);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    raise(SIGUSR1);
    raise(SIGUSR1);  // standard signals do not queue
    CHILD_CHECK(g_count == 0);
    sigset_t pend;
    sigpending(&pend);
    CHILD_CHECK(sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &m, nullptr);
    CHILD_CHECK(g_count == 1);
    return 0;
  });
}

TEST(Signals, RealtimeSignalsQueue) {
  EXPECT_CHILD_OK([] {
    g_count = 0;
    InstallHandler(SIGRTMIN, CountingHandler);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    for (int i = 0; i < 3; i++) raise(SIGRTMIN);
    sigprocmask(SIG_UNBLOCK, &m, nullptr);
    CHILD_CHECK(g_count == 3);
    return 0;
  });
}

TEST(Sigaltstack, HandlerRunsOnAltStack) {
  EXPECT_CHILD_OK([] {
    static char stack[64 * 1024];
    stack_t ss = {};
    ss.ss_sp = stack;
    ss.ss_size = sizeof(stack);
    CHILD_CHECK(sigaltstack(&ss, nullptr) == 0);
    struct sigaction sa = {};
    sa.sa_handler = [](int) {
      int local;
      g_handler_sp = reinterpret_cast<uintptr_t>(&local);
      stack_t cur;
      sigaltstack(nullptr, &cur);
      g_count = (cur.ss_flags & SS_ONSTACK) ? 1 : 0;
    };
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, nullptr);
    g_count = 0;
    raise(SIGUSR1);
    uintptr_t lo = reinterpret_cast<uintptr_t>(stack);
    CHILD_CHECK(g_handler_sp >= lo && g_handler_sp < lo + sizeof(stack));
    CHILD_CHECK(g_count == 1);
    stack_t cur;
    sigaltstack(nullptr, &cur);
    CHILD_CHECK(!(cur.ss_flags & SS_ONSTACK));
    return 0;
  });
}

TEST(Sigaltstack, TooSmallIsENOMEM) {
  char small[64];
  stack_t ss = {};
  ss.ss_sp = small;
  ss.ss_size = sizeof(small);
  EXPECT_ERRNO(ENOMEM, sigaltstack(&ss, nullptr));
}

TEST(Sigaltstack, BadFlagsAreEINVAL) {
  static char stack[64 * 1024];
  stack_t ss = {};
  ss.ss_sp = stack;
  ss.ss_size = sizeof(stack);
  ss.ss_flags = 0x1234;
  EXPECT_ERRNO(EINVAL, sigaltstack(&ss, nullptr));
}

TEST(Sigaltstack, DisableReportsDisabled) {
  EXPECT_CHILD_OK([] {
    stack_t ss = {};
    ss.ss_flags = SS_DISABLE;
    CHILD_CHECK(sigaltstack(&ss, nullptr) == 0);
    stack_t cur;
    CHILD_CHECK(sigaltstack(nullptr, &cur) == 0);
    CHILD_CHECK(cur.ss_flags == SS_DISABLE);
    return 0;
  });
}

TEST(Kill, SignalZeroChecksExistence) {
  EXPECT_OK(kill(getpid(), 0));
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  EXPECT_ERRNO(ESRCH, kill(pid, 0));
}

TEST(Kill, InvalidSignalIsEINVAL) {
  EXPECT_ERRNO(EINVAL, kill(getpid(), 1000));
  EXPECT_ERRNO(EINVAL, kill(getpid(), -1));
}

TEST(Kill, DeliversSiUserInfo) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_sigaction = InfoHandler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, nullptr);
    kill(getpid(), SIGUSR2);
    CHILD_CHECK(g_last_sig == SIGUSR2);
    CHILD_CHECK(g_info_code == SI_USER);
    return 0;
  });
}

TEST(Tgkill, TargetsSpecificThread) {
  EXPECT_CHILD_OK([] {
    static std::atomic<pid_t> handled_on{0};
    InstallHandler(SIGUSR1, [](int) { handled_on = Gettid(); });
    std::atomic<pid_t> tid{0};
    std::atomic<bool> stop{false};
    std::thread t([&] {
      tid = Gettid();
      while (!stop.load()) SleepMs(1);
    });
    while (tid.load() == 0) SleepMs(1);
    CHILD_CHECK(Tgkill(getpid(), tid.load(), SIGUSR1) == 0);
    for (int i = 0; i < 10000 && handled_on.load() == 0; i++) SleepMs(1);
    stop = true;
    t.join();
    CHILD_CHECK(handled_on.load() == tid.load());
    return 0;
  });
}

TEST(Tgkill, WrongTgidIsESRCH) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  EXPECT_ERRNO(ESRCH, Tgkill(pid, pid, 0));
  EXPECT_ERRNO(EINVAL, Tgkill(-1, Gettid(), 0));
}

TEST(Sigtimedwait, ReturnsPendingSignal) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    raise(SIGUSR1);
    siginfo_t si = {};
    struct timespec ts = {0, 0};
    CHILD_CHECK(sigtimedwait(&m, &si, &ts) == SIGUSR1);
    CHILD_CHECK(si.si_signo == SIGUSR1);
    CHILD_CHECK(sigtimedwait(&m, &si, &ts) == -1 && errno == EAGAIN);
    return 0;
  });
}

TEST(Sigtimedwait, TimesOutWithEAGAIN) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    struct timespec ts = {0, 20 * 1000000};
    int64_t start = NowNs();
    CHILD_CHECK(sigtimedwait(&m, nullptr, &ts) == -1 && errno == EAGAIN);
    CHILD_CHECK(NowNs() - start >= 20 * 1000000LL);
    return 0;
  });
}

TEST(Sigtimedwait, InvalidTimeoutIsEINVAL) {
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  struct timespec ts = {0, 1000000000};
  EXPECT_ERRNO(EINVAL, sigtimedwait(&m, nullptr, &ts));
}

TEST(Sigtimedwait, WakesOnSignalFromOtherProcess) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
      SleepMs(30);
      kill(me, SIGUSR2);
      _exit(0);
    }
    siginfo_t si = {};
    struct timespec ts = {30, 0};
    CHILD_CHECK(sigtimedwait(&m, &si, &ts) == SIGUSR2);
    CHILD_CHECK(si.si_pid == pid);
    waitpid(pid, nullptr, 0);
    return 0;
  });
}

TEST(Sigsuspend, ReturnsEINTRAfterHandlerAndRestoresMask) {
  EXPECT_CHILD_OK([] {
    g_count = 0;
    InstallHandler(SIGUSR1, CountingHandler);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    raise(SIGUSR1);
    sigset_t empty;
    sigemptyset(&empty);
    CHILD_CHECK(sigsuspend(&empty) == -1 && errno == EINTR);
    CHILD_CHECK(g_count == 1);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(sigismember(&cur, SIGUSR1));
    return 0;
  });
}

TEST(Sigpending, BadPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, syscall(SYS_rt_sigpending, kBadPtr, 8));
}

TEST(Signals, SIGSEGVHandlerSeesFaultAddress) {
  EXPECT_CHILD_OK([] {
    static volatile uintptr_t fault_addr;
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t* si, void*) {
      fault_addr = reinterpret_cast<uintptr_t>(si->si_addr);
      _exit(fault_addr == 0x1000 ? 0 : 3);
    };
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, nullptr);
    *(volatile int*)0x1000 = 1;
    return 4;
  });
}

TEST(Signals, BlockedSynchronousFaultStillKills) {
  EXPECT_TRUE(KilledBy(RunInChild([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGSEGV);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    *(volatile int*)0x1000 = 1;
    return 0;
  }), SIGSEGV));
}

TEST(Signals, AbortKillsWithSIGABRT) {
  EXPECT_TRUE(KilledBy(RunInChild([] {
    abort();
    return 0;
  }), SIGABRT));
}

}  // namespace
