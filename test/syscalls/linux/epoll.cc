// epoll_create(2), epoll_create1(2), epoll_ctl(2), epoll_wait(2),
// epoll_pwait(2).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "test_util.h"

namespace {

struct Pipe {
  Pipe() {
    int p[2];
    if (pipe2(p, O_NONBLOCK) == 0) {
      r.reset(p[0]);
      w.reset(p[1]);
    }
  }
  Fd r, w;
};

TEST(Epoll, CreateSizeMustBePositive) {
  EXPECT_ERRNO(EINVAL, epoll_create(0));
  Fd e(epoll_create(1));
  EXPECT_TRUE(e.valid());
}

TEST(Epoll, Create1Flags) {
  Fd e(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(e.valid());
  EXPECT_EQ(fcntl(e.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_ERRNO(EINVAL, epoll_create1(1));
}

TEST(Epoll, ReportsReadyFdWithData) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = 0xdeadbeefcafeULL;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  struct epoll_event out[4];
  EXPECT_RET(0, epoll_wait(e.get(), out, 4, 0));
  ASSERT_RET(1, write(p.w.get(), "x", 1));
  ASSERT_RET(1, epoll_wait(e.get(), out, 4, 0));
  EXPECT_EQ(out[0].events, (uint32_t)EPOLLIN);
  EXPECT_EQ(out[0].data.u64, 0xdeadbeefcafeULL);
}

TEST(Epoll, AddTwiceIsEEXIST) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  EXPECT_ERRNO(EEXIST, epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
}

TEST(Epoll, ModOrDelUnregisteredIsENOENT) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  EXPECT_ERRNO(ENOENT, epoll_ctl(e.get(), EPOLL_CTL_MOD, p.r.get(), &ev));
  EXPECT_ERRNO(ENOENT, epoll_ctl(e.get(), EPOLL_CTL_DEL, p.r.get(), &ev));
}

TEST(Epoll, RegularFileIsEPERM) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_CREAT | O_RDWR, 0644));
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EPERM, epoll_ctl(e.get(), EPOLL_CTL_ADD, f.get(), &ev));
}

TEST(Epoll, AddSelfIsEINVAL) {
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  EXPECT_ERRNO(EINVAL, epoll_ctl(e.get(), EPOLL_CTL_ADD, e.get(), &ev));
}

TEST(Epoll, NonEpollFdIsEINVAL) {
  Pipe p;
  struct epoll_event ev = {};
  EXPECT_ERRNO(EINVAL, epoll_ctl(p.r.get(), EPOLL_CTL_ADD, p.w.get(), &ev));
  struct epoll_event out;
  EXPECT_ERRNO(EINVAL, epoll_wait(p.r.get(), &out, 1, 0));
}

TEST(Epoll, MaxeventsMustBePositive) {
  Fd e(epoll_create1(0));
  struct epoll_event out;
  EXPECT_ERRNO(EINVAL, epoll_wait(e.get(), &out, 0, 0));
}

TEST(Epoll, EdgeTriggeredReportsOnlyNewData) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  ASSERT_RET(1, write(p.w.get(), "a", 1));
  struct epoll_event out[2];
  EXPECT_RET(1, epoll_wait(e.get(), out, 2, 0));
  EXPECT_RET(0, epoll_wait(e.get(), out, 2, 0));  // no new edge
  ASSERT_RET(1, write(p.w.get(), "b", 1));
  EXPECT_RET(1, epoll_wait(e.get(), out, 2, 0));
}

TEST(Epoll, LevelTriggeredRepeats) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  ASSERT_RET(1, write(p.w.get(), "a", 1));
  struct epoll_event out[2];
  EXPECT_RET(1, epoll_wait(e.get(), out, 2, 0));
  EXPECT_RET(1, epoll_wait(e.get(), out, 2, 0));
}

TEST(Epoll, OneshotDisablesAfterEvent) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  ASSERT_RET(1, write(p.w.get(), "a", 1));
  struct epoll_event out[2];
  EXPECT_RET(1, epoll_wait(e.get(), out, 2, 0));
  EXPECT_RET(0, epoll_wait(e.get(), out, 2, 0));
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_MOD, p.r.get(), &ev));
  EXPECT_RET(1, epoll_wait(e.get(), out, 2, 0));
}

TEST(Epoll, DelStopsReporting) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  ASSERT_RET(1, write(p.w.get(), "a", 1));
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_DEL, p.r.get(), nullptr));
  struct epoll_event out[2];
  EXPECT_RET(0, epoll_wait(e.get(), out, 2, 0));
}

TEST(Epoll, ClosingLastReferenceRemovesRegistration) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  ASSERT_RET(1, write(p.w.get(), "a", 1));
  p.r.reset();
  struct epoll_event out[2];
  EXPECT_RET(0, epoll_wait(e.get(), out, 2, 0));
}

TEST(Epoll, HupReportedEvenIfNotRequested) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = 0;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  p.w.reset();
  struct epoll_event out[2];
  ASSERT_RET(1, epoll_wait(e.get(), out, 2, 0));
  EXPECT_TRUE(out[0].events & EPOLLHUP);
}

TEST(Epoll, WaitTimesOut) {
  Fd e(epoll_create1(0));
  struct epoll_event out;
  int64_t start = NowNs();
  EXPECT_RET(0, epoll_wait(e.get(), &out, 1, 50));
  EXPECT_GE(NowNs() - start, 50 * 1000000LL);
}

TEST(Epoll, WaitWakesOnEventfd) {
  Fd ev_fd(eventfd(0, 0));
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = ev_fd.get();
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, ev_fd.get(), &ev));
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    uint64_t one = 1;
    write(ev_fd.get(), &one, 8);
    _exit(0);
  }
  struct epoll_event out;
  EXPECT_RET(1, epoll_wait(e.get(), &out, 1, 30000));
  EXPECT_EQ(out.data.fd, ev_fd.get());
  waitpid(pid, nullptr, 0);
}

TEST(Epoll, PwaitInterruptedByUnblockedSignal) {
  EXPECT_CHILD_OK([] {
    int e = epoll_create1(0);
    CHILD_CHECK(InstallHandler(SIGUSR1, NoopHandler) == 0);
    sigset_t block, empty;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigemptyset(&empty);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &block, nullptr) == 0);
    kill(getpid(), SIGUSR1);
    struct epoll_event out;
    CHILD_CHECK(epoll_pwait(e, &out, 1, 20000, &empty) == -1 && errno == EINTR);
    return 0;
  });
}

TEST(Epoll, BadEventsPointerIsEFAULT) {
  Pipe p;
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLOUT;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, p.w.get(), &ev));
  EXPECT_ERRNO(EFAULT, epoll_wait(e.get(), (struct epoll_event*)kBadPtr, 1, 0));
}

TEST(Epoll, NestedEpollPropagatesReadiness) {
  Pipe p;
  Fd inner(epoll_create1(0)), outer(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ASSERT_OK(epoll_ctl(inner.get(), EPOLL_CTL_ADD, p.r.get(), &ev));
  ASSERT_OK(epoll_ctl(outer.get(), EPOLL_CTL_ADD, inner.get(), &ev));
  struct epoll_event out;
  EXPECT_RET(0, epoll_wait(outer.get(), &out, 1, 0));
  ASSERT_RET(1, write(p.w.get(), "x", 1));
  EXPECT_RET(1, epoll_wait(outer.get(), &out, 1, 0));
}

// One epoll instance over an eventfd, a pipe and unix stream and
// datagram sockets: each registration reports its own events under its
// own data, including a peer's half close (EPOLLRDHUP) and a pipe
// writer's close (EPOLLHUP).
TEST(Epoll, EventfdPipeAndUnixSocketsInOneInstance) {
  Fd efd(eventfd(0, EFD_NONBLOCK));
  ASSERT_OK(efd.get());
  Pipe p;
  int st[2], dg[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, st));
  ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, dg));
  Fd st0(st[0]), st1(st[1]), dg0(dg[0]), dg1(dg[1]);
  Fd e(epoll_create1(EPOLL_CLOEXEC));
  ASSERT_OK(e.get());
  struct {
    int fd;
    uint32_t events;
  } regs[] = {{efd.get(), EPOLLIN}, {p.r.get(), EPOLLIN}, {st0.get(), EPOLLIN | EPOLLRDHUP},
              {dg0.get(), EPOLLIN}};
  for (uint64_t i = 0; i < 4; i++) {
    struct epoll_event ev = {};
    ev.events = regs[i].events;
    ev.data.u64 = 100 + i;
    ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, regs[i].fd, &ev));
  }
  // ready returns (data, events) pairs, sorted by data.
  auto ready = [&](int timeout_ms) {
    struct epoll_event out[8];
    int n = epoll_wait(e.get(), out, 8, timeout_ms);
    std::vector<std::pair<uint64_t, uint32_t>> v;
    for (int i = 0; i < n; i++) {
      uint64_t data = out[i].data.u64;
      uint32_t events = out[i].events;
      v.push_back({data, events});
    }
    std::sort(v.begin(), v.end());
    return v;
  };
  using R = std::vector<std::pair<uint64_t, uint32_t>>;
  EXPECT_EQ(ready(0), R{});

  uint64_t one = 1;
  ASSERT_RET(8, write(efd.get(), &one, 8));
  ASSERT_RET(1, send(dg1.get(), "d", 1, 0));
  EXPECT_EQ(ready(0), (R{{100, EPOLLIN}, {103, EPOLLIN}}));
  uint64_t got;
  char c;
  ASSERT_RET(8, read(efd.get(), &got, 8));
  ASSERT_RET(1, recv(dg0.get(), &c, 1, 0));

  // Data from another process wakes a sleeping epoll_wait.
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    _exit(write(p.w.get(), "p", 1) == 1 ? 0 : 1);
  }
  EXPECT_EQ(ready(30000), (R{{101, EPOLLIN}}));
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 0));
  ASSERT_RET(1, read(p.r.get(), &c, 1));

  ASSERT_OK(shutdown(st1.get(), SHUT_WR));
  p.w.reset();
  EXPECT_EQ(ready(0), (R{{101, EPOLLHUP}, {102, EPOLLIN | EPOLLRDHUP}}));
}

// Edge-triggered on a unix stream socket: each arrival of data is one
// event, however much is left unread.
TEST(Epoll, EdgeTriggeredUnixSocket) {
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
  Fd a(sv[0]), b(sv[1]);
  Fd e(epoll_create1(0));
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_OK(epoll_ctl(e.get(), EPOLL_CTL_ADD, a.get(), &ev));
  struct epoll_event out;
  ASSERT_RET(2, send(b.get(), "xy", 2, 0));
  EXPECT_RET(1, epoll_wait(e.get(), &out, 1, 0));
  EXPECT_RET(0, epoll_wait(e.get(), &out, 1, 0));
  char c;
  ASSERT_RET(1, recv(a.get(), &c, 1, 0));
  EXPECT_RET(0, epoll_wait(e.get(), &out, 1, 0));
  ASSERT_RET(1, send(b.get(), "z", 1, 0));
  EXPECT_RET(1, epoll_wait(e.get(), &out, 1, 0));
  EXPECT_EQ(out.events, (uint32_t)EPOLLIN);
}

}  // namespace
