// dup(2), dup2(2), dup3(2), fcntl(2): descriptor flags, status flags,
// F_DUPFD*, record locks (F_SETLK/F_GETLK/F_OFD_*), pipe size.
#include <sys/resource.h>

#include "test_util.h"

namespace {

TEST(Dup, ReturnsLowestFreeAndSharesOffset) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "abcdef"));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  Fd g(dup(f.get()));
  ASSERT_TRUE(g.valid());
  EXPECT_NE(f.get(), g.get());
  char c;
  ASSERT_RET(1, read(f.get(), &c, 1));
  ASSERT_RET(1, read(g.get(), &c, 1));
  EXPECT_EQ(c, 'b');
}

TEST(Dup, ClearsCloexec) {
  Fd f(open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd g(dup(f.get()));
  EXPECT_EQ(fcntl(g.get(), F_GETFD), 0);
}

TEST(Dup, BadFdIsEBADF) { EXPECT_ERRNO(EBADF, dup(-1)); }

TEST(Dup2, ReplacesTargetAtomically) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  Fd target(open("/dev/null", O_RDONLY));
  ASSERT_RET(target.get(), dup2(w.get(), target.get()));
  EXPECT_RET(1, write(target.get(), "z", 1));
  char c;
  EXPECT_RET(1, read(r.get(), &c, 1));
}

TEST(Dup2, SameFdReturnsItWithoutClosing) {
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_RET(f.get(), dup2(f.get(), f.get()));
  EXPECT_OK(fcntl(f.get(), F_GETFD));
}

TEST(Dup2, SameInvalidFdIsEBADF) { EXPECT_ERRNO(EBADF, dup2(9999, 9999)); }

TEST(Dup2, NewfdBeyondRlimitIsEBADF) {
  struct rlimit rl;
  ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EBADF, dup2(f.get(), (int)rl.rlim_cur));
}

TEST(Dup3, SetsCloexec) {
  Fd f(open("/dev/null", O_RDONLY));
  Fd g(open("/dev/null", O_RDONLY));
  ASSERT_RET(g.get(), dup3(f.get(), g.get(), O_CLOEXEC));
  EXPECT_EQ(fcntl(g.get(), F_GETFD), FD_CLOEXEC);
}

TEST(Dup3, SameFdIsEINVAL) {
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EINVAL, dup3(f.get(), f.get(), 0));
}

TEST(Dup3, BadFlagsAreEINVAL) {
  Fd f(open("/dev/null", O_RDONLY));
  Fd g(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EINVAL, dup3(f.get(), g.get(), O_NONBLOCK));
}

TEST(Fcntl, DupfdReturnsAtLeastArg) {
  Fd f(open("/dev/null", O_RDONLY));
  Fd g(fcntl(f.get(), F_DUPFD, 300));
  ASSERT_TRUE(g.valid());
  EXPECT_GE(g.get(), 300);
  EXPECT_EQ(fcntl(g.get(), F_GETFD), 0);
  Fd h(fcntl(f.get(), F_DUPFD_CLOEXEC, 300));
  EXPECT_GT(h.get(), 300);
  EXPECT_EQ(fcntl(h.get(), F_GETFD), FD_CLOEXEC);
}

TEST(Fcntl, DupfdNegativeArgIsEINVAL) {
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EINVAL, fcntl(f.get(), F_DUPFD, -1));
}

TEST(Fcntl, SetfdGetfd) {
  Fd f(open("/dev/null", O_RDONLY));
  ASSERT_OK(fcntl(f.get(), F_SETFD, FD_CLOEXEC));
  EXPECT_EQ(fcntl(f.get(), F_GETFD), FD_CLOEXEC);
  ASSERT_OK(fcntl(f.get(), F_SETFD, 0));
  EXPECT_EQ(fcntl(f.get(), F_GETFD), 0);
}

TEST(Fcntl, CloexecIsPerDescriptor) {
  Fd f(open("/dev/null", O_RDONLY));
  Fd g(dup(f.get()));
  ASSERT_OK(fcntl(f.get(), F_SETFD, FD_CLOEXEC));
  EXPECT_EQ(fcntl(g.get(), F_GETFD), 0);
}

TEST(Fcntl, SetflChangesNonblockAndAppendOnly) {
  TempDir d;
  Fd f(open(d.Sub("a").c_str(), O_RDONLY | O_CREAT, 0644));
  ASSERT_OK(fcntl(f.get(), F_SETFL, O_NONBLOCK | O_APPEND | O_WRONLY));
  int fl = fcntl(f.get(), F_GETFL);
  EXPECT_TRUE(fl & O_NONBLOCK);
  EXPECT_TRUE(fl & O_APPEND);
  EXPECT_EQ(fl & O_ACCMODE, O_RDONLY);  // access mode is ignored by F_SETFL
}

TEST(Fcntl, StatusFlagsSharedBetweenDups) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  Fd r2(dup(r.get()));
  ASSERT_OK(fcntl(r.get(), F_SETFL, O_NONBLOCK));
  EXPECT_TRUE(fcntl(r2.get(), F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_ERRNO(EAGAIN, read(r2.get(), &c, 1));
}

TEST(Fcntl, BadCommandIsEINVAL) {
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EINVAL, fcntl(f.get(), 0x7fff));
}

TEST(Fcntl, BadFdIsEBADF) { EXPECT_ERRNO(EBADF, fcntl(-1, F_GETFD)); }

TEST(Fcntl, PipeSize) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  int sz = fcntl(w.get(), F_GETPIPE_SZ);
  EXPECT_GE(sz, 4096);
  EXPECT_GE(fcntl(w.get(), F_SETPIPE_SZ, 1 << 16), 1 << 16);
  EXPECT_GE(fcntl(r.get(), F_GETPIPE_SZ), 1 << 16);
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EBADF, fcntl(f.get(), F_GETPIPE_SZ));
}

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("lock");
    fd_.reset(open(path_.c_str(), O_RDWR | O_CREAT, 0644));
    ASSERT_TRUE(fd_.valid());
    ASSERT_RET(100, write(fd_.get(), std::string(100, 'x').data(), 100));
  }
  static struct flock Lock(short type, off_t start, off_t len) {
    struct flock fl = {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    return fl;
  }
  TempDir dir_;
  std::string path_;
  Fd fd_;
};

TEST_F(LockTest, WriteLockBlocksOtherProcess) {
  struct flock fl = Lock(F_WRLCK, 0, 10);
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  std::string path = path_;
  EXPECT_CHILD_OK([&] {
    int fd = open(path.c_str(), O_RDWR);
    struct flock l = Lock(F_WRLCK, 5, 1);
    CHILD_CHECK(fcntl(fd, F_SETLK, &l) == -1);
    CHILD_CHECK(errno == EAGAIN || errno == EACCES);
    struct flock r = Lock(F_RDLCK, 20, 10);
    CHILD_CHECK(fcntl(fd, F_SETLK, &r) == 0);
    return 0;
  });
}

TEST_F(LockTest, GetlkReportsConflictingOwner) {
  struct flock fl = Lock(F_WRLCK, 10, 20);
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  pid_t me = getpid();
  std::string path = path_;
  EXPECT_CHILD_OK([&] {
    int fd = open(path.c_str(), O_RDWR);
    struct flock q = Lock(F_RDLCK, 0, 100);
    CHILD_CHECK(fcntl(fd, F_GETLK, &q) == 0);
    CHILD_CHECK(q.l_type == F_WRLCK);
    CHILD_CHECK(q.l_pid == me);
    CHILD_CHECK(q.l_start == 10 && q.l_len == 20);
    struct flock q2 = Lock(F_RDLCK, 50, 10);
    CHILD_CHECK(fcntl(fd, F_GETLK, &q2) == 0);
    CHILD_CHECK(q2.l_type == F_UNLCK);
    return 0;
  });
}

TEST_F(LockTest, ReadLocksShare) {
  struct flock fl = Lock(F_RDLCK, 0, 0);
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  std::string path = path_;
  EXPECT_CHILD_OK([&] {
    int fd = open(path.c_str(), O_RDONLY);
    struct flock l = Lock(F_RDLCK, 0, 0);
    CHILD_CHECK(fcntl(fd, F_SETLK, &l) == 0);
    return 0;
  });
}

TEST_F(LockTest, UnlockReleases) {
  struct flock fl = Lock(F_WRLCK, 0, 0);
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  fl.l_type = F_UNLCK;
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  std::string path = path_;
  EXPECT_CHILD_OK([&] {
    int fd = open(path.c_str(), O_RDWR);
    struct flock l = Lock(F_WRLCK, 0, 0);
    CHILD_CHECK(fcntl(fd, F_SETLK, &l) == 0);
    return 0;
  });
}

TEST_F(LockTest, CloseOfAnyFdReleasesProcessLocks) {
  struct flock fl = Lock(F_WRLCK, 0, 0);
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  int other = open(path_.c_str(), O_RDONLY);
  ASSERT_OK(other);
  ASSERT_OK(close(other));  // POSIX: this drops the lock held via fd_.
  std::string path = path_;
  EXPECT_CHILD_OK([&] {
    int fd = open(path.c_str(), O_RDWR);
    struct flock l = Lock(F_WRLCK, 0, 0);
    CHILD_CHECK(fcntl(fd, F_SETLK, &l) == 0);
    return 0;
  });
}

TEST_F(LockTest, WriteLockOnReadOnlyFdIsEBADF) {
  Fd ro(open(path_.c_str(), O_RDONLY));
  struct flock fl = Lock(F_WRLCK, 0, 0);
  EXPECT_ERRNO(EBADF, fcntl(ro.get(), F_SETLK, &fl));
}

TEST_F(LockTest, BadTypeIsEINVAL) {
  struct flock fl = Lock(42, 0, 0);
  EXPECT_ERRNO(EINVAL, fcntl(fd_.get(), F_SETLK, &fl));
}

TEST_F(LockTest, SetlkwWaitsForRelease) {
  struct flock fl = Lock(F_WRLCK, 0, 0);
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  std::string path = path_;
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(path.c_str(), O_RDWR);
    struct flock l = Lock(F_WRLCK, 0, 0);
    write(p[1], "r", 1);
    if (fcntl(fd, F_SETLKW, &l) != 0) _exit(1);
    _exit(0);
  }
  char c;
  ASSERT_RET(1, read(p[0], &c, 1));
  SleepMs(100);
  int status;
  EXPECT_RET(0, waitpid(pid, &status, WNOHANG));  // still blocked
  fl.l_type = F_UNLCK;
  ASSERT_OK(fcntl(fd_.get(), F_SETLK, &fl));
  ASSERT_RET(pid, waitpid(pid, &status, 0));
  EXPECT_TRUE(ExitedWith(status, 0));
  close(p[0]);
  close(p[1]);
}

TEST_F(LockTest, OfdLocksConflictBetweenOpenFileDescriptions) {
  struct flock fl = Lock(F_WRLCK, 0, 10);
  ASSERT_OK(fcntl(fd_.get(), F_OFD_SETLK, &fl));
  Fd other(open(path_.c_str(), O_RDWR));
  struct flock l = Lock(F_WRLCK, 0, 10);
  EXPECT_ERRNO(EAGAIN, fcntl(other.get(), F_OFD_SETLK, &l));
  // A dup shares the open file description and therefore the lock.
  Fd dupfd(dup(fd_.get()));
  struct flock l2 = Lock(F_WRLCK, 0, 10);
  EXPECT_OK(fcntl(dupfd.get(), F_OFD_SETLK, &l2));
}

TEST_F(LockTest, OfdLockRequiresZeroPid) {
  struct flock fl = Lock(F_WRLCK, 0, 10);
  fl.l_pid = 1;
  EXPECT_ERRNO(EINVAL, fcntl(fd_.get(), F_OFD_SETLK, &fl));
}

}  // namespace
