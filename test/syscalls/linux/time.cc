// alarm(2), getitimer(2)/setitimer(2), timer_create(2) and friends,
// clock_gettime(2), clock_getres(2), clock_nanosleep(2), nanosleep(2),
// gettimeofday(2), time(2).
#include <sys/time.h>

#include "test_util.h"

namespace {

volatile sig_atomic_t g_fired;
volatile sig_atomic_t g_value;
void FiredHandler(int) { g_fired = g_fired + 1; }

TEST(Clock, MonotonicNeverGoesBackwards) {
  int64_t prev = NowNs(CLOCK_MONOTONIC);
  for (int i = 0; i < 1000; i++) {
    int64_t now = NowNs(CLOCK_MONOTONIC);
    ASSERT_GE(now, prev);
    prev = now;
  }
}

TEST(Clock, RealtimeIsRecent) {
  struct timespec ts;
  ASSERT_OK(clock_gettime(CLOCK_REALTIME, &ts));
  EXPECT_GT(ts.tv_sec, 1600000000);  // after 2020
  EXPECT_LT(ts.tv_nsec, 1000000000);
}

TEST(Clock, AllCommonClocksWork) {
  for (clockid_t c : {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                      CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                      CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME}) {
    SCOPED_TRACE(c);
    struct timespec ts;
    EXPECT_OK(clock_gettime(c, &ts));
    EXPECT_OK(clock_getres(c, &ts));
  }
}

TEST(Clock, InvalidClockIsEINVAL) {
  struct timespec ts;
  EXPECT_ERRNO(EINVAL, syscall(SYS_clock_gettime, 1234, &ts));
  EXPECT_ERRNO(EINVAL, syscall(SYS_clock_getres, 1234, &ts));
}

TEST(Clock, BadPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, syscall(SYS_clock_gettime, CLOCK_MONOTONIC, kBadPtr));
}

TEST(Clock, ResolutionIsAtMostOneMillisecondForMonotonic) {
  struct timespec ts;
  ASSERT_OK(clock_getres(CLOCK_MONOTONIC, &ts));
  EXPECT_EQ(ts.tv_sec, 0);
  EXPECT_LE(ts.tv_nsec, 1000000);
  EXPECT_GT(ts.tv_nsec, 0);
}

TEST(Clock, ProcessCputimeAdvancesWithWork) {
  int64_t before = NowNs(CLOCK_PROCESS_CPUTIME_ID);
  volatile uint64_t x = 0;
  for (uint64_t i = 0; i < 50000000; i++) x += i;
  EXPECT_GT(NowNs(CLOCK_PROCESS_CPUTIME_ID), before);
}

TEST(Clock, SettimeWithoutPrivilegeOrOnMonotonicFails) {
  struct timespec ts = {1, 0};
  EXPECT_ERRNO(EINVAL, clock_settime(CLOCK_MONOTONIC, &ts));
}

TEST(Gettimeofday, AgreesWithRealtime) {
  struct timeval tv;
  ASSERT_OK(gettimeofday(&tv, nullptr));
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  EXPECT_LE(std::abs(ts.tv_sec - tv.tv_sec), 2);
  EXPECT_LT(tv.tv_usec, 1000000);
  time_t t = time(nullptr);
  EXPECT_LE(std::abs(t - tv.tv_sec), 2);
}

TEST(Nanosleep, SleepsAtLeastRequested) {
  struct timespec ts = {0, 30 * 1000000};
  int64_t start = NowNs();
  ASSERT_OK(nanosleep(&ts, nullptr));
  EXPECT_GE(NowNs() - start, 30 * 1000000LL);
}

TEST(Nanosleep, InvalidTimespecIsEINVAL) {
  struct timespec ts = {0, 1000000000};
  EXPECT_ERRNO(EINVAL, nanosleep(&ts, nullptr));
  struct timespec neg = {-1, 0};
  EXPECT_ERRNO(EINVAL, nanosleep(&neg, nullptr));
}

TEST(Nanosleep, InterruptedReportsRemaining) {
  EXPECT_CHILD_OK([] {
    InstallHandler(SIGALRM, NoopHandler);
    alarm(1);
    struct timespec ts = {20, 0}, rem = {};
    CHILD_CHECK(nanosleep(&ts, &rem) == -1 && errno == EINTR);
    CHILD_CHECK(rem.tv_sec > 10 && rem.tv_sec <= 19);
    return 0;
  });
}

TEST(ClockNanosleep, AbsoluteDeadline) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 30 * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  int64_t deadline = ts.tv_sec * 1000000000LL + ts.tv_nsec;
  EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr), 0);
  EXPECT_GE(NowNs(), deadline);
}

TEST(ClockNanosleep, ReturnsErrorNumberDirectly) {
  struct timespec ts = {0, 1};
  // clock_nanosleep returns the error rather than setting errno.
  EXPECT_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, nullptr), EINVAL);
  EXPECT_EQ(clock_nanosleep(9999, 0, &ts, nullptr), EINVAL);
}

TEST(Alarm, DeliversSIGALRM) {
  EXPECT_CHILD_OK([] {
    g_fired = 0;
    InstallHandler(SIGALRM, FiredHandler);
    CHILD_CHECK(alarm(1) == 0);
    pause();
    CHILD_CHECK(g_fired == 1);
    return 0;
  });
}

TEST(Alarm, ReturnsRemainingAndCancels) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(alarm(100) == 0);
    unsigned left = alarm(0);
    CHILD_CHECK(left >= 98 && left <= 100);
    CHILD_CHECK(alarm(0) == 0);
    return 0;
  });
}

TEST(Alarm, DefaultActionKills) {
  EXPECT_TRUE(KilledBy(RunInChild([] {
    alarm(1);
    for (;;) pause();
    return 0;
  }), SIGALRM));
}

TEST(Itimer, RealTimerFiresPeriodically) {
  EXPECT_CHILD_OK([] {
    g_fired = 0;
    InstallHandler(SIGALRM, FiredHandler, SA_RESTART);
    struct itimerval it = {{0, 10000}, {0, 10000}};
    CHILD_CHECK(setitimer(ITIMER_REAL, &it, nullptr) == 0);
    int64_t deadline = NowNs() + 30LL * 1000000000;
    while (g_fired < 3 && NowNs() < deadline) pause();
    struct itimerval zero = {};
    setitimer(ITIMER_REAL, &zero, nullptr);
    CHILD_CHECK(g_fired >= 3);
    return 0;
  });
}

TEST(Itimer, GetReturnsSetValues) {
  EXPECT_CHILD_OK([] {
    struct itimerval it = {{5, 0}, {100, 0}}, cur, old;
    CHILD_CHECK(setitimer(ITIMER_REAL, &it, nullptr) == 0);
    CHILD_CHECK(getitimer(ITIMER_REAL, &cur) == 0);
    CHILD_CHECK(cur.it_interval.tv_sec == 5);
    CHILD_CHECK(cur.it_value.tv_sec >= 98 && cur.it_value.tv_sec <= 100);
    struct itimerval zero = {};
    CHILD_CHECK(setitimer(ITIMER_REAL, &zero, &old) == 0);
    CHILD_CHECK(old.it_value.tv_sec >= 98);
    // alarm() shares the ITIMER_REAL timer.
    alarm(50);
    CHILD_CHECK(getitimer(ITIMER_REAL, &cur) == 0);
    CHILD_CHECK(cur.it_value.tv_sec >= 48 && cur.it_value.tv_sec <= 50);
    alarm(0);
    return 0;
  });
}

TEST(Itimer, VirtualTimerFiresOnCpuTime) {
  EXPECT_CHILD_OK([] {
    g_fired = 0;
    InstallHandler(SIGVTALRM, FiredHandler, SA_RESTART);
    struct itimerval it = {{0, 0}, {0, 10000}};
    CHILD_CHECK(setitimer(ITIMER_VIRTUAL, &it, nullptr) == 0);
    volatile uint64_t x = 0;
    int64_t deadline = NowNs() + 60LL * 1000000000;
    while (g_fired == 0 && NowNs() < deadline) x = x + 1;
    CHILD_CHECK(g_fired == 1);
    return 0;
  });
}

TEST(Itimer, InvalidWhichIsEINVAL) {
  struct itimerval it;
  EXPECT_ERRNO(EINVAL, getitimer((__itimer_which)42, &it));
}

TEST(Itimer, InvalidUsecIsEINVAL) {
  struct itimerval it = {{0, 0}, {0, 1000000}};
  EXPECT_ERRNO(EINVAL, setitimer(ITIMER_REAL, &it, nullptr));
}

TEST(PosixTimer, SignalNotificationWithValue) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    struct sigevent sev = {};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 77;
    timer_t t;
    CHILD_CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
    struct itimerspec its = {};
    its.it_value.tv_nsec = 10 * 1000000;
    CHILD_CHECK(timer_settime(t, 0, &its, nullptr) == 0);
    siginfo_t si = {};
    struct timespec to = {30, 0};
    CHILD_CHECK(sigtimedwait(&m, &si, &to) == SIGRTMIN);
    CHILD_CHECK(si.si_code == SI_TIMER);
    CHILD_CHECK(si.si_value.sival_int == 77);
    CHILD_CHECK(timer_delete(t) == 0);
    return 0;
  });
}

TEST(PosixTimer, GettimeAndOverrun) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    struct sigevent sev = {};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    timer_t t;
    CHILD_CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0);
    struct itimerspec its = {};
    its.it_value.tv_nsec = 1000000;
    its.it_interval.tv_nsec = 1000000;
    CHILD_CHECK(timer_settime(t, 0, &its, nullptr) == 0);
    SleepMs(100);  // signal stays pending (blocked): expirations overrun
    struct itimerspec cur;
    CHILD_CHECK(timer_gettime(t, &cur) == 0);
    CHILD_CHECK(cur.it_interval.tv_nsec == 1000000);
    siginfo_t si;
    struct timespec to = {0, 0};
    CHILD_CHECK(sigtimedwait(&m, &si, &to) == SIGUSR1);
    // ~100 expirations while one signal was pending: the rest are counted
    // as overruns in the delivered siginfo.
    CHILD_CHECK(si.si_overrun > 0);
    CHILD_CHECK(timer_getoverrun(t) >= 0);
    timer_delete(t);
    return 0;
  });
}

TEST(PosixTimer, SigevNoneNeverSignals) {
  timer_t t;
  struct sigevent sev = {};
  sev.sigev_notify = SIGEV_NONE;
  ASSERT_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
  struct itimerspec its = {};
  its.it_value.tv_sec = 100;
  ASSERT_OK(timer_settime(t, 0, &its, nullptr));
  struct itimerspec cur;
  ASSERT_OK(timer_gettime(t, &cur));
  EXPECT_GE(cur.it_value.tv_sec, 98);
  EXPECT_OK(timer_delete(t));
}

TEST(PosixTimer, InvalidArguments) {
  timer_t t;
  struct sigevent sev = {};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = 1000;
  EXPECT_ERRNO(EINVAL, timer_create(CLOCK_MONOTONIC, &sev, &t));
  sev.sigev_signo = SIGUSR1;
  EXPECT_ERRNO(EINVAL, timer_create(9999, &sev, &t));
  EXPECT_ERRNO(EINVAL, syscall(SYS_timer_delete, 123456));
}

TEST(PosixTimer, DeletedTimerIdIsEINVAL) {
  timer_t t;
  struct sigevent sev = {};
  sev.sigev_notify = SIGEV_NONE;
  ASSERT_OK(timer_create(CLOCK_MONOTONIC, &sev, &t));
  ASSERT_OK(timer_delete(t));
  struct itimerspec cur;
  EXPECT_ERRNO(EINVAL, timer_gettime(t, &cur));
}

}  // namespace
