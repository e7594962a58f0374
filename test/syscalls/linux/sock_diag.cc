// NETLINK_SOCK_DIAG (sock_diag(7)): inet_diag dumps filtered by state,
// exact lookups by inet_diag_sockid, the attributes ss(8) reads, and the
// errors of malformed requests. The host has sockets of its own, so every
// check looks for the test's sockets by port and inode.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "test_util.h"

namespace {

constexpr uint32_t kSeq = 4242;

struct DiagMsg {
  uint16_t type = 0;
  uint16_t flags = 0;
  int32_t error = 0;  // NLMSG_ERROR's errno (positive), or NLMSG_DONE's status
  bool done = false;
  bool is_error = false;
  inet_diag_msg msg{};
  std::vector<std::pair<uint16_t, std::string>> attrs;

  const std::string* Attr(uint16_t t) const {
    for (const auto& a : attrs) {
      if (a.first == t) return &a.second;
    }
    return nullptr;
  }
};

Fd DiagSocket() { return Fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)); }

// Sends one request of type with payload and reads the answer up to
// NLMSG_DONE or NLMSG_ERROR (or until nothing more comes).
std::vector<DiagMsg> Converse(int fd, uint16_t type, uint16_t flags, const void* payload, size_t len) {
  std::vector<char> req(NLMSG_SPACE(len));
  auto* h = reinterpret_cast<nlmsghdr*>(req.data());
  h->nlmsg_len = NLMSG_LENGTH(len);
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = kSeq;
  memcpy(NLMSG_DATA(h), payload, len);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::vector<DiagMsg> out;
  if (sendto(fd, req.data(), h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) !=
      static_cast<ssize_t>(h->nlmsg_len)) {
    ADD_FAILURE() << "sendto: " << strerror(errno);
    return out;
  }
  std::vector<char> buf(64 << 10);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 2000) != 1) return out;
      continue;
    }
    if (n <= 0) {
      ADD_FAILURE() << "recv: " << strerror(errno);
      return out;
    }
    int left = static_cast<int>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
      EXPECT_EQ(m->nlmsg_seq, kSeq);
      DiagMsg d;
      d.type = m->nlmsg_type;
      d.flags = m->nlmsg_flags;
      if (m->nlmsg_type == NLMSG_DONE) {
        d.done = true;
        memcpy(&d.error, NLMSG_DATA(m), sizeof(int32_t));
      } else if (m->nlmsg_type == NLMSG_ERROR) {
        d.is_error = true;
        d.error = -reinterpret_cast<nlmsgerr*>(NLMSG_DATA(m))->error;
      } else {
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
          // A unix_diag_msg (16 bytes): kept whole, attributes unparsed.
          memcpy(&d.msg, NLMSG_DATA(m), std::min<size_t>(sizeof(inet_diag_msg), NLMSG_PAYLOAD(m, 0)));
          out.push_back(d);
          if (!(d.flags & NLM_F_MULTI) && !(flags & NLM_F_ACK)) return out;
          continue;
        }
        memcpy(&d.msg, NLMSG_DATA(m), sizeof(inet_diag_msg));
        int alen = static_cast<int>(m->nlmsg_len - NLMSG_LENGTH(sizeof(inet_diag_msg)));
        auto* a = reinterpret_cast<rtattr*>(static_cast<char*>(NLMSG_DATA(m)) + NLMSG_ALIGN(sizeof(inet_diag_msg)));
        for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
          d.attrs.emplace_back(a->rta_type, std::string(static_cast<char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
        }
      }
      out.push_back(d);
      if (d.done || d.is_error) return out;
      // A single answer (not part of a dump) is whole unless an
      // acknowledgement follows it.
      if (!(d.flags & NLM_F_MULTI) && !(flags & NLM_F_ACK)) return out;
    }
  }
}

inet_diag_req_v2 Request(int family, int protocol, uint32_t states) {
  inet_diag_req_v2 r{};
  r.sdiag_family = family;
  r.sdiag_protocol = protocol;
  r.idiag_states = states;
  r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  return r;
}

std::vector<DiagMsg> Dump(int fd, const inet_diag_req_v2& r) {
  auto got = Converse(fd, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &r, sizeof(r));
  EXPECT_FALSE(got.empty());
  if (got.empty()) return got;
  EXPECT_TRUE(got.back().done) << "dump not ended by NLMSG_DONE";
  EXPECT_EQ(got.back().error, 0);
  EXPECT_NE(got.back().flags & NLM_F_MULTI, 0);
  got.pop_back();
  for (const auto& d : got) {
    EXPECT_EQ(d.type, SOCK_DIAG_BY_FAMILY);
    EXPECT_NE(d.flags & NLM_F_MULTI, 0);
  }
  return got;
}

uint64_t Inode(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return 0;
  return st.st_ino;
}

sockaddr_in Loopback4(uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

Fd Listener4() {
  Fd l(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = Loopback4();
  if (bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(l.get(), 5) != 0) return Fd();
  return l;
}

const DiagMsg* FindPort(const std::vector<DiagMsg>& v, uint16_t sport, uint16_t dport) {
  for (const auto& d : v) {
    if (ntohs(d.msg.id.idiag_sport) == sport && ntohs(d.msg.id.idiag_dport) == dport) return &d;
  }
  return nullptr;
}

TEST(SockDiag, DumpShowsListenerWithItsInode) {
  Fd l = Listener4();
  ASSERT_TRUE(l.valid());
  uint16_t port = LocalPort(l.get());
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid()) << strerror(errno);
  auto got = Dump(nl.get(), Request(AF_INET, IPPROTO_TCP, 1 << TCP_LISTEN));
  const DiagMsg* d = FindPort(got, port, 0);
  ASSERT_NE(d, nullptr) << "listener on port " << port << " not dumped";
  EXPECT_EQ(d->msg.idiag_family, AF_INET);
  EXPECT_EQ(d->msg.idiag_state, TCP_LISTEN);
  EXPECT_EQ(d->msg.id.idiag_src[0], htonl(INADDR_LOOPBACK));
  EXPECT_EQ(d->msg.idiag_inode, Inode(l.get()));
  EXPECT_NE(d->Attr(INET_DIAG_SHUTDOWN), nullptr);
  EXPECT_EQ(d->Attr(INET_DIAG_INFO), nullptr) << "INET_DIAG_INFO sent without idiag_ext";
  for (const auto& e : got) EXPECT_EQ(e.msg.idiag_state, TCP_LISTEN);
  // Not in the IPv6 table, nor among established sockets.
  EXPECT_EQ(FindPort(Dump(nl.get(), Request(AF_INET6, IPPROTO_TCP, ~0U)), port, 0), nullptr);
  EXPECT_EQ(FindPort(Dump(nl.get(), Request(AF_INET, IPPROTO_TCP, 1 << TCP_ESTABLISHED)), port, 0), nullptr);
}

// Dumps until find(got) is non-null or two seconds pass.
template <typename F>
std::vector<DiagMsg> DumpUntil(int nl, const inet_diag_req_v2& r, F find) {
  std::vector<DiagMsg> got;
  for (int i = 0; i < 200; i++) {
    got = Dump(nl, r);
    if (find(got) != nullptr) break;
    usleep(10000);
  }
  return got;
}

TEST(SockDiag, ClosedConnectionListedInTimeWait) {
  Fd l = Listener4();
  ASSERT_TRUE(l.valid());
  uint16_t port = LocalPort(l.get());
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a = Loopback4(port);
  ASSERT_OK(connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)));
  Fd s(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(s.valid());
  uint16_t cport = LocalPort(c.get());
  // The client closes first, so it is the side that waits.
  c.reset();
  char b;
  ASSERT_EQ(read(s.get(), &b, 1), 0);
  s.reset();
  Fd nl = DiagSocket();
  auto got = DumpUntil(nl.get(), Request(AF_INET, IPPROTO_TCP, 1 << TCP_TIME_WAIT),
                       [&](const std::vector<DiagMsg>& v) { return FindPort(v, cport, port); });
  const DiagMsg* d = FindPort(got, cport, port);
  ASSERT_NE(d, nullptr) << "closed connection " << cport << "->" << port << " not in TIME-WAIT";
  EXPECT_EQ(d->msg.idiag_state, TCP_TIME_WAIT);
  EXPECT_EQ(d->msg.idiag_timer, 3);
  EXPECT_GT(d->msg.idiag_expires, 0u);
  EXPECT_LE(d->msg.idiag_expires, 60000u);
  EXPECT_EQ(d->msg.idiag_inode, 0u);
  EXPECT_EQ(d->msg.idiag_uid, 0u);
  EXPECT_EQ(d->msg.idiag_rqueue, 0u);
  EXPECT_EQ(d->msg.idiag_wqueue, 0u);
  // No socket attributes (INET_DIAG_MARK aside, which Linux adds for a
  // CAP_NET_ADMIN caller).
  for (const auto& at : d->attrs) EXPECT_EQ(at.first, INET_DIAG_MARK) << "TIME-WAIT socket with attribute " << at.first;
}

TEST(SockDiag, ListenerQueuesAreAcceptQueueAndBacklog) {
  Fd l = Listener4();  // backlog 5
  ASSERT_TRUE(l.valid());
  uint16_t port = LocalPort(l.get());
  std::vector<Fd> clients;
  for (int i = 0; i < 3; i++) {
    clients.emplace_back(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in a = Loopback4(port);
    ASSERT_OK(connect(clients.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)));
  }
  Fd nl = DiagSocket();
  auto got = DumpUntil(nl.get(), Request(AF_INET, IPPROTO_TCP, 1 << TCP_LISTEN), [&](const std::vector<DiagMsg>& v) {
    const DiagMsg* d = FindPort(v, port, 0);
    return d != nullptr && d->msg.idiag_rqueue == 3 ? d : nullptr;
  });
  const DiagMsg* d = FindPort(got, port, 0);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->msg.idiag_rqueue, 3u) << "accept queue";
  EXPECT_EQ(d->msg.idiag_wqueue, 5u) << "backlog";
  EXPECT_EQ(d->msg.idiag_timer, 0);
}

TEST(SockDiag, ExtensionsInfoAndCongestion) {
  Fd l = Listener4();
  ASSERT_TRUE(l.valid());
  uint16_t port = LocalPort(l.get());
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());
  auto r = Request(AF_INET, IPPROTO_TCP, 1 << TCP_LISTEN);
  r.idiag_ext = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_CONG - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1));
  auto got = Dump(nl.get(), r);
  const DiagMsg* d = FindPort(got, port, 0);
  ASSERT_NE(d, nullptr);
  const std::string* info = d->Attr(INET_DIAG_INFO);
  ASSERT_NE(info, nullptr);
  ASSERT_GE(info->size(), 8u);
  EXPECT_EQ(static_cast<uint8_t>((*info)[0]), TCP_LISTEN);  // tcpi_state
  const std::string* cong = d->Attr(INET_DIAG_CONG);
  ASSERT_NE(cong, nullptr);
  EXPECT_GT(strlen(cong->c_str()), 0u);
  const std::string* mem = d->Attr(INET_DIAG_SKMEMINFO);
  ASSERT_NE(mem, nullptr);
  ASSERT_GE(mem->size(), SK_MEMINFO_SNDBUF * 4 + 4);
  uint32_t rcvbuf;
  memcpy(&rcvbuf, mem->data() + SK_MEMINFO_RCVBUF * 4, 4);
  EXPECT_GT(rcvbuf, 0u);
}

TEST(SockDiag, ExactLookupOfAConnection) {
  Fd l = Listener4();
  ASSERT_TRUE(l.valid());
  uint16_t port = LocalPort(l.get());
  Fd c(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in to = Loopback4(port);
  ASSERT_OK(connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)));
  Fd a(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(a.valid());
  uint16_t cport = LocalPort(c.get());
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());

  auto r = Request(AF_INET, IPPROTO_TCP, 0);
  r.id.idiag_sport = htons(cport);
  r.id.idiag_dport = htons(port);
  r.id.idiag_src[0] = htonl(INADDR_LOOPBACK);
  r.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
  auto got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_ACK, &r, sizeof(r));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].is_error);
  EXPECT_EQ(got[0].type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(got[0].flags & NLM_F_MULTI, 0);
  EXPECT_EQ(got[0].msg.idiag_state, TCP_ESTABLISHED);
  EXPECT_EQ(got[0].msg.idiag_inode, Inode(c.get()));
  EXPECT_TRUE(got[1].is_error);
  EXPECT_EQ(got[1].error, 0) << "acknowledgement";

  // The cookie the answer carried names the same socket; another does not.
  r.id.idiag_cookie[0] = got[0].msg.id.idiag_cookie[0];
  r.id.idiag_cookie[1] = got[0].msg.id.idiag_cookie[1];
  got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &r, sizeof(r));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].is_error);
  r.id.idiag_cookie[0]++;
  got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &r, sizeof(r));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].is_error);
  EXPECT_EQ(got[0].error, ENOENT);

  // A port nobody uses.
  auto miss = Request(AF_INET, IPPROTO_TCP, 0);
  miss.id.idiag_sport = htons(1);
  miss.id.idiag_src[0] = htonl(INADDR_LOOPBACK);
  got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &miss, sizeof(miss));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].is_error);
  EXPECT_EQ(got[0].error, ENOENT);
}

// UDP's exact lookup takes the socket's own address from idiag_dst.
TEST(SockDiag, UdpLookupAndDump) {
  Fd u(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in a = Loopback4();
  ASSERT_OK(bind(u.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)));
  uint16_t port = LocalPort(u.get());
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());
  const DiagMsg* d;
  auto dumped = Dump(nl.get(), Request(AF_INET, IPPROTO_UDP, ~0U));
  d = FindPort(dumped, port, 0);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->msg.idiag_state, TCP_CLOSE);
  EXPECT_EQ(d->msg.idiag_inode, Inode(u.get()));

  auto r = Request(AF_INET, IPPROTO_UDP, 0);
  r.id.idiag_dport = htons(port);
  r.id.idiag_dst[0] = htonl(INADDR_LOOPBACK);
  auto got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &r, sizeof(r));
  ASSERT_EQ(got.size(), 1u);
  ASSERT_FALSE(got[0].is_error) << strerror(got[0].error);
  EXPECT_EQ(got[0].msg.idiag_inode, Inode(u.get()));

  auto swapped = Request(AF_INET, IPPROTO_UDP, 0);
  swapped.id.idiag_sport = htons(port);
  swapped.id.idiag_src[0] = htonl(INADDR_LOOPBACK);
  got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &swapped, sizeof(swapped));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].is_error);
  EXPECT_EQ(got[0].error, ENOENT);
}

TEST(SockDiag, IPv6Listener) {
  Fd l(socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) GTEST_SKIP() << "no ::1";
  ASSERT_OK(listen(l.get(), 5));
  uint16_t port = LocalPort(l.get());
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());
  auto got = Dump(nl.get(), Request(AF_INET6, IPPROTO_TCP, 1 << TCP_LISTEN));
  const DiagMsg* d = FindPort(got, port, 0);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->msg.idiag_family, AF_INET6);
  EXPECT_EQ(memcmp(d->msg.id.idiag_src, &in6addr_loopback, 16), 0);
  EXPECT_EQ(d->msg.idiag_inode, Inode(l.get()));
  EXPECT_NE(d->Attr(INET_DIAG_SKV6ONLY), nullptr);
  EXPECT_EQ(FindPort(Dump(nl.get(), Request(AF_INET, IPPROTO_TCP, ~0U)), port, 0), nullptr);
}

TEST(SockDiag, Errors) {
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());
  auto r = Request(AF_INET, IPPROTO_TCP, ~0U);
  struct Case {
    const char* name;
    uint16_t type;
    size_t len;
    uint8_t family;
    int err;
  } cases[] = {
      {"one byte", SOCK_DIAG_BY_FAMILY, 1, AF_INET, EINVAL},
      {"short inet_diag_req_v2", SOCK_DIAG_BY_FAMILY, sizeof(r) - 1, AF_INET, EINVAL},
      {"family past AF_MAX", SOCK_DIAG_BY_FAMILY, sizeof(r), 200, EINVAL},
      {"AF_UNSPEC", SOCK_DIAG_BY_FAMILY, sizeof(r), AF_UNSPEC, ENOENT},
      {"unknown type", 30, sizeof(r), AF_INET, EINVAL},
  };
  for (const auto& c : cases) {
    auto req = r;
    req.sdiag_family = c.family;
    auto got = Converse(nl.get(), c.type, NLM_F_REQUEST | NLM_F_DUMP, &req, c.len);
    ASSERT_EQ(got.size(), 1u) << c.name;
    EXPECT_TRUE(got[0].is_error) << c.name;
    EXPECT_EQ(got[0].error, c.err) << c.name;
  }
  // A protocol with no diag handler ends its dump with -ENOENT.
  auto icmp = Request(AF_INET, IPPROTO_ICMP, ~0U);
  auto got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &icmp, sizeof(icmp));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].done);
  EXPECT_EQ(got[0].error, -ENOENT);
  // A message without NLM_F_REQUEST is only acknowledged.
  got = Converse(nl.get(), SOCK_DIAG_BY_FAMILY, NLM_F_DUMP | NLM_F_ACK, &r, sizeof(r));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].is_error);
  EXPECT_EQ(got[0].error, 0);
}

// unix_diag: AF_UNIX requests carry struct unix_diag_req and are answered
// with struct unix_diag_msg.
std::vector<DiagMsg> UnixConverse(int fd, uint16_t flags, uint32_t states, uint32_t ino, uint32_t show,
                                  uint32_t cookie0 = INET_DIAG_NOCOOKIE, uint32_t cookie1 = INET_DIAG_NOCOOKIE) {
  unix_diag_req r{};
  r.sdiag_family = AF_UNIX;
  r.udiag_states = states;
  r.udiag_ino = ino;
  r.udiag_show = show;
  r.udiag_cookie[0] = cookie0;
  r.udiag_cookie[1] = cookie1;
  return Converse(fd, SOCK_DIAG_BY_FAMILY, flags, &r, sizeof(r));
}

// The unix_diag_msg of d (Converse decodes the payload as inet_diag_msg,
// whose first 16 bytes hold it) and its attributes.
unix_diag_msg AsUnix(const DiagMsg& d) {
  unix_diag_msg m;
  memcpy(&m, &d.msg, sizeof(m));
  return m;
}

TEST(SockDiag, UnixListenerAndPendingConnection) {
  Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const char name[] = "\0carapace-sock-diag-test";
  memcpy(a.sun_path, name, sizeof(name) - 1);
  socklen_t alen = offsetof(sockaddr_un, sun_path) + sizeof(name) - 1;
  ASSERT_OK(bind(l.get(), reinterpret_cast<sockaddr*>(&a), alen));
  ASSERT_OK(listen(l.get(), 3));
  Fd c(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_OK(connect(c.get(), reinterpret_cast<sockaddr*>(&a), alen));
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());
  uint32_t lino = Inode(l.get()), cino = Inode(c.get());

  // A dump without show flags: the bare messages.
  auto got = UnixConverse(nl.get(), NLM_F_REQUEST | NLM_F_DUMP, 1 << TCP_LISTEN, 0, 0);
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got.back().done);
  bool found = false;
  for (const auto& d : got) {
    if (d.done) continue;
    unix_diag_msg m = AsUnix(d);
    EXPECT_EQ(m.udiag_family, AF_UNIX);
    EXPECT_EQ(m.udiag_state, TCP_LISTEN);
    if (m.udiag_ino == lino) {
      found = true;
      EXPECT_EQ(m.udiag_type, SOCK_STREAM);
    }
    EXPECT_NE(m.udiag_ino, cino) << "a connected socket in a LISTEN-only dump";
  }
  EXPECT_TRUE(found) << "listener inode " << lino << " not dumped";

  // The exact lookup, with its attributes.
  unix_diag_req r{};
  r.sdiag_family = AF_UNIX;
  r.udiag_ino = lino;
  r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
  r.udiag_cookie[0] = r.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
  std::vector<char> req(NLMSG_SPACE(sizeof(r)));
  auto* h = reinterpret_cast<nlmsghdr*>(req.data());
  h->nlmsg_len = NLMSG_LENGTH(sizeof(r));
  h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  h->nlmsg_flags = NLM_F_REQUEST;
  memcpy(NLMSG_DATA(h), &r, sizeof(r));
  ASSERT_EQ(send(nl.get(), req.data(), h->nlmsg_len, 0), static_cast<ssize_t>(h->nlmsg_len));
  std::vector<char> buf(8192);
  ssize_t n = recv(nl.get(), buf.data(), buf.size(), 0);
  ASSERT_GT(n, 0);
  auto* m = reinterpret_cast<nlmsghdr*>(buf.data());
  ASSERT_EQ(m->nlmsg_type, SOCK_DIAG_BY_FAMILY);
  auto* um = static_cast<unix_diag_msg*>(NLMSG_DATA(m));
  EXPECT_EQ(um->udiag_ino, lino);
  int left = static_cast<int>(m->nlmsg_len - NLMSG_LENGTH(sizeof(unix_diag_msg)));
  bool saw_name = false, saw_icons = false, saw_rqlen = false;
  for (auto* at = reinterpret_cast<rtattr*>(um + 1); RTA_OK(at, left); at = RTA_NEXT(at, left)) {
    const char* p = static_cast<const char*>(RTA_DATA(at));
    switch (at->rta_type) {
      case UNIX_DIAG_NAME:
        saw_name = true;
        EXPECT_EQ(std::string(p, RTA_PAYLOAD(at)), std::string(name, sizeof(name) - 1));
        break;
      case UNIX_DIAG_ICONS: {
        saw_icons = true;
        ASSERT_EQ(RTA_PAYLOAD(at), 4u);
        uint32_t ino;
        memcpy(&ino, p, 4);
        EXPECT_EQ(ino, cino) << "pending connection is the client's";
        break;
      }
      case UNIX_DIAG_RQLEN: {
        saw_rqlen = true;
        unix_diag_rqlen rq;
        ASSERT_EQ(RTA_PAYLOAD(at), sizeof(rq));
        memcpy(&rq, p, sizeof(rq));
        EXPECT_EQ(rq.udiag_rqueue, 1u);
        EXPECT_EQ(rq.udiag_wqueue, 3u);
        break;
      }
    }
  }
  EXPECT_TRUE(saw_name && saw_icons && saw_rqlen);

  // Errors of the exact lookup.
  got = UnixConverse(nl.get(), NLM_F_REQUEST, 0, 0, 0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, EINVAL);
  got = UnixConverse(nl.get(), NLM_F_REQUEST, 0, lino, 0, um->udiag_cookie[0] + 1, um->udiag_cookie[1]);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].error, ESTALE);
}

TEST(SockDiag, SocketIdentity) {
  Fd nl = DiagSocket();
  ASSERT_TRUE(nl.valid());
  int v = 0;
  socklen_t len = sizeof(v);
  ASSERT_OK(getsockopt(nl.get(), SOL_SOCKET, SO_PROTOCOL, &v, &len));
  EXPECT_EQ(v, NETLINK_SOCK_DIAG);
}

}  // namespace
