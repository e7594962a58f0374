// poll(2), ppoll(2), select(2), pselect(2).
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>

#include <vector>

#include "test_util.h"

namespace {

struct Pipe {
  Pipe() {
    int p[2];
    if (pipe(p) == 0) {
      r.reset(p[0]);
      w.reset(p[1]);
    }
  }
  Fd r, w;
};

TEST(Poll, EmptyPipeNotReadableWritable) {
  Pipe p;
  struct pollfd fds[2] = {{p.r.get(), POLLIN, 0}, {p.w.get(), POLLOUT, 0}};
  EXPECT_RET(1, poll(fds, 2, 0));
  EXPECT_EQ(fds[0].revents, 0);
  EXPECT_EQ(fds[1].revents, POLLOUT);
}

TEST(Poll, ReadableAfterWrite) {
  Pipe p;
  ASSERT_RET(1, write(p.w.get(), "x", 1));
  struct pollfd fd = {p.r.get(), POLLIN, 0};
  EXPECT_RET(1, poll(&fd, 1, 0));
  EXPECT_EQ(fd.revents, POLLIN);
}

TEST(Poll, HangupWhenWriterClosed) {
  Pipe p;
  p.w.reset();
  struct pollfd fd = {p.r.get(), POLLIN, 0};
  EXPECT_RET(1, poll(&fd, 1, 0));
  EXPECT_TRUE(fd.revents & POLLHUP);
}

TEST(Poll, ErrorWhenReaderClosed) {
  Pipe p;
  p.r.reset();
  struct pollfd fd = {p.w.get(), POLLOUT, 0};
  EXPECT_RET(1, poll(&fd, 1, 0));
  EXPECT_TRUE(fd.revents & POLLERR);
}

TEST(Poll, InvalidFdReportsPOLLNVAL) {
  struct pollfd fd = {12345, POLLIN, 0};
  EXPECT_RET(1, poll(&fd, 1, 0));
  EXPECT_EQ(fd.revents, POLLNVAL);
}

TEST(Poll, NegativeFdIsIgnored) {
  struct pollfd fd = {-1, POLLIN, 0x7};
  EXPECT_RET(0, poll(&fd, 1, 0));
  EXPECT_EQ(fd.revents, 0);
}

TEST(Poll, TimeoutElapses) {
  Pipe p;
  struct pollfd fd = {p.r.get(), POLLIN, 0};
  int64_t start = NowNs();
  EXPECT_RET(0, poll(&fd, 1, 50));
  EXPECT_GE(NowNs() - start, 50 * 1000000LL);
}

TEST(Poll, WakesWhenDataArrives) {
  Pipe p;
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    write(p.w.get(), "x", 1);
    _exit(0);
  }
  struct pollfd fd = {p.r.get(), POLLIN, 0};
  EXPECT_RET(1, poll(&fd, 1, 30000));
  EXPECT_EQ(fd.revents, POLLIN);
  waitpid(pid, nullptr, 0);
}

// One poll over three kinds of file: each turns readable on its own as
// data reaches it, and only it.
TEST(Poll, EventfdPipeAndSocketpairReadyIndependently) {
  Fd efd(eventfd(0, EFD_NONBLOCK));
  ASSERT_OK(efd.get());
  Pipe p;
  int sv[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  Fd s0(sv[0]), s1(sv[1]);
  struct pollfd fds[3] = {{efd.get(), POLLIN, 0}, {p.r.get(), POLLIN, 0}, {s0.get(), POLLIN, 0}};
  auto revents = [&] {
    return std::vector<short>{fds[0].revents, fds[1].revents, fds[2].revents};
  };
  EXPECT_RET(0, poll(fds, 3, 0));
  EXPECT_EQ(revents(), (std::vector<short>{0, 0, 0}));

  uint64_t one = 1;
  ASSERT_RET(8, write(efd.get(), &one, 8));
  EXPECT_RET(1, poll(fds, 3, 0));
  EXPECT_EQ(revents(), (std::vector<short>{POLLIN, 0, 0}));

  ASSERT_RET(1, write(p.w.get(), "p", 1));
  EXPECT_RET(2, poll(fds, 3, 0));
  EXPECT_EQ(revents(), (std::vector<short>{POLLIN, POLLIN, 0}));

  // The socket's data comes from another process while poll sleeps.
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    _exit(send(s1.get(), "s", 1, 0) == 1 ? 0 : 1);
  }
  uint64_t got;
  ASSERT_RET(8, read(efd.get(), &got, 8));
  char c;
  ASSERT_RET(1, read(p.r.get(), &c, 1));
  EXPECT_RET(1, poll(fds, 3, 30000));
  EXPECT_EQ(revents(), (std::vector<short>{0, 0, POLLIN}));
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_RET(1, recv(s0.get(), &c, 1, 0));
  EXPECT_EQ(c, 's');
  EXPECT_RET(0, poll(fds, 3, 0));
}

TEST(Poll, BadArrayIsEFAULT) {
  EXPECT_ERRNO(EFAULT, poll((struct pollfd*)kBadPtr, 1, 0));
}

TEST(Poll, TooManyFdsIsEINVAL) {
  EXPECT_ERRNO(EINVAL, poll(nullptr, 1u << 30, 0));
}

TEST(Poll, InterruptedBySignalIsEINTR) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(InstallHandler(SIGALRM, NoopHandler, SA_RESTART) == 0);
    alarm(1);
    // poll is never restarted, even with SA_RESTART.
    CHILD_CHECK(poll(nullptr, 0, 20000) == -1 && errno == EINTR);
    return 0;
  });
}

TEST(Ppoll, TimespecTimeoutAndSigmask) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(InstallHandler(SIGUSR1, NoopHandler) == 0);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &block, nullptr) == 0);
    CHILD_CHECK(kill(getpid(), SIGUSR1) == 0);
    // Blocked signal is pending; ppoll with an empty mask unblocks it.
    sigset_t empty;
    sigemptyset(&empty);
    struct timespec ts = {20, 0};
    CHILD_CHECK(ppoll(nullptr, 0, &ts, &empty) == -1 && errno == EINTR);
    // Old mask restored: SIGUSR1 is blocked again.
    sigset_t cur;
    sigprocmask(SIG_BLOCK, nullptr, &cur);
    CHILD_CHECK(sigismember(&cur, SIGUSR1));
    return 0;
  });
}

TEST(Ppoll, ZeroTimeoutReturnsImmediately) {
  struct timespec ts = {0, 0};
  EXPECT_RET(0, ppoll(nullptr, 0, &ts, nullptr));
}

TEST(Ppoll, InvalidTimespecIsEINVAL) {
  struct timespec ts = {0, 1000000000};
  EXPECT_ERRNO(EINVAL, ppoll(nullptr, 0, &ts, nullptr));
}

TEST(Select, ReadableAndWritableSets) {
  Pipe p;
  ASSERT_RET(1, write(p.w.get(), "x", 1));
  fd_set rs, ws;
  FD_ZERO(&rs);
  FD_ZERO(&ws);
  FD_SET(p.r.get(), &rs);
  FD_SET(p.w.get(), &ws);
  struct timeval tv = {0, 0};
  int maxfd = std::max(p.r.get(), p.w.get()) + 1;
  EXPECT_RET(2, select(maxfd, &rs, &ws, nullptr, &tv));
  EXPECT_TRUE(FD_ISSET(p.r.get(), &rs));
  EXPECT_TRUE(FD_ISSET(p.w.get(), &ws));
}

TEST(Select, ClearsNotReadyFds) {
  Pipe p;
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p.r.get(), &rs);
  struct timeval tv = {0, 1000};
  EXPECT_RET(0, select(p.r.get() + 1, &rs, nullptr, nullptr, &tv));
  EXPECT_FALSE(FD_ISSET(p.r.get(), &rs));
}

TEST(Select, ClosedFdIsEBADF) {
  int fd = dup(0);
  ASSERT_OK(fd);
  close(fd);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(fd, &rs);
  struct timeval tv = {0, 0};
  EXPECT_ERRNO(EBADF, select(fd + 1, &rs, nullptr, nullptr, &tv));
}

TEST(Select, NegativeNfdsIsEINVAL) {
  struct timeval tv = {0, 0};
  EXPECT_ERRNO(EINVAL, select(-1, nullptr, nullptr, nullptr, &tv));
}

TEST(Select, InvalidTimeoutIsEINVAL) {
  struct timeval tv = {0, -1};
  EXPECT_ERRNO(EINVAL, select(0, nullptr, nullptr, nullptr, &tv));
}

TEST(Select, TimeoutUpdatedWithRemainingTime) {
  struct timeval tv = {0, 20000};
  EXPECT_RET(0, select(0, nullptr, nullptr, nullptr, &tv));
  EXPECT_EQ(tv.tv_sec, 0);
  EXPECT_EQ(tv.tv_usec, 0);
}

// select over an eventfd, a pipe and both kinds of unix socket: each
// is reported in the set of what it is ready for, and only then.
TEST(Select, EventfdPipeAndUnixSocketsReadyIndependently) {
  Fd efd(eventfd(0, EFD_NONBLOCK));
  ASSERT_OK(efd.get());
  Pipe p;
  int st[2], dg[2];
  ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, st));
  ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg));
  Fd st0(st[0]), st1(st[1]), dg0(dg[0]), dg1(dg[1]);
  const int readers[] = {efd.get(), p.r.get(), st0.get(), dg0.get()};
  int maxfd = 0;
  for (int fd : readers) maxfd = std::max(maxfd, fd);
  maxfd = std::max({maxfd, p.w.get(), st1.get(), dg1.get()}) + 1;
  // readable returns which of readers select reports readable, within
  // timeout_ms.
  auto readable = [&](int timeout_ms) {
    fd_set rs;
    FD_ZERO(&rs);
    for (int fd : readers) FD_SET(fd, &rs);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    std::vector<bool> out;
    if (select(maxfd, &rs, nullptr, nullptr, &tv) < 0) return out;
    for (int fd : readers) out.push_back(FD_ISSET(fd, &rs));
    return out;
  };
  EXPECT_EQ(readable(0), (std::vector<bool>{false, false, false, false}));

  // The writable ends are all writable at once.
  fd_set ws;
  FD_ZERO(&ws);
  for (int fd : {efd.get(), p.w.get(), st1.get(), dg1.get()}) FD_SET(fd, &ws);
  struct timeval zero = {0, 0};
  EXPECT_RET(4, select(maxfd, nullptr, &ws, nullptr, &zero));

  uint64_t one = 1;
  ASSERT_RET(8, write(efd.get(), &one, 8));
  EXPECT_EQ(readable(0), (std::vector<bool>{true, false, false, false}));
  ASSERT_RET(1, write(p.w.get(), "p", 1));
  ASSERT_RET(1, send(dg1.get(), "d", 1, 0));
  EXPECT_EQ(readable(0), (std::vector<bool>{true, true, false, true}));

  uint64_t got;
  char c;
  ASSERT_RET(8, read(efd.get(), &got, 8));
  ASSERT_RET(1, read(p.r.get(), &c, 1));
  ASSERT_RET(1, recv(dg0.get(), &c, 1, 0));
  // The stream socket's data comes from another process while select
  // sleeps.
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    _exit(send(st1.get(), "s", 1, 0) == 1 ? 0 : 1);
  }
  EXPECT_EQ(readable(30000), (std::vector<bool>{false, false, true, false}));
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 0));
  ASSERT_RET(1, recv(st0.get(), &c, 1, 0));
  // A peer's close makes a stream socket readable (end of file).
  st1.reset();
  EXPECT_EQ(readable(0), (std::vector<bool>{false, false, true, false}));
  EXPECT_RET(0, recv(st0.get(), &c, 1, 0));
}

// A listening unix socket is readable while a connection waits to be
// accepted, for poll and select alike.
TEST(Poll, UnixListenerReadableWithPendingConnection) {
  TempDir d;
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string path = d.Sub("sock");
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  strcpy(addr.sun_path, path.c_str());
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(l.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)));
  ASSERT_OK(listen(l.get(), 4));
  struct pollfd pfd = {l.get(), POLLIN, 0};
  EXPECT_RET(0, poll(&pfd, 1, 0));
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(connect(c.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)));
  EXPECT_RET(1, poll(&pfd, 1, 0));
  EXPECT_EQ(pfd.revents, POLLIN);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(l.get(), &rs);
  struct timeval zero = {0, 0};
  EXPECT_RET(1, select(l.get() + 1, &rs, nullptr, nullptr, &zero));
  Fd a(accept(l.get(), nullptr, nullptr));
  ASSERT_OK(a.get());
  EXPECT_RET(0, poll(&pfd, 1, 0));
}

TEST(Pselect, SigmaskAppliedDuringWait) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(InstallHandler(SIGUSR2, NoopHandler) == 0);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    CHILD_CHECK(sigprocmask(SIG_BLOCK, &block, nullptr) == 0);
    CHILD_CHECK(kill(getpid(), SIGUSR2) == 0);
    sigset_t empty;
    sigemptyset(&empty);
    struct timespec ts = {20, 0};
    CHILD_CHECK(pselect(0, nullptr, nullptr, nullptr, &ts, &empty) == -1 && errno == EINTR);
    // pselect does not modify its timeout.
    CHILD_CHECK(ts.tv_sec == 20 && ts.tv_nsec == 0);
    return 0;
  });
}

}  // namespace
