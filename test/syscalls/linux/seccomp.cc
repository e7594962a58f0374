// seccomp(2) / prctl(PR_SET_SECCOMP): strict mode and BPF filters with
// RET_ERRNO, RET_KILL_PROCESS, RET_TRAP, RET_ALLOW; argument matching;
// inheritance across fork; validation errors. Every filter is installed in
// a forked child.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

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

}  // namespace
