// AF_INET and AF_INET6 sockets on loopback (ip(7), ipv6(7), tcp(7),
// udp(7)): bind to port 0, listen/connect/accept, data transfer, shutdown,
// socket options, errors; dual-stack listeners, ping sockets (icmp(7)),
// interface ioctls (netdevice(7)), getifaddrs(3) and NETLINK_ROUTE dumps.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

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

// A non-blocking connect that finished unseen is still "connecting" for
// Linux: the next connect reports its success (0) once, then EISCONN.
TEST_P(InetTest, NonBlockingConnectAgainAfterCompletion) {
  Loopback a(Family());
  Fd srv = Listener(&a);
  Fd cli(socket(Family(), SOCK_STREAM | SOCK_NONBLOCK, 0));
  int r = connect(cli.get(), a.sa(), a.len);
  if (r != 0) {
    ASSERT_EQ(errno, EINPROGRESS);
    struct pollfd pfd = {cli.get(), POLLOUT, 0};
    ASSERT_RET(1, poll(&pfd, 1, 5000));
    EXPECT_OK(connect(cli.get(), a.sa(), a.len));
  }
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

TEST(Inet6, DualStackListenerAcceptsV4) {
  Fd s(socket(AF_INET6, SOCK_STREAM, 0));
  int zero = 0;
  ASSERT_OK(setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)));
  sockaddr_in6 any = {};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_any;
  ASSERT_OK(bind(s.get(), (sockaddr*)&any, sizeof(any)));
  socklen_t len = sizeof(any);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&any, &len));
  ASSERT_OK(listen(s.get(), 4));
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_port = any.sin6_port;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(connect(c.get(), (sockaddr*)&to, sizeof(to)));
  sockaddr_in6 peer = {};
  len = sizeof(peer);
  Fd a(accept(s.get(), (sockaddr*)&peer, &len));
  ASSERT_TRUE(a.valid()) << strerror(errno);
  EXPECT_EQ(peer.sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  EXPECT_EQ(peer.sin6_addr.s6_addr[15], 1);
}

TEST(Inet, PingSocketEchoesOnLoopback) {
  Fd s(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
  if (!s.valid() && (errno == EACCES || errno == EPERM || errno == EPROTONOSUPPORT)) {
    GTEST_SKIP() << "ping sockets are not allowed here (net.ipv4.ping_group_range)";
  }
  ASSERT_TRUE(s.valid()) << strerror(errno);
  unsigned char req[12] = {ICMP_ECHO, 0, 0, 0, 0, 0, 0, 9, 'p', 'i', 'n', 'g'};
  sockaddr_in to = {};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_RET(12, sendto(s.get(), req, sizeof(req), 0, (sockaddr*)&to, sizeof(to)));
  struct pollfd pfd = {s.get(), POLLIN, 0};
  ASSERT_RET(1, poll(&pfd, 1, 10000));
  unsigned char reply[64];
  ASSERT_RET(12, recv(s.get(), reply, sizeof(reply), 0));
  EXPECT_EQ(reply[0], ICMP_ECHOREPLY);
  EXPECT_EQ(reply[7], 9);
  EXPECT_EQ(0, memcmp(reply + 8, "ping", 4));
  unsigned char notecho[8] = {ICMP_TIMESTAMP, 0};
  EXPECT_ERRNO(EINVAL, sendto(s.get(), notecho, sizeof(notecho), 0, (sockaddr*)&to, sizeof(to)));
}

TEST(Inet, LoopbackInterfaceIoctls) {
  Fd s(socket(AF_INET, SOCK_DGRAM, 0));
  ifreq ifr = {};
  strcpy(ifr.ifr_name, "lo");
  ASSERT_OK(ioctl(s.get(), SIOCGIFINDEX, &ifr));
  int index = ifr.ifr_ifindex;
  EXPECT_GT(index, 0);
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_ifindex = index;
  ASSERT_OK(ioctl(s.get(), SIOCGIFNAME, &ifr));
  EXPECT_STREQ(ifr.ifr_name, "lo");
  ASSERT_OK(ioctl(s.get(), SIOCGIFFLAGS, &ifr));
  EXPECT_EQ(ifr.ifr_flags & (IFF_UP | IFF_LOOPBACK), IFF_UP | IFF_LOOPBACK);
  ASSERT_OK(ioctl(s.get(), SIOCGIFADDR, &ifr));
  EXPECT_EQ(reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  strcpy(ifr.ifr_name, "nosuchif0");
  EXPECT_ERRNO(ENODEV, ioctl(s.get(), SIOCGIFINDEX, &ifr));
}

TEST(Inet, GetifaddrsListsLoopback) {
  ifaddrs* ifa = nullptr;
  ASSERT_OK(getifaddrs(&ifa));
  bool found = false;
  for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* a = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (a->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
      found = true;
      EXPECT_STREQ(i->ifa_name, "lo");
      EXPECT_TRUE(i->ifa_flags & IFF_LOOPBACK);
    }
  }
  freeifaddrs(ifa);
  EXPECT_TRUE(found);
}

TEST(Netlink, RouteLinkDumpEndsWithDone) {
  Fd s(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
  ASSERT_TRUE(s.valid()) << strerror(errno);
  struct {
    nlmsghdr h;
    ifinfomsg i;
  } req = {};
  req.h.nlmsg_len = sizeof(req);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 42;
  ASSERT_RET((ssize_t)sizeof(req), send(s.get(), &req, sizeof(req), 0));
  sockaddr_nl self = {};
  socklen_t len = sizeof(self);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&self, &len));
  EXPECT_NE(self.nl_pid, 0u);
  bool done = false, saw_lo = false;
  alignas(nlmsghdr) char buf[32768];
  while (!done) {
    ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << strerror(errno);
    for (nlmsghdr* h = (nlmsghdr*)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      EXPECT_EQ(h->nlmsg_seq, 42u);
      EXPECT_EQ(h->nlmsg_pid, self.nl_pid);
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      ASSERT_EQ(h->nlmsg_type, RTM_NEWLINK);
      auto* ifi = (ifinfomsg*)NLMSG_DATA(h);
      int alen = IFLA_PAYLOAD(h);
      for (rtattr* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == IFLA_IFNAME && strcmp((char*)RTA_DATA(a), "lo") == 0) saw_lo = true;
      }
    }
  }
  EXPECT_TRUE(saw_lo);
  // A request the kernel does not serve gets an error acknowledgement.
  req.h.nlmsg_type = RTM_NEWLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.h.nlmsg_seq = 43;
  req.i.ifi_index = 0x7fffffff;
  ASSERT_RET((ssize_t)sizeof(req), send(s.get(), &req, sizeof(req), 0));
  ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
  ASSERT_GE(n, (ssize_t)(sizeof(nlmsghdr) + sizeof(nlmsgerr)));
  auto* h = (nlmsghdr*)buf;
  ASSERT_EQ(h->nlmsg_type, NLMSG_ERROR);
  EXPECT_LT(((nlmsgerr*)NLMSG_DATA(h))->error, 0);
}


// Dual stack: an AF_INET6 socket without IPV6_V6ONLY also serves IPv4,
// with IPv4 peers reported as ::ffff:a.b.c.d.
namespace dualstack {

sockaddr_in V4Loopback(uint16_t port_be) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = port_be;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

sockaddr_in6 V4Mapped(const char* v4, uint16_t port_be) {
  sockaddr_in6 m = {};
  m.sin6_family = AF_INET6;
  m.sin6_port = port_be;
  char buf[64];
  snprintf(buf, sizeof(buf), "::ffff:%s", v4);
  inet_pton(AF_INET6, buf, &m.sin6_addr);
  return m;
}

}  // namespace dualstack

TEST(Inet6, ListenWithoutBindAcceptsV4) {
  Fd s(socket(AF_INET6, SOCK_STREAM, 0));
  ASSERT_OK(listen(s.get(), 4));
  sockaddr_in6 self = {};
  socklen_t len = sizeof(self);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&self, &len));
  EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&self.sin6_addr));
  ASSERT_NE(self.sin6_port, 0);
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = dualstack::V4Loopback(self.sin6_port);
  ASSERT_OK(connect(c.get(), (sockaddr*)&to, sizeof(to)));
  sockaddr_in6 peer = {};
  len = sizeof(peer);
  Fd a(accept(s.get(), (sockaddr*)&peer, &len));
  ASSERT_TRUE(a.valid()) << strerror(errno);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  ASSERT_EQ(write(c.get(), "x", 1), 1);
  char b = 0;
  ASSERT_EQ(read(a.get(), &b, 1), 1);
  EXPECT_EQ(b, 'x');
}

TEST(Inet6, ListenWithoutBindV6OnlyRefusesV4) {
  Fd s(socket(AF_INET6, SOCK_STREAM, 0));
  int one = 1;
  ASSERT_OK(setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)));
  ASSERT_OK(listen(s.get(), 4));
  sockaddr_in6 self = {};
  socklen_t len = sizeof(self);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&self, &len));
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = dualstack::V4Loopback(self.sin6_port);
  EXPECT_ERRNO(ECONNREFUSED, connect(c.get(), (sockaddr*)&to, sizeof(to)));
}

TEST(Inet6, UdpBoundToAnyReceivesV4AsMapped) {
  Fd s(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 any = {};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_any;
  ASSERT_OK(bind(s.get(), (sockaddr*)&any, sizeof(any)));
  socklen_t len = sizeof(any);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&any, &len));

  Fd c(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in to = dualstack::V4Loopback(any.sin6_port);
  ASSERT_EQ(sendto(c.get(), "four", 4, 0, (sockaddr*)&to, sizeof(to)), 4);
  sockaddr_in csrc = {};
  len = sizeof(csrc);
  ASSERT_OK(getsockname(c.get(), (sockaddr*)&csrc, &len));

  char buf[16] = {};
  sockaddr_in6 from = {};
  len = sizeof(from);
  ASSERT_EQ(recvfrom(s.get(), buf, sizeof(buf), 0, (sockaddr*)&from, &len), 4);
  EXPECT_EQ(std::string(buf, 4), "four");
  EXPECT_EQ(from.sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&from.sin6_addr));
  EXPECT_EQ(from.sin6_addr.s6_addr[12], 127);
  EXPECT_EQ(from.sin6_addr.s6_addr[15], 1);
  EXPECT_EQ(from.sin6_port, csrc.sin_port);

  // The reply goes back to the mapped source address.
  ASSERT_EQ(sendto(s.get(), "back", 4, 0, (sockaddr*)&from, len), 4);
  ASSERT_EQ(recv(c.get(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "back");

  // IPv6 still arrives too.
  Fd c6(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 to6 = any;
  to6.sin6_addr = in6addr_loopback;
  ASSERT_EQ(sendto(c6.get(), "six", 3, 0, (sockaddr*)&to6, sizeof(to6)), 3);
  len = sizeof(from);
  ASSERT_EQ(recvfrom(s.get(), buf, sizeof(buf), 0, (sockaddr*)&from, &len), 3);
  EXPECT_FALSE(IN6_IS_ADDR_V4MAPPED(&from.sin6_addr));
}

TEST(Inet6, UdpV6OnlyBoundToAnyIgnoresV4) {
  Fd s(socket(AF_INET6, SOCK_DGRAM, 0));
  int one = 1;
  ASSERT_OK(setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)));
  sockaddr_in6 any = {};
  any.sin6_family = AF_INET6;
  ASSERT_OK(bind(s.get(), (sockaddr*)&any, sizeof(any)));
  socklen_t len = sizeof(any);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&any, &len));
  // The IPv4 port stays free for an AF_INET socket.
  Fd s4(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in b4 = dualstack::V4Loopback(any.sin6_port);
  EXPECT_OK(bind(s4.get(), (sockaddr*)&b4, sizeof(b4)));
}

TEST(Inet6, UdpConnectToV4Mapped) {
  Fd srv(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in sa = dualstack::V4Loopback(0);
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, sizeof(sa)));
  socklen_t len = sizeof(sa);
  ASSERT_OK(getsockname(srv.get(), (sockaddr*)&sa, &len));

  Fd c(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 m = dualstack::V4Mapped("127.0.0.1", sa.sin_port);
  ASSERT_OK(connect(c.get(), (sockaddr*)&m, sizeof(m)));
  sockaddr_in6 peer = {};
  len = sizeof(peer);
  ASSERT_OK(getpeername(c.get(), (sockaddr*)&peer, &len));
  EXPECT_EQ(peer.sin6_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  EXPECT_EQ(peer.sin6_port, sa.sin_port);
  sockaddr_in6 self = {};
  len = sizeof(self);
  ASSERT_OK(getsockname(c.get(), (sockaddr*)&self, &len));
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&self.sin6_addr));

  ASSERT_EQ(send(c.get(), "hi", 2, 0), 2);
  char buf[8];
  sockaddr_in from = {};
  len = sizeof(from);
  ASSERT_EQ(recvfrom(srv.get(), buf, sizeof(buf), 0, (sockaddr*)&from, &len), 2);
  ASSERT_EQ(sendto(srv.get(), "yo", 2, 0, (sockaddr*)&from, len), 2);
  ASSERT_EQ(recv(c.get(), buf, sizeof(buf), 0), 2);
  EXPECT_EQ(std::string(buf, 2), "yo");
}

TEST(Inet6, UdpBoundToAnyConnectToV4Mapped) {
  Fd srv(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in sa = dualstack::V4Loopback(0);
  ASSERT_OK(bind(srv.get(), (sockaddr*)&sa, sizeof(sa)));
  socklen_t len = sizeof(sa);
  ASSERT_OK(getsockname(srv.get(), (sockaddr*)&sa, &len));

  Fd c(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 any = {};
  any.sin6_family = AF_INET6;
  ASSERT_OK(bind(c.get(), (sockaddr*)&any, sizeof(any)));
  len = sizeof(any);
  ASSERT_OK(getsockname(c.get(), (sockaddr*)&any, &len));
  sockaddr_in6 m = dualstack::V4Mapped("127.0.0.1", sa.sin_port);
  ASSERT_OK(connect(c.get(), (sockaddr*)&m, sizeof(m)));
  ASSERT_EQ(send(c.get(), "hi", 2, 0), 2);
  char buf[8];
  sockaddr_in from = {};
  len = sizeof(from);
  ASSERT_EQ(recvfrom(srv.get(), buf, sizeof(buf), 0, (sockaddr*)&from, &len), 2);
  EXPECT_EQ(from.sin_port, any.sin6_port);  // the bound port is kept
  ASSERT_EQ(sendto(srv.get(), "yo", 2, 0, (sockaddr*)&from, len), 2);
  ASSERT_EQ(recv(c.get(), buf, sizeof(buf), 0), 2);
}

// /proc/net: the connection tables list live sockets with their inode
// numbers, in Linux's column format.
namespace procnet {

std::string ReadAll(const char* path) {
  std::string out;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

// Row returns the line of table that contains key, or "".
std::string Row(const std::string& table, const std::string& key) {
  size_t at = table.find(key);
  if (at == std::string::npos) return "";
  size_t begin = table.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  size_t end = table.find('\n', at);
  return table.substr(begin, end - begin);
}

// Field returns the i'th whitespace-separated field of line.
std::string Field(const std::string& line, int i) {
  size_t pos = 0;
  for (int k = 0;; k++) {
    pos = line.find_first_not_of(' ', pos);
    if (pos == std::string::npos) return "";
    size_t end = line.find(' ', pos);
    if (k == i) return line.substr(pos, end == std::string::npos ? end : end - pos);
    if (end == std::string::npos) return "";
    pos = end;
  }
}

unsigned long Inode(int fd) {
  struct stat st = {};
  if (fstat(fd, &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace procnet

TEST(ProcNet, TcpHeaderIsLinuxFormat) {
  std::string t = procnet::ReadAll("/proc/net/tcp");
  std::string first = t.substr(0, t.find('\n'));
  EXPECT_EQ(first.size(), 149u);
  EXPECT_EQ(first.rfind("  sl  local_address rem_address   st tx_queue rx_queue tr "
                        "tm->when retrnsmt   uid  timeout inode", 0),
            0u)
      << first;
  std::string u = procnet::ReadAll("/proc/net/udp");
  std::string ufirst = u.substr(0, u.find('\n'));
  EXPECT_EQ(ufirst.size(), 127u);
  EXPECT_NE(ufirst.find("inode ref pointer drops"), std::string::npos) << ufirst;
}

TEST(ProcNet, TcpListsListenerWithInode) {
  Fd s(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(bind(s.get(), (sockaddr*)&a, sizeof(a)));
  socklen_t len = sizeof(a);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&a, &len));
  ASSERT_OK(listen(s.get(), 3));
  char key[64];
  snprintf(key, sizeof(key), "0100007F:%04X 00000000:0000 0A ", ntohs(a.sin_port));
  std::string row = procnet::Row(procnet::ReadAll("/proc/net/tcp"), key);
  ASSERT_FALSE(row.empty()) << key;
  EXPECT_EQ(procnet::Field(row, 9), std::to_string(procnet::Inode(s.get()))) << row;
  EXPECT_EQ(procnet::Field(row, 7), std::to_string(geteuid())) << row;
  EXPECT_EQ(procnet::Field(row, 4), "00000000:00000000") << row;
  // A connection waiting in the accept queue shows in rx_queue.
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_OK(connect(c.get(), (sockaddr*)&a, sizeof(a)));
  pollfd p = {s.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  row = procnet::Row(procnet::ReadAll("/proc/net/tcp"), key);
  EXPECT_EQ(procnet::Field(row, 4), "00000000:00000001") << row;
  c = Fd();
  s = Fd();
  EXPECT_TRUE(procnet::Row(procnet::ReadAll("/proc/net/tcp"), key).empty());
}

TEST(ProcNet, TcpListsConnectionWithQueuedBytes) {
  Fd l(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(bind(l.get(), (sockaddr*)&a, sizeof(a)));
  socklen_t len = sizeof(a);
  ASSERT_OK(getsockname(l.get(), (sockaddr*)&a, &len));
  ASSERT_OK(listen(l.get(), 1));
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_OK(connect(c.get(), (sockaddr*)&a, sizeof(a)));
  Fd acc(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(acc.valid());
  ASSERT_EQ(write(c.get(), "hello", 5), 5);
  pollfd p = {acc.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  sockaddr_in ca = {};
  len = sizeof(ca);
  ASSERT_OK(getsockname(c.get(), (sockaddr*)&ca, &len));
  char key[64];
  snprintf(key, sizeof(key), "0100007F:%04X 0100007F:%04X 01 ", ntohs(a.sin_port),
           ntohs(ca.sin_port));
  std::string row = procnet::Row(procnet::ReadAll("/proc/net/tcp"), key);
  ASSERT_FALSE(row.empty()) << key;
  EXPECT_EQ(procnet::Field(row, 4), "00000000:00000005") << row;
  EXPECT_EQ(procnet::Field(row, 9), std::to_string(procnet::Inode(acc.get()))) << row;
}

TEST(ProcNet, Tcp6AndUdp6ListSockets) {
  Fd s(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 a = {};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  ASSERT_OK(bind(s.get(), (sockaddr*)&a, sizeof(a)));
  socklen_t len = sizeof(a);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&a, &len));
  ASSERT_OK(listen(s.get(), 1));
  char key[128];
  snprintf(key, sizeof(key),
           "00000000000000000000000001000000:%04X 00000000000000000000000000000000:0000 0A ",
           ntohs(a.sin6_port));
  std::string tcp6 = procnet::ReadAll("/proc/net/tcp6");
  EXPECT_EQ(tcp6.rfind("  sl  local_address                         remote_address", 0), 0u);
  std::string row = procnet::Row(tcp6, key);
  ASSERT_FALSE(row.empty()) << key;
  EXPECT_EQ(procnet::Field(row, 9), std::to_string(procnet::Inode(s.get())));

  Fd u(socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 any = {};
  any.sin6_family = AF_INET6;
  ASSERT_OK(bind(u.get(), (sockaddr*)&any, sizeof(any)));
  len = sizeof(any);
  ASSERT_OK(getsockname(u.get(), (sockaddr*)&any, &len));
  snprintf(key, sizeof(key), "00000000000000000000000000000000:%04X 00000000000000000000000000000000:0000 07 ",
           ntohs(any.sin6_port));
  row = procnet::Row(procnet::ReadAll("/proc/net/udp6"), key);
  ASSERT_FALSE(row.empty()) << key;
  EXPECT_EQ(procnet::Field(row, 9), std::to_string(procnet::Inode(u.get())));
}

TEST(ProcNet, UnixListsAbstractListener) {
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  char name[64];
  snprintf(name, sizeof(name), "procnet-%d", getpid());
  memcpy(a.sun_path + 1, name, strlen(name));
  ASSERT_OK(bind(s.get(), (sockaddr*)&a, offsetof(sockaddr_un, sun_path) + 1 + strlen(name)));
  ASSERT_OK(listen(s.get(), 1));
  std::string t = procnet::ReadAll("/proc/net/unix");
  EXPECT_EQ(t.rfind("Num       RefCount Protocol Flags    Type St Inode Path\n", 0), 0u);
  std::string row = procnet::Row(t, std::string(" @") + name);
  ASSERT_FALSE(row.empty()) << t;
  EXPECT_EQ(procnet::Field(row, 3), "00010000") << row;  // __SO_ACCEPTCON
  EXPECT_EQ(procnet::Field(row, 4), "0001") << row;      // SOCK_STREAM
  EXPECT_EQ(procnet::Field(row, 5), "01") << row;        // SS_UNCONNECTED
  EXPECT_EQ(procnet::Field(row, 6), std::to_string(procnet::Inode(s.get()))) << row;
}

TEST(ProcNet, InterfacesAndLoopbackAddress) {
  std::string dev = procnet::ReadAll("/proc/net/dev");
  EXPECT_EQ(dev.rfind("Inter-|   Receive ", 0), 0u) << dev;
  EXPECT_NE(dev.find("    lo: "), std::string::npos) << dev;
  std::string if6 = procnet::ReadAll("/proc/net/if_inet6");
  std::string row = procnet::Row(if6, "00000000000000000000000000000001 ");
  ASSERT_FALSE(row.empty()) << if6;
  EXPECT_EQ(procnet::Field(row, 2), "80") << row;  // prefix length 128
  EXPECT_EQ(procnet::Field(row, 3), "10") << row;  // loopback scope
  EXPECT_EQ(procnet::Field(row, 5), "lo") << row;
  std::string route = procnet::ReadAll("/proc/net/route");
  EXPECT_EQ(route.rfind("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT", 0), 0u);
}

TEST(Inet, TcpInfoDescribesEstablishedConnection) {
  Fd l(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(bind(l.get(), (sockaddr*)&a, sizeof(a)));
  socklen_t len = sizeof(a);
  ASSERT_OK(getsockname(l.get(), (sockaddr*)&a, &len));
  ASSERT_OK(listen(l.get(), 1));
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_OK(connect(c.get(), (sockaddr*)&a, sizeof(a)));
  Fd acc(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(acc.valid());
  ASSERT_EQ(write(c.get(), "ping", 4), 4);
  char buf[4];
  ASSERT_EQ(read(acc.get(), buf, 4), 4);
  ASSERT_EQ(write(acc.get(), "pong", 4), 4);
  ASSERT_EQ(read(c.get(), buf, 4), 4);
  tcp_info ti = {};
  len = sizeof(ti);
  ASSERT_OK(getsockopt(c.get(), IPPROTO_TCP, TCP_INFO, &ti, &len));
  EXPECT_EQ(ti.tcpi_state, TCP_ESTABLISHED);
  EXPECT_GE(ti.tcpi_rto, 200000u);  // at least TCP_RTO_MIN, in microseconds
  EXPECT_GT(ti.tcpi_snd_mss, 0u);
  EXPECT_GT(ti.tcpi_rcv_mss, 0u);
  EXPECT_GT(ti.tcpi_snd_cwnd, 0u);
  EXPECT_EQ(ti.tcpi_retransmits, 0);
  EXPECT_EQ(ti.tcpi_total_retrans, 0u);
  EXPECT_EQ(ti.tcpi_unacked, 0u);
}

TEST(Inet, SoTimestampGivesArrivalTime) {
  Fd s(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_OK(bind(s.get(), (sockaddr*)&a, sizeof(a)));
  socklen_t len = sizeof(a);
  ASSERT_OK(getsockname(s.get(), (sockaddr*)&a, &len));
  int one = 1;
  ASSERT_OK(setsockopt(s.get(), SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)));
  int v = 0;
  len = sizeof(v);
  ASSERT_OK(getsockopt(s.get(), SOL_SOCKET, SO_TIMESTAMP, &v, &len));
  EXPECT_EQ(v, 1);
  timeval before;
  gettimeofday(&before, nullptr);
  Fd c(socket(AF_INET, SOCK_DGRAM, 0));
  ASSERT_EQ(sendto(c.get(), "t", 1, 0, (sockaddr*)&a, sizeof(a)), 1);
  char data;
  iovec iov = {&data, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(timeval))];
  msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof(cbuf);
  ASSERT_EQ(recvmsg(s.get(), &m, 0), 1);
  cmsghdr* h = CMSG_FIRSTHDR(&m);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->cmsg_level, SOL_SOCKET);
  EXPECT_EQ(h->cmsg_type, SCM_TIMESTAMP);
  timeval got;
  memcpy(&got, CMSG_DATA(h), sizeof(got));
  timeval after;
  gettimeofday(&after, nullptr);
  long long g = got.tv_sec * 1000000LL + got.tv_usec;
  EXPECT_GE(g, before.tv_sec * 1000000LL + before.tv_usec);
  EXPECT_LE(g, after.tv_sec * 1000000LL + after.tv_usec);
}

TEST(Inet, TcpCongestionSelectsCubicAndReno) {
  Fd s(socket(AF_INET, SOCK_STREAM, 0));
  for (const char* want : {"cubic", "reno"}) {
    ASSERT_OK(setsockopt(s.get(), IPPROTO_TCP, TCP_CONGESTION, want, strlen(want)));
    char got[16] = {};
    socklen_t len = sizeof(got);
    ASSERT_OK(getsockopt(s.get(), IPPROTO_TCP, TCP_CONGESTION, got, &len));
    EXPECT_STREQ(got, want);
  }
  EXPECT_ERRNO(ENOENT, setsockopt(s.get(), IPPROTO_TCP, TCP_CONGESTION, "nonesuch", 8));
}

}  // namespace
