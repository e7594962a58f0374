// Pseudoterminals (pty(7), pts(4)): posix_openpt, grantpt/unlockpt,
// ptsname, termios line discipline, TIOCGWINSZ/TIOCSWINSZ, hangup.
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "test_util.h"

namespace {

class PtyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    master_.reset(posix_openpt(O_RDWR | O_NOCTTY));
    ASSERT_TRUE(master_.valid()) << strerror(errno);
    ASSERT_OK(grantpt(master_.get()));
    ASSERT_OK(unlockpt(master_.get()));
    char name[64];
    ASSERT_EQ(ptsname_r(master_.get(), name, sizeof(name)), 0);
    name_ = name;
    replica_.reset(open(name, O_RDWR | O_NOCTTY));
    ASSERT_TRUE(replica_.valid()) << strerror(errno);
  }
  // Reads what is available on fd within timeout_ms.
  static std::string ReadAvail(int fd, int timeout_ms = 5000) {
    std::string out;
    struct pollfd pfd = {fd, POLLIN, 0};
    while (poll(&pfd, 1, out.empty() ? timeout_ms : 50) == 1 && (pfd.revents & POLLIN)) {
      char buf[256];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, n);
    }
    return out;
  }
  void SetRaw(int fd) {
    struct termios t;
    ASSERT_OK(tcgetattr(fd, &t));
    cfmakeraw(&t);
    ASSERT_OK(tcsetattr(fd, TCSANOW, &t));
  }
  Fd master_, replica_;
  std::string name_;
};

TEST_F(PtyTest, ReplicaIsATerminalUnderDevPts) {
  EXPECT_EQ(name_.rfind("/dev/pts/", 0), 0u) << name_;
  EXPECT_TRUE(isatty(replica_.get()));
  EXPECT_TRUE(isatty(master_.get()));
  struct stat st;
  ASSERT_OK(fstat(replica_.get(), &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(PtyTest, CanonicalModeDeliversLines) {
  ASSERT_RET(6, write(master_.get(), "hello\n", 6));
  char buf[32];
  EXPECT_RET(6, read(replica_.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 6), "hello\n");
}

TEST_F(PtyTest, CanonicalModeWaitsForNewline) {
  ASSERT_OK(fcntl(replica_.get(), F_SETFL, O_NONBLOCK));
  ASSERT_RET(3, write(master_.get(), "abc", 3));
  SleepMs(20);
  char buf[8];
  EXPECT_ERRNO(EAGAIN, read(replica_.get(), buf, sizeof(buf)));
  ASSERT_RET(1, write(master_.get(), "\n", 1));
  struct pollfd pfd = {replica_.get(), POLLIN, 0};
  ASSERT_RET(1, poll(&pfd, 1, 5000));
  EXPECT_RET(4, read(replica_.get(), buf, sizeof(buf)));
}

TEST_F(PtyTest, EchoGoesBackToMaster) {
  ASSERT_RET(3, write(master_.get(), "hi\n", 3));
  std::string echoed = ReadAvail(master_.get());
  EXPECT_EQ(echoed, "hi\r\n");  // ECHO plus ONLCR on output
}

TEST_F(PtyTest, OutputNewlineTranslatedByOnlcr) {
  ASSERT_RET(2, write(replica_.get(), "x\n", 2));
  EXPECT_EQ(ReadAvail(master_.get()), "x\r\n");
}

TEST_F(PtyTest, EraseCharacterEditsLine) {
  struct termios t;
  ASSERT_OK(tcgetattr(replica_.get(), &t));
  t.c_lflag &= ~ECHO;
  ASSERT_OK(tcsetattr(replica_.get(), TCSANOW, &t));
  std::string in = std::string("abx") + (char)t.c_cc[VERASE] + "c\n";
  ASSERT_RET(in.size(), write(master_.get(), in.data(), in.size()));
  char buf[16];
  ssize_t n = read(replica_.get(), buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "abc\n");
}

TEST_F(PtyTest, RawModePassesBytesImmediately) {
  SetRaw(replica_.get());
  ASSERT_RET(2, write(master_.get(), "\x03q", 2));
  char buf[4];
  struct pollfd pfd = {replica_.get(), POLLIN, 0};
  ASSERT_RET(1, poll(&pfd, 1, 5000));
  ssize_t n = ReadFull(replica_.get(), buf, 2);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(buf[0], '\x03');
}

TEST_F(PtyTest, TermiosRoundTrip) {
  struct termios t;
  ASSERT_OK(tcgetattr(replica_.get(), &t));
  t.c_cc[VMIN] = 3;
  t.c_lflag &= ~ICANON;
  ASSERT_OK(tcsetattr(replica_.get(), TCSANOW, &t));
  struct termios got;
  ASSERT_OK(tcgetattr(replica_.get(), &got));
  EXPECT_EQ(got.c_cc[VMIN], 3);
  EXPECT_FALSE(got.c_lflag & ICANON);
}

TEST_F(PtyTest, WindowSize) {
  struct winsize ws = {};
  ws.ws_row = 33;
  ws.ws_col = 101;
  ASSERT_OK(ioctl(master_.get(), TIOCSWINSZ, &ws));
  struct winsize got = {};
  ASSERT_OK(ioctl(replica_.get(), TIOCGWINSZ, &got));
  EXPECT_EQ(got.ws_row, 33);
  EXPECT_EQ(got.ws_col, 101);
}

TEST_F(PtyTest, PtyNumberMatchesName) {
  unsigned n = 0;
  ASSERT_OK(ioctl(master_.get(), TIOCGPTN, &n));
  EXPECT_EQ(name_, "/dev/pts/" + std::to_string(n));
}

TEST_F(PtyTest, MasterSeesEIOAfterReplicaClosed) {
  replica_.reset();
  char buf[8];
  EXPECT_ERRNO(EIO, read(master_.get(), buf, sizeof(buf)));
}

TEST_F(PtyTest, ReplicaSeesEofAfterMasterClosed) {
  master_.reset();
  char buf[8];
  ssize_t n = read(replica_.get(), buf, sizeof(buf));
  EXPECT_TRUE(n == 0 || (n == -1 && errno == EIO)) << n << " " << strerror(errno);
}

TEST_F(PtyTest, TcgetattrOnNonTtyIsENOTTY) {
  Fd f(open("/dev/null", O_RDONLY));
  struct termios t;
  EXPECT_ERRNO(ENOTTY, tcgetattr(f.get(), &t));
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  EXPECT_ERRNO(ENOTTY, tcgetattr(r.get(), &t));
}

TEST_F(PtyTest, ControllingTerminalViaSetsid) {
  std::string name = name_;
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setsid() > 0);
    int fd = open(name.c_str(), O_RDWR);  // no O_NOCTTY: becomes ctty
    CHILD_CHECK(fd >= 0);
    pid_t sid = 0;
    CHILD_CHECK(ioctl(fd, TIOCGSID, &sid) == 0);
    CHILD_CHECK(sid == getpid());
    CHILD_CHECK(tcgetpgrp(fd) == getpgrp());
    int tty = open("/dev/tty", O_RDWR);
    CHILD_CHECK(tty >= 0);
    return 0;
  });
}

TEST_F(PtyTest, InterruptCharacterSignalsForegroundGroup) {
  std::string name = name_;
  int mfd = master_.get();
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int fd = open(name.c_str(), O_RDWR);
    if (fd < 0) _exit(2);
    write(p[1], "r", 1);
    for (;;) pause();
  }
  char c;
  ASSERT_RET(1, read(p[0], &c, 1));
  struct termios t;
  ASSERT_OK(tcgetattr(replica_.get(), &t));
  char intr = t.c_cc[VINTR];
  ASSERT_RET(1, write(mfd, &intr, 1));
  int status;
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(KilledBy(status, SIGINT));
  close(p[0]);
  close(p[1]);
}

// A pty belongs to whoever opened /dev/ptmx (its filesystem uid, as
// grantpt(3) expects), who can reopen it by name; another user cannot.
TEST(PtyOwnership, ReplicaOwnedByPtmxOpener) {
  SKIP_IF_NOT_ROOT();
  int to_parent[2], to_child[2];
  ASSERT_OK(pipe(to_parent));
  ASSERT_OK(pipe(to_child));
  Fd tp_r(to_parent[0]), tp_w(to_parent[1]), tc_r(to_child[0]), tc_w(to_child[1]);
  fflush(nullptr);
  pid_t owner = fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    gid_t groups[1] = {4242};
    CHILD_CHECK(setgroups(1, groups) == 0);
    CHILD_CHECK(setresgid(4242, 4242, 4242) == 0);
    CHILD_CHECK(setresuid(4242, 4242, 4242) == 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    CHILD_CHECK(m >= 0);
    CHILD_CHECK(grantpt(m) == 0 && unlockpt(m) == 0);
    char name[64] = {};
    CHILD_CHECK(ptsname_r(m, name, sizeof(name)) == 0);
    struct stat st;
    CHILD_CHECK(stat(name, &st) == 0);
    CHILD_CHECK(S_ISCHR(st.st_mode));
    CHILD_CHECK(st.st_uid == 4242);
    CHILD_CHECK((st.st_mode & 0600) == 0600);
    CHILD_CHECK((st.st_mode & 0007) == 0);
    int r = open(name, O_RDWR | O_NOCTTY);
    CHILD_CHECK(r >= 0);
    CHILD_CHECK(write(tp_w.get(), name, sizeof(name)) == sizeof(name));
    char c;
    CHILD_CHECK(read(tc_r.get(), &c, 1) == 1);  // the parent is done
    _exit(0);
  }
  char name[64] = {};
  ASSERT_EQ(read(tp_r.get(), name, sizeof(name)), static_cast<ssize_t>(sizeof(name)));
  // While the owner holds the pty, a different unprivileged user is refused.
  EXPECT_CHILD_OK([&] {
    gid_t groups[1] = {4343};
    CHILD_CHECK(setgroups(1, groups) == 0);
    CHILD_CHECK(setresgid(4343, 4343, 4343) == 0);
    CHILD_CHECK(setresuid(4343, 4343, 4343) == 0);
    CHILD_CHECK(open(name, O_RDWR | O_NOCTTY) == -1 && errno == EACCES);
    return 0;
  });
  ASSERT_RET(1, write(tc_w.get(), "x", 1));
  int status;
  ASSERT_RET(owner, waitpid(owner, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 0)) << "the pty's owner failed";
}

TEST(Openpty, GlibcHelperWorks) {
  int m, s;
  ASSERT_OK(openpty(&m, &s, nullptr, nullptr, nullptr));
  Fd mf(m), sf(s);
  EXPECT_TRUE(isatty(s));
}

}  // namespace
