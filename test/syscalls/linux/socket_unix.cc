// AF_UNIX sockets (unix(7)): socketpair(2), stream/dgram/seqpacket
// bind/listen/connect/accept, abstract names, SCM_RIGHTS and
// SCM_CREDENTIALS, shutdown(2), getsockopt(2).
#include <poll.h>
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

}  // namespace
