// AF_INET and AF_INET6 sockets on loopback (ip(7), ipv6(7), tcp(7),
// udp(7)): bind to port 0, listen/connect/accept, data transfer, shutdown,
// socket options, errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "test_util.h"

namespace {

// A loopback address of the family under test, with port 0.
struct Loopback {
  int family;
  sockaddr_storage ss;
  socklen_t len;
  explicit Loopback(int fam) : family(fam), ss{}, len(0) {
    if (fam == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    }
  }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  uint16_t port() const {
    return ntohs(family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  }
};

class InetTest : public ::testing::TestWithParam<int> {
 protected:
  int Family() const { return GetParam(); }
  // Creates a listening TCP socket on loopback and fills addr with its
  // bound address.
  Fd Listener(Loopback* addr, int backlog = 8) {
    Fd s(socket(Family(), SOCK_STREAM, 0));
    if (!s.valid()) return s;
    if (bind(s.get(), addr->sa(), addr->len) != 0) return Fd();
    if (getsockname(s.get(), addr->sa(), &addr->len) != 0) return Fd();
    if (listen(s.get(), backlog) != 0) return Fd();
    return s;
  }
};

TEST_P(InetTest, BindPortZeroAssignsEphemeralPort) {
  Loopback a(Family());
  Fd s(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(bind(s.get(), a.sa(), a.len));
  ASSERT_OK(getsockname(s.get(), a.sa(), &a.len));
  EXPECT_NE(a.port(), 0);
}

TEST_P(InetTest, TcpConnectAcceptTransfer) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  ASSERT_TRUE(srv.valid()) << strerror(errno);
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), a.sa(), a.len));
  Loopback peer(Family());
  Fd acc(accept(srv.get(), peer.sa(), &peer.len));
  ASSERT_TRUE(acc.valid());
  Loopback cli_addr(Family());
  ASSERT_OK(getsockname(cli.get(), cli_addr.sa(), &cli_addr.len));
  EXPECT_EQ(peer.port(), cli_addr.port());
  std::string data = Pattern(200000, 9);
  pid_t pid = fork();
  if (pid == 0) {
    _exit(WriteFull(cli.get(), data.data(), data.size()) == (ssize_t)data.size() ? 0 : 1);
  }
  std::string got(data.size(), '\0');
  EXPECT_RET(data.size(), ReadFull(acc.get(), &got[0], got.size()));
  EXPECT_EQ(got, data);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_P(InetTest, TcpEofAfterClose) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), a.sa(), a.len));
  Fd acc(accept(srv.get(), nullptr, nullptr));
  cli.reset();
  char c;
  EXPECT_RET(0, read(acc.get(), &c, 1));
}

TEST_P(InetTest, TcpShutdownWriteHalfClose) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), a.sa(), a.len));
  Fd acc(accept(srv.get(), nullptr, nullptr));
  ASSERT_OK(shutdown(cli.get(), SHUT_WR));
  char c;
  EXPECT_RET(0, read(acc.get(), &c, 1));
  ASSERT_RET(2, write(acc.get(), "ok", 2));
  char buf[2];
  EXPECT_RET(2, ReadFull(cli.get(), buf, 2));
}

TEST_P(InetTest, ConnectToClosedPortIsECONNREFUSED) {
  Loopback a(Family());
  {
    Fd s = Listener(&a);
    ASSERT_TRUE(s.valid());
  }  // closed: nothing listens on a.port() now
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(cli.get(), a.sa(), a.len));
}

TEST_P(InetTest, BindInUseIsEADDRINUSE) {
  Loopback a(Family());
  Fd s1 = Listener(&a);
  Fd s2(socket(Family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(EADDRINUSE, bind(s2.get(), a.sa(), a.len));
}

TEST_P(InetTest, ReuseaddrAllowsRebindAfterClose) {
  Loopback a(Family());
  int one = 1;
  {
    // Linux lets a new socket bind over a TIME_WAIT one only if both set
    // SO_REUSEADDR (accepted sockets inherit it from the listener).
    Fd srv(socket(Family(), SOCK_STREAM, 0));
    ASSERT_OK(setsockopt(srv.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
    ASSERT_OK(bind(srv.get(), a.sa(), a.len));
    ASSERT_OK(getsockname(srv.get(), a.sa(), &a.len));
    ASSERT_OK(listen(srv.get(), 1));
    Fd cli(socket(Family(), SOCK_STREAM, 0));
    ASSERT_OK(connect(cli.get(), a.sa(), a.len));
    Fd acc(accept(srv.get(), nullptr, nullptr));
    acc.reset();  // server closes first: its side goes to TIME_WAIT
  }
  Fd s(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
  EXPECT_OK(bind(s.get(), a.sa(), a.len));
}

TEST_P(InetTest, NonblockingConnectCompletes) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM | SOCK_NONBLOCK, 0));
  int r = connect(cli.get(), a.sa(), a.len);
  if (r != 0) {
    ASSERT_EQ(errno, EINPROGRESS);
    struct pollfd pfd = {cli.get(), POLLOUT, 0};
    ASSERT_RET(1, poll(&pfd, 1, 30000));
  }
  int err = -1;
  socklen_t len = sizeof(err);
  ASSERT_OK(getsockopt(cli.get(), SOL_SOCKET, SO_ERROR, &err, &len));
  EXPECT_EQ(err, 0);
}

TEST_P(InetTest, AcceptBlocksUntilConnection) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Loopback target = a;
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    int c = socket(Family(), SOCK_STREAM, 0);
    _exit(connect(c, target.sa(), target.len) == 0 ? 0 : 1);
  }
  Fd acc(accept(srv.get(), nullptr, nullptr));
  EXPECT_TRUE(acc.valid());
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_P(InetTest, ListenOnUdpIsEOPNOTSUPP) {
  Fd s(socket(Family(), SOCK_DGRAM, 0));
  EXPECT_ERRNO(EOPNOTSUPP, listen(s.get(), 1));
}

TEST_P(InetTest, UdpSendtoRecvfrom) {
  Loopback a(Family()), b(Family());
  Fd s1(socket(Family(), SOCK_DGRAM, 0)), s2(socket(Family(), SOCK_DGRAM, 0));
  ASSERT_OK(bind(s1.get(), a.sa(), a.len));
  ASSERT_OK(getsockname(s1.get(), a.sa(), &a.len));
  ASSERT_OK(bind(s2.get(), b.sa(), b.len));
  ASSERT_OK(getsockname(s2.get(), b.sa(), &b.len));
  ASSERT_RET(4, sendto(s2.get(), "udp!", 4, 0, a.sa(), a.len));
  char buf[16];
  Loopback from(Family());
  EXPECT_RET(4, recvfrom(s1.get(), buf, sizeof(buf), 0, from.sa(), &from.len));
  EXPECT_EQ(from.port(), b.port());
  EXPECT_EQ(std::string(buf, 4), "udp!");
}

TEST_P(InetTest, UdpConnectedSendAndZeroLengthDatagram) {
  Loopback a(Family());
  Fd s1(socket(Family(), SOCK_DGRAM, 0)), s2(socket(Family(), SOCK_DGRAM, 0));
  ASSERT_OK(bind(s1.get(), a.sa(), a.len));
  ASSERT_OK(getsockname(s1.get(), a.sa(), &a.len));
  ASSERT_OK(connect(s2.get(), a.sa(), a.len));
  ASSERT_RET(0, send(s2.get(), "", 0, 0));
  ASSERT_RET(3, send(s2.get(), "abc", 3, 0));
  char buf[8];
  EXPECT_RET(0, recv(s1.get(), buf, sizeof(buf), 0));
  EXPECT_RET(3, recv(s1.get(), buf, sizeof(buf), 0));
}

TEST_P(InetTest, UdpTruncation) {
  Loopback a(Family());
  Fd s1(socket(Family(), SOCK_DGRAM, 0)), s2(socket(Family(), SOCK_DGRAM, 0));
  ASSERT_OK(bind(s1.get(), a.sa(), a.len));
  ASSERT_OK(getsockname(s1.get(), a.sa(), &a.len));
  ASSERT_RET(10, sendto(s2.get(), "0123456789", 10, 0, a.sa(), a.len));
  char buf[4];
  EXPECT_RET(10, recv(s1.get(), buf, sizeof(buf), MSG_TRUNC));
  EXPECT_EQ(std::string(buf, 4), "0123");
}

TEST_P(InetTest, UdpSendToClosedPortGivesECONNREFUSEDOnConnected) {
  Loopback a(Family());
  {
    Fd tmp(socket(Family(), SOCK_DGRAM, 0));
    ASSERT_OK(bind(tmp.get(), a.sa(), a.len));
    ASSERT_OK(getsockname(tmp.get(), a.sa(), &a.len));
  }
  Fd s(socket(Family(), SOCK_DGRAM, 0));
  ASSERT_OK(connect(s.get(), a.sa(), a.len));
  ASSERT_RET(1, send(s.get(), "x", 1, 0));
  // The ICMP port-unreachable is reported on a later call.
  char c;
  struct pollfd pfd = {s.get(), POLLIN, 0};
  poll(&pfd, 1, 5000);
  EXPECT_ERRNO(ECONNREFUSED, recv(s.get(), &c, 1, MSG_DONTWAIT));
}

TEST_P(InetTest, FionreadOnUdpIsNextDatagramSize) {
  Loopback a(Family());
  Fd s1(socket(Family(), SOCK_DGRAM, 0)), s2(socket(Family(), SOCK_DGRAM, 0));
  ASSERT_OK(bind(s1.get(), a.sa(), a.len));
  ASSERT_OK(getsockname(s1.get(), a.sa(), &a.len));
  ASSERT_RET(7, sendto(s2.get(), "1234567", 7, 0, a.sa(), a.len));
  ASSERT_RET(3, sendto(s2.get(), "123", 3, 0, a.sa(), a.len));
  struct pollfd pfd = {s1.get(), POLLIN, 0};
  ASSERT_RET(1, poll(&pfd, 1, 30000));
  int n = 0;
  ASSERT_OK(ioctl(s1.get(), FIONREAD, &n));
  EXPECT_EQ(n, 7);
}

TEST_P(InetTest, TcpNodelayAndKeepaliveOptions) {
  Fd s(socket(Family(), SOCK_STREAM, 0));
  int one = 1, v = 0;
  socklen_t len = sizeof(v);
  ASSERT_OK(setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
  ASSERT_OK(getsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &v, &len));
  EXPECT_NE(v, 0);
  ASSERT_OK(setsockopt(s.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)));
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_KEEPALIVE, &v, &len));
  EXPECT_EQ(v, 1);
  EXPECT_ERRNO(EINVAL, setsockopt(s.get(), SOL_SOCKET, SO_KEEPALIVE, &one, 1));
}

TEST_P(InetTest, BufferSizesAreDoubled) {
  Fd s(socket(Family(), SOCK_STREAM, 0));
  int req = 65536, got = 0;
  socklen_t len = sizeof(got);
  ASSERT_OK(setsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &req, sizeof(req)));
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_RCVBUF, &got, &len));
  EXPECT_EQ(got, 2 * req);  // socket(7): the kernel doubles the value
}

TEST_P(InetTest, SoTypeAndProtocol) {
  Fd s(socket(Family(), SOCK_DGRAM, 0));
  int v = 0;
  socklen_t len = sizeof(v);
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_TYPE, &v, &len));
  EXPECT_EQ(v, SOCK_DGRAM);
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_PROTOCOL, &v, &len));
  EXPECT_EQ(v, IPPROTO_UDP);
}

TEST_P(InetTest, RecvTimeoutIsEAGAIN) {
  Fd s(socket(Family(), SOCK_DGRAM, 0));
  Loopback a(Family());
  ASSERT_OK(bind(s.get(), a.sa(), a.len));
  struct timeval tv = {0, 20000};
  ASSERT_OK(setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
  char c;
  int64_t start = NowNs();
  EXPECT_ERRNO(EAGAIN, recv(s.get(), &c, 1, 0));
  EXPECT_GE(NowNs() - start, 15 * 1000000LL);
}

TEST_P(InetTest, SendOnUnconnectedTcpIsEPIPEOrENOTCONN) {
  Fd s(socket(Family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(EPIPE, send(s.get(), "x", 1, MSG_NOSIGNAL));
  char c;
  EXPECT_ERRNO(ENOTCONN, recv(s.get(), &c, 1, 0));
}

TEST_P(InetTest, BadAddressLengthIsEINVAL) {
  Loopback a(Family());
  Fd s(socket(Family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(EINVAL, bind(s.get(), a.sa(), 4));
}

TEST_P(InetTest, WrongFamilyIsEAFNOSUPPORT) {
  Loopback a(Family() == AF_INET ? AF_INET6 : AF_INET);
  Fd s(socket(Family(), SOCK_DGRAM, 0));
  if (Family() == AF_INET) {
    EXPECT_ERRNO(EAFNOSUPPORT, bind(s.get(), a.sa(), sizeof(sockaddr_in6)));
  } else {
    EXPECT_ERRNO(EINVAL, bind(s.get(), a.sa(), sizeof(sockaddr_in)));
  }
}

TEST_P(InetTest, AcceptOnNonListeningIsEINVAL) {
  Fd s(socket(Family(), SOCK_STREAM, 0));
  EXPECT_ERRNO(EINVAL, accept(s.get(), nullptr, nullptr));
}

TEST_P(InetTest, ConnectTwiceIsEISCONN) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), a.sa(), a.len));
  EXPECT_ERRNO(EISCONN, connect(cli.get(), a.sa(), a.len));
}

TEST_P(InetTest, PeekAndWaitall) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), a.sa(), a.len));
  Fd acc(accept(srv.get(), nullptr, nullptr));
  ASSERT_RET(3, write(cli.get(), "abc", 3));
  char buf[3];
  EXPECT_RET(3, recv(acc.get(), buf, 3, MSG_PEEK | MSG_WAITALL));
  EXPECT_RET(3, recv(acc.get(), buf, 3, MSG_WAITALL));
  EXPECT_EQ(std::string(buf, 3), "abc");
}

TEST_P(InetTest, ResetOnCloseWithUnreadData) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM, 0));
  ASSERT_OK(connect(cli.get(), a.sa(), a.len));
  Fd acc(accept(srv.get(), nullptr, nullptr));
  ASSERT_RET(3, write(cli.get(), "xyz", 3));
  SleepMs(20);
  acc.reset();  // closing with unread data sends RST
  struct pollfd pfd = {cli.get(), POLLIN, 0};
  ASSERT_RET(1, poll(&pfd, 1, 30000));
  char c;
  EXPECT_ERRNO(ECONNRESET, recv(cli.get(), &c, 1, 0));
}

INSTANTIATE_TEST_SUITE_P(Families, InetTest, ::testing::Values(AF_INET, AF_INET6),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == AF_INET ? std::string("IPv4") : std::string("IPv6");
                         });

TEST(Inet6, V4MappedConnectToV4Listener) {
  Loopback a(AF_INET);
  Fd srv(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_OK(bind(srv.get(), a.sa(), a.len));
  ASSERT_OK(getsockname(srv.get(), a.sa(), &a.len));
  ASSERT_OK(listen(srv.get(), 1));
  sockaddr_in6 m = {};
  m.sin6_family = AF_INET6;
  m.sin6_port = htons(a.port());
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
  Fd cli(socket(AF_INET6, SOCK_STREAM, 0));
  EXPECT_OK(connect(cli.get(), (sockaddr*)&m, sizeof(m)));
}

TEST(Inet6, V6OnlyRejectsV4Mapped) {
  Fd s(socket(AF_INET6, SOCK_DGRAM, 0));
  int one = 1;
  ASSERT_OK(setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)));
  sockaddr_in6 m = {};
  m.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
  EXPECT_ERRNO(EINVAL, bind(s.get(), (sockaddr*)&m, sizeof(m)));
}

TEST(Inet, TtlOption) {
  Fd s(socket(AF_INET, SOCK_DGRAM, 0));
  int ttl = 0;
  socklen_t len = sizeof(ttl);
  ASSERT_OK(getsockopt(s.get(), IPPROTO_IP, IP_TTL, &ttl, &len));
  EXPECT_GT(ttl, 0);
  int want = 7;
  ASSERT_OK(setsockopt(s.get(), IPPROTO_IP, IP_TTL, &want, sizeof(want)));
  ASSERT_OK(getsockopt(s.get(), IPPROTO_IP, IP_TTL, &ttl, &len));
  EXPECT_EQ(ttl, 7);
  int bad = 256;
  EXPECT_ERRNO(EINVAL, setsockopt(s.get(), IPPROTO_IP, IP_TTL, &bad, sizeof(bad)));
}

TEST(Inet, BindNonLocalAddressIsEADDRNOTAVAIL) {
  Fd s(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);  // TEST-NET-1, never local
  EXPECT_ERRNO(EADDRNOTAVAIL, bind(s.get(), (sockaddr*)&a, sizeof(a)));
}

}  // namespace
