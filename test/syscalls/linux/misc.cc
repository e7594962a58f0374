// uname(2), getrandom(2), prctl(2), arch_prctl(2), getrlimit(2)/
// setrlimit(2)/prlimit(2), sched_*(2), getcpu(2), sysinfo(2), times(2),
// getrusage(2).
#include <asm/prctl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/utsname.h>

#include <thread>

#include "test_util.h"

namespace {

TEST(Uname, FieldsAreFilled) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  EXPECT_STREQ(u.sysname, "Linux");
  EXPECT_STREQ(u.machine, "x86_64");
  EXPECT_GT(strlen(u.release), 0u);
  EXPECT_GT(strlen(u.nodename), 0u);
}

TEST(Uname, BadPointerIsEFAULT) { EXPECT_ERRNO(EFAULT, uname((struct utsname*)kBadPtr)); }

TEST(Uname, HostnameMatchesGethostname) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  char h[256];
  ASSERT_OK(gethostname(h, sizeof(h)));
  EXPECT_STREQ(h, u.nodename);
}

TEST(Uname, SethostnameInNewUtsNamespace) {
  SKIP_IF_NOT_ROOT();
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(unshare(CLONE_NEWUTS) == 0);
    CHILD_CHECK(sethostname("carapace-test", 13) == 0);
    struct utsname u;
    uname(&u);
    CHILD_CHECK(strcmp(u.nodename, "carapace-test") == 0);
    CHILD_CHECK(sethostname("x", 100) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Getrandom, FillsBuffer) {
  unsigned char a[64] = {}, b[64] = {};
  EXPECT_RET(64, getrandom(a, sizeof(a), 0));
  EXPECT_RET(64, getrandom(b, sizeof(b), GRND_NONBLOCK));
  EXPECT_NE(memcmp(a, b, 64), 0);
}

TEST(Getrandom, ZeroLength) { EXPECT_RET(0, getrandom(nullptr, 0, 0)); }

TEST(Getrandom, InvalidFlagsAreEINVAL) {
  char buf[8];
  EXPECT_ERRNO(EINVAL, getrandom(buf, sizeof(buf), 0x100));
  EXPECT_ERRNO(EINVAL, getrandom(buf, sizeof(buf), GRND_RANDOM | GRND_INSECURE));
}

TEST(Getrandom, BadBufferIsEFAULT) { EXPECT_ERRNO(EFAULT, getrandom(kBadPtr, 8, 0)); }

TEST(Prctl, SetAndGetName) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_SET_NAME, "averyveryverylongname") == 0);
    char name[32] = {};
    CHILD_CHECK(prctl(PR_GET_NAME, name) == 0);
    // Truncated to 15 bytes plus NUL.
    CHILD_CHECK(strcmp(name, "averyveryverylo") == 0);
    std::string comm;
    CHILD_CHECK(ReadFile("/proc/self/comm", &comm));
    CHILD_CHECK(comm == "averyveryverylo\n");
    return 0;
  });
}

TEST(Prctl, PdeathsigRoundTrip) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR1) == 0);
    int sig = 0;
    CHILD_CHECK(prctl(PR_GET_PDEATHSIG, &sig) == 0);
    CHILD_CHECK(sig == SIGUSR1);
    CHILD_CHECK(prctl(PR_SET_PDEATHSIG, 1000) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Prctl, NoNewPrivsIsSticky) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHILD_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Prctl, DumpableRoundTrip) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_SET_DUMPABLE, 0) == 0);
    CHILD_CHECK(prctl(PR_GET_DUMPABLE) == 0);
    CHILD_CHECK(prctl(PR_SET_DUMPABLE, 1) == 0);
    CHILD_CHECK(prctl(PR_GET_DUMPABLE) == 1);
    CHILD_CHECK(prctl(PR_SET_DUMPABLE, 5) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Prctl, ChildSubreaperAdoptsOrphans) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int v = 0;
    CHILD_CHECK(prctl(PR_GET_CHILD_SUBREAPER, &v) == 0 && v == 1);
    pid_t mid = fork();
    if (mid == 0) {
      pid_t g = fork();
      if (g == 0) {
        SleepMs(50);
        _exit(21);
      }
      _exit(0);
    }
    waitpid(mid, nullptr, 0);
    int st;
    pid_t got = wait(&st);  // the orphaned grandchild is now ours
    CHILD_CHECK(got > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 21);
    return 0;
  });
}

TEST(Prctl, UnknownOptionIsEINVAL) { EXPECT_ERRNO(EINVAL, prctl(0x7fffffff, 0, 0, 0, 0)); }

TEST(ArchPrctl, FsBaseRoundTrip) {
  unsigned long fs = 0;
  ASSERT_OK(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
  EXPECT_NE(fs, 0u);  // glibc TLS lives here
  // Setting it to the same value is harmless.
  EXPECT_OK(syscall(SYS_arch_prctl, ARCH_SET_FS, fs));
}

TEST(ArchPrctl, GsBaseRoundTripInChild) {
  EXPECT_CHILD_OK([] {
    static uint64_t slot = 0x1122334455667788ULL;
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, &slot) == 0);
    unsigned long gs = 0;
    CHILD_CHECK(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0);
    CHILD_CHECK(gs == reinterpret_cast<unsigned long>(&slot));
    uint64_t v;
    asm volatile("mov %%gs:0, %0" : "=r"(v));
    CHILD_CHECK(v == slot);
    return 0;
  });
}

TEST(ArchPrctl, InvalidCodeIsEINVAL) {
  unsigned long v;
  EXPECT_ERRNO(EINVAL, syscall(SYS_arch_prctl, 0x9999, &v));
}

TEST(ArchPrctl, NonCanonicalFsIsEPERM) {
  EXPECT_CHILD_OK([] {
    long r = syscall(SYS_arch_prctl, ARCH_SET_FS, 0x8000000000000000ULL);
    CHILD_CHECK(r == -1 && errno == EPERM);
    return 0;
  });
}

TEST(ArchPrctl, GetFsBadPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, syscall(SYS_arch_prctl, ARCH_GET_FS, kBadPtr));
}

TEST(Rlimit, GetReturnsSoftBelowHard) {
  for (int r : {RLIMIT_NOFILE, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_AS, RLIMIT_NPROC}) {
    struct rlimit rl;
    ASSERT_OK(getrlimit(r, &rl));
    EXPECT_LE(rl.rlim_cur, rl.rlim_max) << "resource " << r;
  }
}

TEST(Rlimit, InvalidResourceIsEINVAL) {
  struct rlimit rl;
  EXPECT_ERRNO(EINVAL, getrlimit((__rlimit_resource)100, &rl));
}

TEST(Rlimit, SoftAboveHardIsEINVAL) {
  struct rlimit rl = {100, 50};
  EXPECT_ERRNO(EINVAL, setrlimit(RLIMIT_NOFILE, &rl));
}

TEST(Rlimit, NofileLimitEnforced) {
  EXPECT_CHILD_OK([] {
    struct rlimit rl = {20, 20};
    CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    int last = -1;
    for (;;) {
      int fd = open("/dev/null", O_RDONLY);
      if (fd < 0) {
        CHILD_CHECK(errno == EMFILE);
        break;
      }
      last = fd;
    }
    CHILD_CHECK(last == 19);
    CHILD_CHECK(dup2(0, 25) == -1 && errno == EBADF);
    return 0;
  });
}

TEST(Rlimit, FsizeLimitRaisesSIGXFSZ) {
  TempDir d;
  std::string path = d.Sub("f");
  EXPECT_CHILD_OK([&] {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {10, 10};
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
    CHILD_CHECK(fd >= 0);
    // Partial write up to the limit, then EFBIG.
    CHILD_CHECK(write(fd, "0123456789abcdef", 16) == 10);
    CHILD_CHECK(write(fd, "x", 1) == -1 && errno == EFBIG);
    return 0;
  });
}

// RLIMIT_FSIZE also bounds growing a file by ftruncate, truncate and
// fallocate (EFBIG and SIGXFSZ, nothing done), but not shrinking it nor
// writing to a pipe; pwrite is cut at the limit like write.
TEST(Rlimit, FsizeLimitBoundsTruncateAndFallocate) {
  TempDir d;
  std::string path = d.Sub("f");
  EXPECT_CHILD_OK([&] {
    sigset_t xfsz;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &xfsz, nullptr) == 0);
    int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(ftruncate(fd, 100) == 0);  // before the limit
    struct rlimit rl = {10, RLIM_INFINITY};
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    CHILD_CHECK(ftruncate(fd, 50) == 0);  // shrinking is allowed
    CHILD_CHECK(ftruncate(fd, 0) == 0);
    CHILD_CHECK(pwrite(fd, "0123456789abcdef", 16, 4) == 6);
    sigset_t pending;
    CHILD_CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGXFSZ));
    CHILD_CHECK(ftruncate(fd, 11) == -1 && errno == EFBIG);
    CHILD_CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ));
    CHILD_CHECK(truncate(path.c_str(), 11) == -1 && errno == EFBIG);
    CHILD_CHECK(fallocate(fd, 0, 0, 11) == -1 && errno == EFBIG);
    CHILD_CHECK(fallocate(fd, 0, 0, 10) == 0);
    struct stat st;
    CHILD_CHECK(fstat(fd, &st) == 0 && st.st_size == 10);
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    CHILD_CHECK(write(p[1], "0123456789abcdef", 16) == 16);
    return 0;
  });
}

TEST(Rlimit, LoweringHardLimitIsIrreversibleWithoutPrivilege) {
  EXPECT_CHILD_OK([] {
    struct rlimit rl;
    getrlimit(RLIMIT_CORE, &rl);
    struct rlimit low = {0, 0};
    CHILD_CHECK(setrlimit(RLIMIT_CORE, &low) == 0);
    struct rlimit got;
    getrlimit(RLIMIT_CORE, &got);
    CHILD_CHECK(got.rlim_cur == 0 && got.rlim_max == 0);
    return 0;
  });
}

TEST(Prlimit, GetAndSetOnSelf) {
  EXPECT_CHILD_OK([] {
    struct rlimit nw = {64, 128}, old;
    CHILD_CHECK(prlimit(0, RLIMIT_NOFILE, &nw, &old) == 0);
    struct rlimit cur;
    CHILD_CHECK(prlimit(getpid(), RLIMIT_NOFILE, nullptr, &cur) == 0);
    CHILD_CHECK(cur.rlim_cur == 64 && cur.rlim_max == 128);
    return 0;
  });
}

TEST(Prlimit, NonexistentPidIsESRCH) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  struct rlimit rl;
  EXPECT_ERRNO(ESRCH, prlimit(pid, RLIMIT_NOFILE, nullptr, &rl));
}

TEST(Sched, YieldSucceeds) { EXPECT_OK(sched_yield()); }

TEST(Sched, GetschedulerIsOther) {
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
  EXPECT_ERRNO(EINVAL, sched_getscheduler(-1));
}

TEST(Sched, PriorityRanges) {
  EXPECT_EQ(sched_get_priority_min(SCHED_OTHER), 0);
  EXPECT_EQ(sched_get_priority_max(SCHED_OTHER), 0);
  EXPECT_EQ(sched_get_priority_min(SCHED_FIFO), 1);
  EXPECT_EQ(sched_get_priority_max(SCHED_FIFO), 99);
  EXPECT_ERRNO(EINVAL, sched_get_priority_max(12345));
}

TEST(Sched, GetparamOtherIsZero) {
  struct sched_param p = {7};
  ASSERT_OK(sched_getparam(0, &p));
  EXPECT_EQ(p.sched_priority, 0);
  EXPECT_ERRNO(EINVAL, sched_getparam(0, nullptr));
}

TEST(Sched, SetschedulerOtherWithNonzeroPriorityIsEINVAL) {
  struct sched_param p = {5};
  EXPECT_ERRNO(EINVAL, sched_setscheduler(0, SCHED_OTHER, &p));
}

TEST(Sched, AffinityIncludesCurrentCpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_OK(sched_getaffinity(0, sizeof(set), &set));
  EXPECT_GT(CPU_COUNT(&set), 0);
  unsigned cpu = 0, node = 0;
  ASSERT_OK(syscall(SYS_getcpu, &cpu, &node, nullptr));
  EXPECT_TRUE(CPU_ISSET(cpu, &set));
}

TEST(Sched, AffinityReturnsKernelMaskSize) {
  cpu_set_t set;
  long n = syscall(SYS_sched_getaffinity, 0, sizeof(set), &set);
  ASSERT_GT(n, 0);
  EXPECT_EQ(n % sizeof(long), 0);
  EXPECT_ERRNO(EINVAL, syscall(SYS_sched_getaffinity, 0, 1, &set));
}

TEST(Sched, SetaffinityToOneCpu) {
  EXPECT_CHILD_OK([] {
    cpu_set_t set;
    sched_getaffinity(0, sizeof(set), &set);
    int first = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
      if (CPU_ISSET(i, &set)) {
        first = i;
        break;
      }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHILD_CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
    unsigned cpu;
    syscall(SYS_getcpu, &cpu, nullptr, nullptr);
    CHILD_CHECK((int)cpu == first);
    cpu_set_t empty;
    CPU_ZERO(&empty);
    CHILD_CHECK(sched_setaffinity(0, sizeof(empty), &empty) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Sched, RrGetInterval) {
  struct timespec ts;
  EXPECT_OK(sched_rr_get_interval(0, &ts));
}

TEST(Priority, NiceRaisesNiceness) {
  EXPECT_CHILD_OK([] {
    errno = 0;
    int before = getpriority(PRIO_PROCESS, 0);
    CHILD_CHECK(errno == 0);
    CHILD_CHECK(setpriority(PRIO_PROCESS, 0, before + 1) == 0);
    CHILD_CHECK(getpriority(PRIO_PROCESS, 0) == before + 1);
    CHILD_CHECK(setpriority(42, 0, 0) == -1 && errno == EINVAL);
    return 0;
  });
}

TEST(Sysinfo, SaneValues) {
  struct sysinfo si;
  ASSERT_OK(sysinfo(&si));
  EXPECT_GT(si.uptime, 0);
  EXPECT_GT(si.totalram, 0u);
  EXPECT_GE(si.totalram, si.freeram);
  EXPECT_GT(si.procs, 0);
}

TEST(Times, ReturnsClockTicks) {
  struct tms t;
  clock_t a = times(&t);
  EXPECT_NE(a, (clock_t)-1);
  EXPECT_ERRNO(EFAULT, syscall(SYS_times, kBadPtr));
}

TEST(Getrusage, SelfAndChildren) {
  struct rusage ru;
  ASSERT_OK(getrusage(RUSAGE_SELF, &ru));
  EXPECT_GT(ru.ru_maxrss, 0);
  ASSERT_OK(getrusage(RUSAGE_CHILDREN, &ru));
  ASSERT_OK(getrusage(RUSAGE_THREAD, &ru));
  EXPECT_ERRNO(EINVAL, getrusage((__rusage_who)42, &ru));
}

}  // namespace
