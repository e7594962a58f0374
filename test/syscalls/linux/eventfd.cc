// eventfd(2), timerfd_create(2), signalfd(2).
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <poll.h>

#include "test_util.h"

namespace {

TEST(Eventfd, InitialValueReadAndReset) {
  Fd e(eventfd(5, 0));
  ASSERT_TRUE(e.valid());
  uint64_t v = 0;
  EXPECT_RET(8, read(e.get(), &v, 8));
  EXPECT_EQ(v, 5u);
  Fd e2(eventfd(0, EFD_NONBLOCK));
  EXPECT_ERRNO(EAGAIN, read(e2.get(), &v, 8));
}

TEST(Eventfd, WritesAccumulate) {
  Fd e(eventfd(0, EFD_NONBLOCK));
  uint64_t a = 3, b = 4, v = 0;
  ASSERT_RET(8, write(e.get(), &a, 8));
  ASSERT_RET(8, write(e.get(), &b, 8));
  EXPECT_RET(8, read(e.get(), &v, 8));
  EXPECT_EQ(v, 7u);
}

TEST(Eventfd, SemaphoreModeDecrementsByOne) {
  Fd e(eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK));
  uint64_t v = 0;
  for (int i = 0; i < 3; i++) {
    EXPECT_RET(8, read(e.get(), &v, 8));
    EXPECT_EQ(v, 1u);
  }
  EXPECT_ERRNO(EAGAIN, read(e.get(), &v, 8));
}

TEST(Eventfd, ShortBufferIsEINVAL) {
  Fd e(eventfd(1, 0));
  uint32_t small;
  EXPECT_ERRNO(EINVAL, read(e.get(), &small, 4));
  EXPECT_ERRNO(EINVAL, write(e.get(), &small, 4));
}

TEST(Eventfd, WritingMaxIsEINVAL) {
  Fd e(eventfd(0, 0));
  uint64_t v = 0xffffffffffffffffULL;
  EXPECT_ERRNO(EINVAL, write(e.get(), &v, 8));
}

TEST(Eventfd, OverflowWouldBlock) {
  Fd e(eventfd(0, EFD_NONBLOCK));
  uint64_t v = 0xfffffffffffffffeULL;
  ASSERT_RET(8, write(e.get(), &v, 8));
  uint64_t one = 1;
  EXPECT_ERRNO(EAGAIN, write(e.get(), &one, 8));
  struct pollfd pfd = {e.get(), POLLOUT | POLLIN, 0};
  EXPECT_RET(1, poll(&pfd, 1, 0));
  EXPECT_EQ(pfd.revents, POLLIN);
}

TEST(Eventfd, BadFlagsAreEINVAL) { EXPECT_ERRNO(EINVAL, eventfd(0, 0x10)); }

TEST(Timerfd, OneShotExpires) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, 0));
  ASSERT_TRUE(t.valid());
  struct itimerspec its = {};
  its.it_value.tv_nsec = 10 * 1000000;
  ASSERT_OK(timerfd_settime(t.get(), 0, &its, nullptr));
  uint64_t n = 0;
  EXPECT_RET(8, read(t.get(), &n, 8));
  EXPECT_EQ(n, 1u);
}

TEST(Timerfd, UnarmedNonblockingReadIsEAGAIN) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
  uint64_t n;
  EXPECT_ERRNO(EAGAIN, read(t.get(), &n, 8));
}

TEST(Timerfd, PeriodicCountsExpirations) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, 0));
  struct itimerspec its = {};
  its.it_value.tv_nsec = 1000000;
  its.it_interval.tv_nsec = 1000000;
  ASSERT_OK(timerfd_settime(t.get(), 0, &its, nullptr));
  SleepMs(50);
  uint64_t n = 0;
  EXPECT_RET(8, read(t.get(), &n, 8));
  EXPECT_GE(n, 10u);
}

TEST(Timerfd, GettimeReportsRemaining) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, 0));
  struct itimerspec its = {};
  its.it_value.tv_sec = 100;
  its.it_interval.tv_sec = 7;
  ASSERT_OK(timerfd_settime(t.get(), 0, &its, nullptr));
  struct itimerspec cur;
  ASSERT_OK(timerfd_gettime(t.get(), &cur));
  EXPECT_LE(cur.it_value.tv_sec, 100);
  EXPECT_GE(cur.it_value.tv_sec, 90);
  EXPECT_EQ(cur.it_interval.tv_sec, 7);
  struct itimerspec disarm = {}, old;
  ASSERT_OK(timerfd_settime(t.get(), 0, &disarm, &old));
  EXPECT_GE(old.it_value.tv_sec, 90);
  ASSERT_OK(timerfd_gettime(t.get(), &cur));
  EXPECT_EQ(cur.it_value.tv_sec, 0);
  EXPECT_EQ(cur.it_value.tv_nsec, 0);
}

TEST(Timerfd, AbsoluteTimeInPastFiresImmediately) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
  struct itimerspec its = {};
  its.it_value.tv_sec = 0;
  its.it_value.tv_nsec = 1;
  ASSERT_OK(timerfd_settime(t.get(), TFD_TIMER_ABSTIME, &its, nullptr));
  uint64_t n = 0;
  EXPECT_RET(8, read(t.get(), &n, 8));
  EXPECT_EQ(n, 1u);
}

TEST(Timerfd, InvalidArguments) {
  EXPECT_ERRNO(EINVAL, timerfd_create(12345, 0));
  EXPECT_ERRNO(EINVAL, timerfd_create(CLOCK_MONOTONIC, 0x4));
  Fd t(timerfd_create(CLOCK_MONOTONIC, 0));
  struct itimerspec its = {};
  its.it_value.tv_nsec = 2000000000;
  EXPECT_ERRNO(EINVAL, timerfd_settime(t.get(), 0, &its, nullptr));
  uint32_t small;
  EXPECT_ERRNO(EINVAL, read(t.get(), &small, 4));
}

TEST(Timerfd, PollReadableAfterExpiry) {
  Fd t(timerfd_create(CLOCK_MONOTONIC, 0));
  struct itimerspec its = {};
  its.it_value.tv_nsec = 5 * 1000000;
  ASSERT_OK(timerfd_settime(t.get(), 0, &its, nullptr));
  struct pollfd pfd = {t.get(), POLLIN, 0};
  EXPECT_RET(1, poll(&pfd, 1, 30000));
}

TEST(Signalfd, ReadsBlockedPendingSignal) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &m, nullptr) == 0);
    int fd = signalfd(-1, &m, SFD_NONBLOCK);
    CHILD_CHECK(fd >= 0);
    struct signalfd_siginfo si;
    CHILD_CHECK(read(fd, &si, sizeof(si)) == -1 && errno == EAGAIN);
    CHILD_CHECK(kill(getpid(), SIGUSR1) == 0);
    CHILD_CHECK(read(fd, &si, sizeof(si)) == sizeof(si));
    CHILD_CHECK(si.ssi_signo == SIGUSR1);
    CHILD_CHECK(si.ssi_pid == (uint32_t)getpid());
    CHILD_CHECK(si.ssi_code == SI_USER);
    // Consumed: no longer pending.
    sigset_t pend;
    sigpending(&pend);
    CHILD_CHECK(!sigismember(&pend, SIGUSR1));
    return 0;
  });
}

TEST(Signalfd, SigqueueValueDelivered) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGRTMIN);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &m, nullptr) == 0);
    int fd = signalfd(-1, &m, 0);
    union sigval v;
    v.sival_int = 4242;
    CHILD_CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
    struct signalfd_siginfo si;
    CHILD_CHECK(read(fd, &si, sizeof(si)) == sizeof(si));
    CHILD_CHECK(si.ssi_int == 4242);
    CHILD_CHECK(si.ssi_code == SI_QUEUE);
    return 0;
  });
}

TEST(Signalfd, UpdateMaskOfExistingFd) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &m, nullptr) == 0);
    sigset_t only1;
    sigemptyset(&only1);
    sigaddset(&only1, SIGUSR1);
    int fd = signalfd(-1, &only1, SFD_NONBLOCK);
    kill(getpid(), SIGUSR2);
    struct signalfd_siginfo si;
    CHILD_CHECK(read(fd, &si, sizeof(si)) == -1 && errno == EAGAIN);
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    CHILD_CHECK(signalfd(fd, &only2, 0) == fd);
    CHILD_CHECK(read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2);
    return 0;
  });
}

TEST(Signalfd, InvalidArguments) {
  sigset_t m;
  sigemptyset(&m);
  EXPECT_ERRNO(EINVAL, signalfd(-1, &m, 0x1));
  Fd p(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EINVAL, signalfd(p.get(), &m, 0));
  Fd s(signalfd(-1, &m, 0));
  char small[8];
  EXPECT_ERRNO(EINVAL, read(s.get(), small, sizeof(small)));
}

TEST(Signalfd, PollReadableWhenPending) {
  EXPECT_CHILD_OK([] {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, nullptr);
    int fd = signalfd(-1, &m, 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    CHILD_CHECK(poll(&pfd, 1, 0) == 0);
    kill(getpid(), SIGUSR1);
    CHILD_CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN));
    return 0;
  });
}

}  // namespace
