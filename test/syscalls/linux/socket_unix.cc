// AF_UNIX sockets (unix(7)): socketpair(2), stream/dgram/seqpacket
// bind/listen/connect/accept, abstract names, SCM_RIGHTS and
// SCM_CREDENTIALS, shutdown(2), getsockopt(2).
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include <thread>
#include <sys/socket.h>
#include <sys/un.h>

#include "test_util.h"

namespace {

struct Pair {
  explicit Pair(int type) {
    int sv[2];
    if (socketpair(AF_UNIX, type, 0, sv) == 0) {
      a.reset(sv[0]);
      b.reset(sv[1]);
    }
  }
  Fd a, b;
};

sockaddr_un Addr(const std::string& path, socklen_t* len) {
  sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path.data(), path.size());
  *len = offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '\0' ? 0 : 1);
  return sa;
}

TEST(UnixSocket, SocketpairStreamBidirectional) {
  Pair p(SOCK_STREAM);
  ASSERT_TRUE(p.a.valid());
  ASSERT_RET(3, write(p.a.get(), "abc", 3));
  ASSERT_RET(2, write(p.b.get(), "xy", 2));
  char buf[8];
  EXPECT_RET(3, read(p.b.get(), buf, 8));
  EXPECT_RET(2, read(p.a.get(), buf, 8));
}

TEST(UnixSocket, StreamMergesWrites) {
  Pair p(SOCK_STREAM);
  ASSERT_RET(2, write(p.a.get(), "ab", 2));
  ASSERT_RET(2, write(p.a.get(), "cd", 2));
  SleepMs(10);
  char buf[8];
  EXPECT_RET(4, recv(p.b.get(), buf, 8, 0));
}

TEST(UnixSocket, DgramPreservesBoundariesAndTruncates) {
  Pair p(SOCK_DGRAM);
  ASSERT_RET(5, send(p.a.get(), "hello", 5, 0));
  ASSERT_RET(3, send(p.a.get(), "abc", 3, 0));
  char buf[3];
  struct iovec iov = {buf, 3};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  EXPECT_RET(3, recvmsg(p.b.get(), &mh, 0));
  EXPECT_TRUE(mh.msg_flags & MSG_TRUNC);
  char big[16];
  EXPECT_RET(3, recv(p.b.get(), big, sizeof(big), 0));
  EXPECT_EQ(std::string(big, 3), "abc");
}

TEST(UnixSocket, DgramMsgTruncReturnsRealLength) {
  Pair p(SOCK_DGRAM);
  ASSERT_RET(10, send(p.a.get(), "0123456789", 10, 0));
  char buf[2];
  EXPECT_RET(10, recv(p.b.get(), buf, sizeof(buf), MSG_TRUNC));
}

TEST(UnixSocket, SeqpacketBoundariesAndEof) {
  Pair p(SOCK_SEQPACKET);
  ASSERT_RET(4, send(p.a.get(), "rec1", 4, 0));
  ASSERT_RET(2, send(p.a.get(), "r2", 2, 0));
  char buf[16];
  EXPECT_RET(4, recv(p.b.get(), buf, sizeof(buf), 0));
  EXPECT_RET(2, recv(p.b.get(), buf, sizeof(buf), 0));
  p.a.reset();
  EXPECT_RET(0, recv(p.b.get(), buf, sizeof(buf), 0));
}

TEST(UnixSocket, PeekLeavesData) {
  Pair p(SOCK_STREAM);
  ASSERT_RET(3, write(p.a.get(), "pek", 3));
  char buf[3];
  EXPECT_RET(3, recv(p.b.get(), buf, 3, MSG_PEEK));
  EXPECT_RET(3, recv(p.b.get(), buf, 3, 0));
  EXPECT_EQ(std::string(buf, 3), "pek");
}

TEST(UnixSocket, DontwaitOnEmptyIsEAGAIN) {
  Pair p(SOCK_STREAM);
  char c;
  EXPECT_ERRNO(EAGAIN, recv(p.b.get(), &c, 1, MSG_DONTWAIT));
}

TEST(UnixSocket, ShutdownWriteGivesPeerEof) {
  Pair p(SOCK_STREAM);
  ASSERT_OK(shutdown(p.a.get(), SHUT_WR));
  char c;
  EXPECT_RET(0, read(p.b.get(), &c, 1));
  // Writing after SHUT_WR is EPIPE (SIGPIPE suppressed by MSG_NOSIGNAL).
  EXPECT_ERRNO(EPIPE, send(p.a.get(), "x", 1, MSG_NOSIGNAL));
  // The other direction still works.
  ASSERT_RET(1, write(p.b.get(), "y", 1));
  EXPECT_RET(1, read(p.a.get(), &c, 1));
  EXPECT_ERRNO(EINVAL, shutdown(p.a.get(), 42));
}

TEST(UnixSocket, WriteToClosedPeerIsEPIPE) {
  Pair p(SOCK_STREAM);
  p.b.reset();
  EXPECT_ERRNO(EPIPE, send(p.a.get(), "x", 1, MSG_NOSIGNAL));
}

TEST(UnixSocket, BindListenConnectAccept) {
  TempDir d;
  socklen_t len;
  sockaddr_un sa = Addr(d.Sub("sock"), &len);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, len));
  ASSERT_OK(listen(srv.get(), 5));
  struct stat st;
  ASSERT_OK(stat(d.Sub("sock").c_str(), &st));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  Fd cli(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), (sockaddr*)&sa, len));
  Fd acc(accept(srv.get(), nullptr, nullptr));
  ASSERT_TRUE(acc.valid());
  ASSERT_RET(4, write(cli.get(), "ping", 4));
  char buf[4];
  EXPECT_RET(4, read(acc.get(), buf, 4));
}

TEST(UnixSocket, BindExistingPathIsEADDRINUSE) {
  TempDir d;
  socklen_t len;
  sockaddr_un sa = Addr(d.Sub("sock"), &len);
  Fd a(socket(AF_UNIX, SOCK_STREAM, 0)), b(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(a.get(), (sockaddr*)&sa, len));
  EXPECT_ERRNO(EADDRINUSE, bind(b.get(), (sockaddr*)&sa, len));
  // Binding an already-bound socket to another name is EINVAL.
  socklen_t len2;
  sockaddr_un other = Addr(d.Sub("other"), &len2);
  EXPECT_ERRNO(EINVAL, bind(a.get(), (sockaddr*)&other, len2));
}

TEST(UnixSocket, ConnectErrors) {
  TempDir d;
  socklen_t len;
  sockaddr_un sa = Addr(d.Sub("none"), &len);
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(ENOENT, connect(c.get(), (sockaddr*)&sa, len));
  // Bound but not listening.
  sockaddr_un sb = Addr(d.Sub("bound"), &len);
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(s.get(), (sockaddr*)&sb, len));
  EXPECT_ERRNO(ECONNREFUSED, connect(c.get(), (sockaddr*)&sb, len));
  ASSERT_TRUE(WriteFile(d.Sub("file"), ""));
  sockaddr_un sf = Addr(d.Sub("file"), &len);
  EXPECT_ERRNO(ECONNREFUSED, connect(c.get(), (sockaddr*)&sf, len));
}

TEST(UnixSocket, AbstractNamespace) {
  std::string name = std::string("\0carapace-test-", 15) + std::to_string(getpid());
  socklen_t len;
  sockaddr_un sa = Addr(name, &len);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, len));
  ASSERT_OK(listen(srv.get(), 1));
  sockaddr_un got = {};
  socklen_t glen = sizeof(got);
  ASSERT_OK(getsockname(srv.get(), (sockaddr*)&got, &glen));
  EXPECT_EQ(glen, len);
  EXPECT_EQ(memcmp(got.sun_path, name.data(), name.size()), 0);
  Fd cli(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_OK(connect(cli.get(), (sockaddr*)&sa, len));
}

TEST(UnixSocket, AutobindOnEmptyAddress) {
  Fd s(socket(AF_UNIX, SOCK_DGRAM, 0));
  sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  ASSERT_OK(bind(s.get(), (sockaddr*)&sa, sizeof(sa_family_t)));
  sockaddr_un got = {};
  socklen_t len = sizeof(got);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&got, &len));
  // An abstract name of 5 hex digits.
  EXPECT_EQ(len, offsetof(sockaddr_un, sun_path) + 6);
  EXPECT_EQ(got.sun_path[0], '\0');
}

TEST(UnixSocket, DgramSendtoBoundSocket) {
  TempDir d;
  socklen_t len;
  sockaddr_un sa = Addr(d.Sub("dg"), &len);
  Fd rcv(socket(AF_UNIX, SOCK_DGRAM, 0)), snd(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_OK(bind(rcv.get(), (sockaddr*)&sa, len));
  ASSERT_RET(3, sendto(snd.get(), "dgm", 3, 0, (sockaddr*)&sa, len));
  char buf[8];
  sockaddr_un from = {};
  socklen_t flen = sizeof(from);
  EXPECT_RET(3, recvfrom(rcv.get(), buf, sizeof(buf), 0, (sockaddr*)&from, &flen));
  // An unbound sender has no address: Linux reports a zero length.
  EXPECT_EQ(flen, 0u);
  EXPECT_EQ(std::string(buf, 3), "dgm");
}

TEST(UnixSocket, AcceptNonblockingEmptyIsEAGAIN) {
  TempDir d;
  socklen_t len;
  sockaddr_un sa = Addr(d.Sub("s"), &len);
  Fd srv(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, len));
  ASSERT_OK(listen(srv.get(), 1));
  EXPECT_ERRNO(EAGAIN, accept(srv.get(), nullptr, nullptr));
  Fd dg(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_ERRNO(EOPNOTSUPP, listen(dg.get(), 1));
}

TEST(UnixSocket, Accept4Flags) {
  TempDir d;
  socklen_t len;
  sockaddr_un sa = Addr(d.Sub("s"), &len);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, len));
  ASSERT_OK(listen(srv.get(), 1));
  Fd cli(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), (sockaddr*)&sa, len));
  Fd acc(accept4(srv.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  ASSERT_TRUE(acc.valid());
  EXPECT_EQ(fcntl(acc.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_TRUE(fcntl(acc.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_ERRNO(EINVAL, accept4(srv.get(), nullptr, nullptr, 0x1));
}

TEST(UnixSocket, ScmRightsPassesFd) {
  Pair p(SOCK_STREAM);
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "passed"));
  Fd f(open(d.Sub("f").c_str(), O_RDONLY));
  char data = 'x';
  struct iovec iov = {&data, 1};
  alignas(struct cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof(ctrl);
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int fdv = f.get();
  memcpy(CMSG_DATA(c), &fdv, sizeof(int));
  ASSERT_RET(1, sendmsg(p.a.get(), &mh, 0));
  f.reset();  // the in-flight reference keeps the file open

  char rdata;
  struct iovec riov = {&rdata, 1};
  alignas(struct cmsghdr) char rctrl[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr rmh = {};
  rmh.msg_iov = &riov;
  rmh.msg_iovlen = 1;
  rmh.msg_control = rctrl;
  rmh.msg_controllen = sizeof(rctrl);
  ASSERT_RET(1, recvmsg(p.b.get(), &rmh, MSG_CMSG_CLOEXEC));
  struct cmsghdr* rc = CMSG_FIRSTHDR(&rmh);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->cmsg_type, SCM_RIGHTS);
  int got;
  memcpy(&got, CMSG_DATA(rc), sizeof(int));
  Fd g(got);
  EXPECT_EQ(fcntl(g.get(), F_GETFD), FD_CLOEXEC);
  char buf[6];
  EXPECT_RET(6, pread(g.get(), buf, 6, 0));
  EXPECT_EQ(std::string(buf, 6), "passed");
}

TEST(UnixSocket, ScmRightsTruncatedControlSetsCtrunc) {
  Pair p(SOCK_DGRAM);
  Fd f1(open("/dev/null", O_RDONLY)), f2(open("/dev/null", O_RDONLY)), f3(open("/dev/null", O_RDONLY));
  char data = 'x';
  struct iovec iov = {&data, 1};
  alignas(struct cmsghdr) char ctrl[CMSG_SPACE(3 * sizeof(int))] = {};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof(ctrl);
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(3 * sizeof(int));
  int fds[3] = {f1.get(), f2.get(), f3.get()};
  memcpy(CMSG_DATA(c), fds, sizeof(fds));
  ASSERT_RET(1, sendmsg(p.a.get(), &mh, 0));
  char rdata;
  struct iovec riov = {&rdata, 1};
  alignas(struct cmsghdr) char rctrl[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr rmh = {};
  rmh.msg_iov = &riov;
  rmh.msg_iovlen = 1;
  rmh.msg_control = rctrl;
  rmh.msg_controllen = sizeof(rctrl);
  ASSERT_RET(1, recvmsg(p.b.get(), &rmh, 0));
  EXPECT_TRUE(rmh.msg_flags & MSG_CTRUNC);
  struct cmsghdr* rc = CMSG_FIRSTHDR(&rmh);
  // Only the descriptors that fit were installed; close them.
  if (rc != nullptr && rc->cmsg_type == SCM_RIGHTS) {
    size_t n = (rc->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    EXPECT_LT(n, 3u);
    for (size_t i = 0; i < n; i++) {
      int got;
      memcpy(&got, CMSG_DATA(rc) + i * sizeof(int), sizeof(int));
      close(got);
    }
  }
}

TEST(UnixSocket, ScmRightsBadFdIsEBADF) {
  Pair p(SOCK_STREAM);
  char data = 'x';
  struct iovec iov = {&data, 1};
  alignas(struct cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof(ctrl);
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int bad = 99999;
  memcpy(CMSG_DATA(c), &bad, sizeof(int));
  EXPECT_ERRNO(EBADF, sendmsg(p.a.get(), &mh, 0));
}

TEST(UnixSocket, PeerCredentials) {
  Pair p(SOCK_STREAM);
  struct ucred cr = {};
  socklen_t len = sizeof(cr);
  ASSERT_OK(getsockopt(p.a.get(), SOL_SOCKET, SO_PEERCRED, &cr, &len));
  EXPECT_EQ(cr.pid, getpid());
  EXPECT_EQ(cr.uid, geteuid());
  EXPECT_EQ(cr.gid, getegid());
}

TEST(UnixSocket, ScmCredentialsWithPasscred) {
  Pair p(SOCK_DGRAM);
  int one = 1;
  ASSERT_OK(setsockopt(p.b.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)));
  ASSERT_RET(1, send(p.a.get(), "c", 1, 0));
  char data;
  struct iovec iov = {&data, 1};
  alignas(struct cmsghdr) char ctrl[CMSG_SPACE(sizeof(struct ucred))] = {};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof(ctrl);
  ASSERT_RET(1, recvmsg(p.b.get(), &mh, 0));
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cmsg_type, SCM_CREDENTIALS);
  struct ucred cr;
  memcpy(&cr, CMSG_DATA(c), sizeof(cr));
  EXPECT_EQ(cr.pid, getpid());
}

TEST(UnixSocket, SockoptTypeAndDomain) {
  Fd s(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  int v = 0;
  socklen_t len = sizeof(v);
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_TYPE, &v, &len));
  EXPECT_EQ(v, SOCK_SEQPACKET);
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_DOMAIN, &v, &len));
  EXPECT_EQ(v, AF_UNIX);
  EXPECT_ERRNO(ENOPROTOOPT, getsockopt(s.get(), SOL_SOCKET, 9999, &v, &len));
}

TEST(UnixSocket, SocketErrors) {
  EXPECT_ERRNO(EAFNOSUPPORT, socket(12345, SOCK_STREAM, 0));
  EXPECT_ERRNO(EINVAL, socket(AF_UNIX, 12345, 0));
  EXPECT_ERRNO(EPROTONOSUPPORT, socket(AF_UNIX, SOCK_STREAM, 7));
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(ENOTSOCK, listen(f.get(), 1));
  char c;
  EXPECT_ERRNO(ENOTSOCK, recv(f.get(), &c, 1, 0));
}

TEST(UnixSocket, GetpeernameUnconnectedIsENOTCONN) {
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un sa;
  socklen_t len = sizeof(sa);
  EXPECT_ERRNO(ENOTCONN, getpeername(s.get(), (sockaddr*)&sa, &len));
  EXPECT_ERRNO(ENOTCONN, send(s.get(), "x", 1, MSG_NOSIGNAL));
}

TEST(UnixSocket, PollHupAfterPeerClose) {
  Pair p(SOCK_STREAM);
  p.b.reset();
  struct pollfd pfd = {p.a.get(), POLLIN, 0};
  ASSERT_RET(1, poll(&pfd, 1, 0));
  EXPECT_TRUE(pfd.revents & (POLLHUP | POLLIN));
}

TEST(UnixSocket, SndbufFullNonblockingIsEAGAIN) {
  Pair p(SOCK_STREAM);
  ASSERT_OK(fcntl(p.a.get(), F_SETFL, O_NONBLOCK));
  std::string chunk(65536, 'z');
  size_t total = 0;
  for (;;) {
    ssize_t n = send(p.a.get(), chunk.data(), chunk.size(), 0);
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    total += n;
    ASSERT_LT(total, 256u << 20);
  }
  EXPECT_GT(total, 0u);
}

TEST(UnixSocket, RecvTimeoutIsEAGAIN) {
  Pair p(SOCK_STREAM);
  struct timeval tv = {0, 50000};
  ASSERT_OK(setsockopt(p.b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
  char c;
  int64_t start = NowNs();
  EXPECT_ERRNO(EAGAIN, recv(p.b.get(), &c, 1, 0));
  EXPECT_GE(NowNs() - start, 40000000);
  struct timeval bad = {0, 1000000};
  EXPECT_ERRNO(EDOM, setsockopt(p.b.get(), SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof(bad)));
}

TEST(UnixSocket, SignalInterruptsTimedRecvEvenWithRestart) {
  // socket(7): with a timeout set, an interrupted receive fails with
  // EINTR whatever SA_RESTART says.
  Pair p(SOCK_STREAM);
  struct timeval tv = {5, 0};
  ASSERT_OK(setsockopt(p.b.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
  ASSERT_OK(InstallHandler(SIGALRM, NoopHandler, SA_RESTART));
  struct itimerval it = {{0, 0}, {0, 50000}};
  ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
  char c;
  EXPECT_ERRNO(EINTR, recv(p.b.get(), &c, 1, 0));
  ASSERT_OK(InstallHandler(SIGALRM, SIG_DFL));
}

TEST(UnixSocket, SignalInterruptsRecvWithoutRestart) {
  Pair p(SOCK_STREAM);
  ASSERT_OK(InstallHandler(SIGALRM, NoopHandler, 0));
  struct itimerval it = {{0, 0}, {0, 50000}};
  ASSERT_OK(setitimer(ITIMER_REAL, &it, nullptr));
  char c;
  EXPECT_ERRNO(EINTR, recv(p.b.get(), &c, 1, 0));
  ASSERT_OK(InstallHandler(SIGALRM, SIG_DFL));
}

TEST(UnixSocket, WaitallGathersLaterWrites) {
  Pair p(SOCK_STREAM);
  std::thread writer([&] {
    SleepMs(20);
    write(p.a.get(), "abc", 3);
    SleepMs(20);
    write(p.a.get(), "def", 3);
  });
  char buf[6];
  EXPECT_RET(6, recv(p.b.get(), buf, 6, MSG_WAITALL));
  writer.join();
  EXPECT_EQ(std::string(buf, 6), "abcdef");
}

TEST(UnixSocket, RdhupAfterPeerShutdownWrite) {
  Pair p(SOCK_STREAM);
  ASSERT_OK(shutdown(p.a.get(), SHUT_WR));
  struct pollfd pfd = {p.b.get(), POLLIN | POLLRDHUP, 0};
  ASSERT_RET(1, poll(&pfd, 1, 0));
  EXPECT_TRUE(pfd.revents & POLLRDHUP);
  EXPECT_FALSE(pfd.revents & POLLHUP);
  char c;
  EXPECT_RET(0, read(p.b.get(), &c, 1));
}

TEST(UnixSocket, ScmRightsCmsgCloexec) {
  Pair p(SOCK_DGRAM);
  int pfd[2];
  ASSERT_OK(pipe(pfd));
  Fd r(pfd[0]), w(pfd[1]);
  char cbuf[CMSG_SPACE(sizeof(int))] = {};
  struct iovec iov = {const_cast<char*>("x"), 1};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &pfd[1], sizeof(int));
  ASSERT_RET(1, sendmsg(p.a.get(), &mh, 0));
  char rbuf[CMSG_SPACE(sizeof(int))] = {};
  char c;
  struct iovec riov = {&c, 1};
  struct msghdr rh = {};
  rh.msg_iov = &riov;
  rh.msg_iovlen = 1;
  rh.msg_control = rbuf;
  rh.msg_controllen = sizeof(rbuf);
  ASSERT_RET(1, recvmsg(p.b.get(), &rh, MSG_CMSG_CLOEXEC));
  struct cmsghdr* got = CMSG_FIRSTHDR(&rh);
  ASSERT_NE(got, nullptr);
  int fd;
  memcpy(&fd, CMSG_DATA(got), sizeof(int));
  Fd received(fd);
  EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
  ASSERT_RET(2, write(fd, "ok", 2));
  char out[2];
  EXPECT_RET(2, read(r.get(), out, 2));
}

TEST(UnixSocket, SendmmsgRecvmmsg) {
  Pair p(SOCK_DGRAM);
  struct iovec iov[2] = {{const_cast<char*>("one"), 3}, {const_cast<char*>("four"), 4}};
  struct mmsghdr out[2] = {};
  for (int i = 0; i < 2; i++) {
    out[i].msg_hdr.msg_iov = &iov[i];
    out[i].msg_hdr.msg_iovlen = 1;
  }
  ASSERT_RET(2, sendmmsg(p.a.get(), out, 2, 0));
  EXPECT_EQ(out[1].msg_len, 4u);
  char bufs[3][8];
  struct iovec riov[3];
  struct mmsghdr in[3] = {};
  for (int i = 0; i < 3; i++) {
    riov[i] = {bufs[i], 8};
    in[i].msg_hdr.msg_iov = &riov[i];
    in[i].msg_hdr.msg_iovlen = 1;
  }
  ASSERT_RET(2, recvmmsg(p.b.get(), in, 3, MSG_WAITFORONE, nullptr));
  EXPECT_EQ(in[0].msg_len, 3u);
  EXPECT_EQ(in[1].msg_len, 4u);
}

TEST(UnixSocket, FionreadAndOutq) {
  Pair p(SOCK_STREAM);
  ASSERT_RET(5, write(p.a.get(), "hello", 5));
  int n = -1;
  ASSERT_OK(ioctl(p.b.get(), FIONREAD, &n));
  EXPECT_EQ(n, 5);
  Pair d(SOCK_DGRAM);
  ASSERT_RET(3, send(d.a.get(), "abc", 3, 0));
  ASSERT_RET(7, send(d.a.get(), "defghij", 7, 0));
  ASSERT_OK(ioctl(d.b.get(), FIONREAD, &n));
  EXPECT_EQ(n, 3);
}

TEST(UnixSocket, FullBacklogBlockingConnectTimesOut) {
  TempDir dir;
  socklen_t len;
  sockaddr_un sa = Addr(dir.path() + "/s", &len);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, len));
  ASSERT_OK(listen(srv.get(), 0));
  Fd c1(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(connect(c1.get(), (sockaddr*)&sa, len));
  Fd c2(socket(AF_UNIX, SOCK_STREAM, 0));
  struct timeval tv = {0, 50000};
  ASSERT_OK(setsockopt(c2.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
  EXPECT_ERRNO(EAGAIN, connect(c2.get(), (sockaddr*)&sa, len));
  // Once the queue has room, a blocking connect gets in.
  std::thread acceptor([&] {
    SleepMs(20);
    close(accept(srv.get(), nullptr, nullptr));
  });
  Fd c3(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_OK(connect(c3.get(), (sockaddr*)&sa, len));
  acceptor.join();
}

TEST(UnixSocket, StreamStateErrors) {
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  char c;
  EXPECT_ERRNO(EINVAL, recv(s.get(), &c, 1, MSG_DONTWAIT));
  EXPECT_ERRNO(EINVAL, listen(s.get(), 1));  // unbound
  EXPECT_ERRNO(EINVAL, accept(s.get(), nullptr, nullptr));
  EXPECT_OK(shutdown(s.get(), SHUT_RDWR));  // Linux: no ENOTCONN
  struct ucred cr = {};
  socklen_t len = sizeof(cr);
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_PEERCRED, &cr, &len));
  EXPECT_EQ(cr.pid, 0);
  EXPECT_EQ(cr.uid, (uid_t)-1);
  EXPECT_EQ(cr.gid, (gid_t)-1);
  Pair p(SOCK_STREAM);
  socklen_t alen;
  sockaddr_un sa = Addr("\0nowhere", &alen);
  EXPECT_ERRNO(EISCONN, sendto(p.a.get(), "x", 1, 0, (sockaddr*)&sa, alen));
  EXPECT_ERRNO(EOPNOTSUPP, listen(Fd(socket(AF_UNIX, SOCK_DGRAM, 0)).get(), 1));
}

TEST(UnixSocket, PathNameLengthAndAcceptPeerAddress) {
  TempDir dir;
  socklen_t len;
  std::string path = dir.path() + "/srv";
  sockaddr_un sa = Addr(path, &len);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, len));
  ASSERT_OK(listen(srv.get(), 4));
  sockaddr_un got = {};
  socklen_t glen = sizeof(got);
  ASSERT_OK(getsockname(srv.get(), (sockaddr*)&got, &glen));
  EXPECT_EQ(glen, offsetof(sockaddr_un, sun_path) + path.size() + 1);
  EXPECT_EQ(std::string(got.sun_path), path);
  // A bound client's name is what accept reports.
  socklen_t clen;
  sockaddr_un ca = Addr(dir.path() + "/cli", &clen);
  Fd cl(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(bind(cl.get(), (sockaddr*)&ca, clen));
  ASSERT_OK(connect(cl.get(), (sockaddr*)&sa, len));
  sockaddr_un peer = {};
  socklen_t plen = sizeof(peer);
  Fd conn(accept(srv.get(), (sockaddr*)&peer, &plen));
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(plen, clen);
  EXPECT_EQ(std::string(peer.sun_path), dir.path() + "/cli");
  // A short buffer is filled and the full length reported.
  char small[4];
  socklen_t slen = sizeof(small);
  ASSERT_OK(getpeername(cl.get(), (sockaddr*)small, &slen));
  EXPECT_EQ(slen, len);
}

TEST(UnixSocket, CloseWithUnreadDataIsECONNRESET) {
  Pair p(SOCK_STREAM);
  ASSERT_RET(3, write(p.a.get(), "abc", 3));
  p.b.reset();
  char c;
  EXPECT_ERRNO(ECONNRESET, recv(p.a.get(), &c, 1, 0));
  EXPECT_RET(0, recv(p.a.get(), &c, 1, 0));
}

TEST(UnixSocket, DgramConnectedElsewhereIsEPERMAndUnspecDisconnects) {
  socklen_t l1, l2;
  sockaddr_un a1 = Addr(std::string("\0dg-one-", 8) + std::to_string(getpid()), &l1);
  sockaddr_un a2 = Addr(std::string("\0dg-two-", 8) + std::to_string(getpid()), &l2);
  Fd s1(socket(AF_UNIX, SOCK_DGRAM, 0)), s2(socket(AF_UNIX, SOCK_DGRAM, 0)), s3(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_OK(bind(s1.get(), (sockaddr*)&a1, l1));
  ASSERT_OK(bind(s2.get(), (sockaddr*)&a2, l2));
  ASSERT_OK(connect(s1.get(), (sockaddr*)&a2, l2));
  EXPECT_ERRNO(EPERM, sendto(s3.get(), "x", 1, 0, (sockaddr*)&a1, l1));
  EXPECT_RET(1, sendto(s2.get(), "y", 1, 0, (sockaddr*)&a1, l1));
  sockaddr unspec = {};
  unspec.sa_family = AF_UNSPEC;
  ASSERT_OK(connect(s1.get(), &unspec, sizeof(unspec)));
  EXPECT_RET(1, sendto(s3.get(), "x", 1, 0, (sockaddr*)&a1, l1));
  EXPECT_ERRNO(ENOTCONN, send(s1.get(), "z", 1, 0));
  // Leaving the old peer dropped what it had sent ("y"); the unbound
  // sender's datagram comes with an empty address.
  sockaddr_un from = {};
  socklen_t flen = sizeof(from);
  char buf[4];
  ASSERT_RET(1, recvfrom(s1.get(), buf, 4, MSG_DONTWAIT, (sockaddr*)&from, &flen));
  EXPECT_EQ(buf[0], 'x');
  EXPECT_EQ(flen, 0u);
  EXPECT_ERRNO(EAGAIN, recv(s1.get(), buf, 4, MSG_DONTWAIT));
}

TEST(UnixSocket, SeqpacketTruncatesAndUnconnectedIsENOTCONN) {
  Pair p(SOCK_SEQPACKET);
  ASSERT_RET(6, send(p.a.get(), "packet", 6, 0));
  char buf[3];
  struct iovec iov = {buf, 3};
  struct msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  EXPECT_RET(3, recvmsg(p.b.get(), &mh, 0));
  EXPECT_TRUE(mh.msg_flags & MSG_TRUNC);
  Fd s(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  EXPECT_ERRNO(ENOTCONN, send(s.get(), "x", 1, MSG_NOSIGNAL));
  EXPECT_ERRNO(ENOTCONN, recv(s.get(), buf, 1, MSG_DONTWAIT));
}

TEST(UnixSocket, OutqCountsUnreadBytes) {
  Pair p(SOCK_STREAM);
  ASSERT_RET(5, write(p.a.get(), "hello", 5));
  int n = -1;
  ASSERT_OK(ioctl(p.a.get(), SIOCOUTQ, &n));
  EXPECT_GE(n, 5);  // Linux counts buffer overhead too
  char buf[5];
  ASSERT_RET(5, read(p.b.get(), buf, 5));
  ASSERT_OK(ioctl(p.a.get(), SIOCOUTQ, &n));
  EXPECT_EQ(n, 0);
}

TEST(UnixSocket, PasscredAutobindsOnConnect) {
  Fd srv(socket(AF_UNIX, SOCK_DGRAM, 0));
  socklen_t l;
  sockaddr_un a = Addr(std::string("\0pc-", 4) + std::to_string(getpid()), &l);
  ASSERT_OK(bind(srv.get(), (sockaddr*)&a, l));
  Fd cl(socket(AF_UNIX, SOCK_DGRAM, 0));
  int one = 1;
  ASSERT_OK(setsockopt(cl.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)));
  ASSERT_OK(connect(cl.get(), (sockaddr*)&a, l));
  sockaddr_un name = {};
  socklen_t nlen = sizeof(name);
  ASSERT_OK(getsockname(cl.get(), (sockaddr*)&name, &nlen));
  EXPECT_EQ(nlen, offsetof(sockaddr_un, sun_path) + 6);
  EXPECT_EQ(name.sun_path[0], '\0');
}

}  // namespace
