// seccomp(2) / prctl(PR_SET_SECCOMP): strict mode and BPF filters with
// RET_ERRNO, RET_KILL_PROCESS, RET_TRAP, RET_ALLOW; argument matching;
// inheritance across fork; validation errors. Every filter is installed in
// a forked child.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace {

long Seccomp(unsigned op, unsigned flags, void* args) {
  return syscall(SYS_seccomp, op, flags, args);
}

// Builds a filter: check arch, then for syscall nr return action,
// otherwise allow.
std::vector<sock_filter> FilterFor(int nr, uint32_t action) {
  return {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
}

int Install(std::vector<sock_filter> f, unsigned flags = 0) {
  struct sock_fprog prog = {(unsigned short)f.size(), f.data()};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)Seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog);
}

TEST(Seccomp, RetErrnoReturnsChosenErrno) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | EPERM)) == 0);
    CHILD_CHECK(syscall(SYS_getppid) == -1 && errno == EPERM);
    CHILD_CHECK(getpid() > 0);  // others still allowed
    return 0;
  });
}

TEST(Seccomp, RetKillProcessKillsWithSIGSYS) {
  int st = RunInChild([] {
    if (Install(FilterFor(SYS_getppid, SECCOMP_RET_KILL_PROCESS)) != 0) return 2;
    syscall(SYS_getppid);
    return 0;
  });
  EXPECT_TRUE(KilledBy(st, SIGSYS));
}

volatile sig_atomic_t g_trapped_nr = -1;
volatile sig_atomic_t g_trapped_code = -1;

TEST(Seccomp, RetTrapDeliversSIGSYSWithInfo) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t* si, void*) {
      g_trapped_nr = si->si_syscall;
      g_trapped_code = si->si_code;
    };
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, nullptr);
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_TRAP | 42)) == 0);
    syscall(SYS_getppid);
    CHILD_CHECK(g_trapped_nr == SYS_getppid);
    CHILD_CHECK(g_trapped_code == 1);  // SYS_SECCOMP
    return 0;
  });
}

TEST(Seccomp, ArgumentMatching) {
  EXPECT_CHILD_OK([] {
    // Fail dup() only when its argument is 0.
    std::vector<sock_filter> f = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_dup, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    CHILD_CHECK(Install(f) == 0);
    CHILD_CHECK(dup(0) == -1 && errno == EACCES);
    int fd = dup(1);
    CHILD_CHECK(fd >= 0);
    return 0;
  });
}

TEST(Seccomp, FiltersInheritedAcrossForkAndExec) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | ENOTTY)) == 0);
    pid_t pid = fork();
    if (pid == 0) _exit(syscall(SYS_getppid) == -1 && errno == ENOTTY ? 0 : 1);
    int st;
    waitpid(pid, &st, 0);
    CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
  });
}

TEST(Seccomp, StackedFiltersMostRestrictiveWins) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | EPERM)) == 0);
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ALLOW)) == 0);
    CHILD_CHECK(syscall(SYS_getppid) == -1 && errno == EPERM);
    return 0;
  });
}

TEST(Seccomp, RequiresNoNewPrivsOrCapSysAdmin) {
  EXPECT_CHILD_OK([] {
    if (geteuid() == 0) CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    auto f = FilterFor(SYS_getppid, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)f.size(), f.data()};
    CHILD_CHECK(Seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) == -1 && errno == EACCES);
    return 0;
  });
}

TEST(Seccomp, InvalidProgramsAreEINVAL) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    // Empty program.
    struct sock_fprog empty = {0, nullptr};
    CHILD_CHECK(Seccomp(SECCOMP_SET_MODE_FILTER, 0, &empty) == -1 && errno == EINVAL);
    // Program that does not end with a return.
    sock_filter noret[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
    struct sock_fprog p1 = {1, noret};
    CHILD_CHECK(Seccomp(SECCOMP_SET_MODE_FILTER, 0, &p1) == -1 && errno == EINVAL);
    // Load beyond seccomp_data.
    sock_filter oob[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4096), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog p2 = {2, oob};
    CHILD_CHECK(Seccomp(SECCOMP_SET_MODE_FILTER, 0, &p2) == -1 && errno == EINVAL);
    // Unknown operation and flags.
    CHILD_CHECK(Seccomp(99, 0, nullptr) == -1 && errno == EINVAL);
    auto f = FilterFor(SYS_getppid, SECCOMP_RET_ALLOW);
    struct sock_fprog ok = {(unsigned short)f.size(), f.data()};
    CHILD_CHECK(Seccomp(SECCOMP_SET_MODE_FILTER, 1u << 30, &ok) == -1 && errno == EINVAL);
    CHILD_CHECK(Seccomp(SECCOMP_SET_MODE_FILTER, 0, kBadPtr) == -1 && errno == EFAULT);
    return 0;
  });
}

TEST(Seccomp, GetActionAvail) {
  uint32_t a = SECCOMP_RET_KILL_PROCESS;
  EXPECT_OK(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &a));
  a = SECCOMP_RET_ERRNO;
  EXPECT_OK(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &a));
  a = 0x12340000;
  EXPECT_ERRNO(EOPNOTSUPP, Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &a));
}

TEST(Seccomp, StrictModeAllowsOnlyReadWriteExit) {
  int p[2];
  ASSERT_OK(pipe(p));
  int st = RunInChild([&] {
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) return 2;
    write(p[1], "s", 1);
    syscall(SYS_getpid);  // not allowed: SIGKILL
    syscall(SYS_exit, 0);
    return 0;
  });
  EXPECT_TRUE(KilledBy(st, SIGKILL));
  char c;
  EXPECT_RET(1, read(p[0], &c, 1));
  close(p[0]);
  close(p[1]);
}

TEST(Seccomp, GetSeccompReportsMode) {
  EXPECT_EQ(prctl(PR_GET_SECCOMP), 0);
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ALLOW)) == 0);
    CHILD_CHECK(prctl(PR_GET_SECCOMP) == 2);
    return 0;
  });
}

volatile sig_atomic_t g_trap_errno = -1;
volatile sig_atomic_t g_trap_arch_ok = 0;
volatile sig_atomic_t g_trap_addr_ok = 0;

TEST(Seccomp, RetTrapSiginfoFieldsAndReturnValue) {
  EXPECT_CHILD_OK([] {
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t* si, void*) {
      g_trap_errno = si->si_errno;
      g_trap_arch_ok = si->si_arch == AUDIT_ARCH_X86_64;
      g_trap_addr_ok = si->si_call_addr != nullptr;
    };
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, nullptr);
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_TRAP | 42)) == 0);
    // The syscall is not run; rax holds its number again (the kernel
    // rolls it back), which is what syscall() returns after the handler.
    long r = syscall(SYS_getppid);
    CHILD_CHECK(r == SYS_getppid);
    CHILD_CHECK(g_trap_errno == 42);
    CHILD_CHECK(g_trap_arch_ok == 1);
    CHILD_CHECK(g_trap_addr_ok == 1);
    return 0;
  });
}

TEST(Seccomp, RetTraceWithoutTracerIsENOSYS) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_TRACE | 5)) == 0);
    CHILD_CHECK(syscall(SYS_getppid) == -1 && errno == ENOSYS);
    return 0;
  });
}

TEST(Seccomp, RetErrnoIsCappedAtMaxErrno) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | 5000)) == 0);
    CHILD_CHECK(syscall(SYS_getppid) == -1 && errno == 4095);
    return 0;
  });
}

TEST(Seccomp, RetLogAndFlagLogAllow) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_LOG), SECCOMP_FILTER_FLAG_LOG) == 0);
    CHILD_CHECK(syscall(SYS_getppid) == getppid());
    return 0;
  });
}

TEST(Seccomp, RetKillThreadSparesOtherThreads) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_KILL_THREAD)) == 0);
    std::atomic<int> after{0};
    std::thread t([&] {
      syscall(SYS_getppid);
      after = 1;  // never reached
    });
    t.join();
    CHILD_CHECK(after == 0);
    return 0;
  });
}

TEST(Seccomp, RetKillThreadOfLastThreadKillsProcess) {
  int st = RunInChild([] {
    if (Install(FilterFor(SYS_getppid, SECCOMP_RET_KILL_THREAD)) != 0) return 2;
    syscall(SYS_getppid);
    return 0;
  });
  EXPECT_TRUE(KilledBy(st, SIGSYS));
}

TEST(Seccomp, TsyncAppliesToEveryThread) {
  EXPECT_CHILD_OK([] {
    std::atomic<int> phase{0};
    std::atomic<int> result{0};
    std::thread t([&] {
      while (phase.load() == 0) {
      }
      result = syscall(SYS_getppid) == -1 && errno == EPERM ? 1 : 2;
    });
    int r = Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | EPERM), SECCOMP_FILTER_FLAG_TSYNC);
    phase = 1;
    t.join();
    CHILD_CHECK(r == 0);
    CHILD_CHECK(result == 1);
    return 0;
  });
}

TEST(Seccomp, TsyncFailsOnThreadWithOtherFilters) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    std::atomic<int> phase{0};
    std::atomic<long> tid{0};
    std::thread t([&] {
      Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | EPERM));
      tid = syscall(SYS_gettid);
      phase = 1;
      while (phase.load() == 1) {
      }
    });
    while (phase.load() == 0) {
    }
    long r = Install(FilterFor(SYS_getpid, SECCOMP_RET_ERRNO | EPERM), SECCOMP_FILTER_FLAG_TSYNC);
    int e = errno;
    phase = 2;
    t.join();
    CHILD_CHECK(r == tid);
    // Nothing was installed on this thread either.
    CHILD_CHECK(getpid() > 0);
    // With TSYNC_ESRCH the failure is an error instead.
    std::thread t2([&] {
      Install(FilterFor(SYS_getppid, SECCOMP_RET_ERRNO | EPERM));
      phase = 3;
      while (phase.load() == 3) {
      }
    });
    while (phase.load() != 3) {
    }
    r = Install(FilterFor(SYS_getpid, SECCOMP_RET_ERRNO | EPERM),
                SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH);
    e = errno;
    phase = 4;
    t2.join();
    CHILD_CHECK(r == -1 && e == ESRCH);
    return 0;
  });
}

TEST(Seccomp, GetNotifSizes) {
  struct seccomp_notif_sizes sizes = {};
  ASSERT_OK(Seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes));
  EXPECT_EQ(sizes.seccomp_notif, sizeof(struct seccomp_notif));
  EXPECT_EQ(sizes.seccomp_notif_resp, sizeof(struct seccomp_notif_resp));
  EXPECT_EQ(sizes.seccomp_data, sizeof(struct seccomp_data));
  EXPECT_ERRNO(EINVAL, Seccomp(SECCOMP_GET_NOTIF_SIZES, 1, &sizes));
}

TEST(Seccomp, GetActionAvailKnowsEveryAction) {
  for (uint32_t a : {SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP,
                     SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE, SECCOMP_RET_LOG, SECCOMP_RET_ALLOW}) {
    EXPECT_OK(Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &a));
  }
  uint32_t a = SECCOMP_RET_ALLOW;
  EXPECT_ERRNO(EINVAL, Seccomp(SECCOMP_GET_ACTION_AVAIL, 1, &a));
  EXPECT_ERRNO(EFAULT, Seccomp(SECCOMP_GET_ACTION_AVAIL, 0, kBadPtr));
}

TEST(Seccomp, StrictModeViaSeccompAndNoFilterAfter) {
  int st = RunInChild([] {
    if (Seccomp(SECCOMP_SET_MODE_STRICT, 1, nullptr) != -1 || errno != EINVAL) return 3;
    if (Seccomp(SECCOMP_SET_MODE_STRICT, 0, nullptr) != 0) return 2;
    syscall(SYS_exit, 0);
    return 4;
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_ALLOW)) == 0);
    // A task with filters cannot switch to strict mode.
    CHILD_CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) == -1 && errno == EINVAL);
    CHILD_CHECK(prctl(PR_SET_SECCOMP, 42) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Seccomp, FiltersKeptAcrossExecve) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(Install(FilterFor(SYS_getppid, SECCOMP_RET_KILL_PROCESS)) == 0);
    pid_t pid = fork();
    if (pid == 0) {
      // The shell's own startup does not call getppid; $PPID does.
      execl("/bin/sh", "sh", "-c", "echo $PPID > /dev/null", (char*)nullptr);
      _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    CHILD_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
    return 0;
  });
}

}  // namespace
