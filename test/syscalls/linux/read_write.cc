// read(2), write(2), pread(2), pwrite(2), readv(2), writev(2),
// preadv2(2)/pwritev2(2).
#include <sys/uio.h>
#include <sys/socket.h>
#include <limits.h>

#include "test_util.h"

namespace {

class ReadWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("file");
    fd_.reset(open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
    ASSERT_TRUE(fd_.valid()) << strerror(errno);
  }
  TempDir dir_;
  std::string path_;
  Fd fd_;
};

// Reading a directory is EISDIR for read(2) and pread(2) alike, whatever
// filesystem holds it.
TEST(ReadWrite, ReadOfDirectoryIsEISDIR) {
  TempDir tmp;
  for (const char* path : {"/", "/proc", "/sys", "/dev", tmp.path().c_str()}) {
    Fd d(open(path, O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(d.valid()) << path << ": " << strerror(errno);
    char buf[8];
    SCOPED_TRACE(path);
    EXPECT_ERRNO(EISDIR, read(d.get(), buf, sizeof(buf)));
    EXPECT_ERRNO(EISDIR, pread(d.get(), buf, sizeof(buf), 0));
  }
}

TEST_F(ReadWriteTest, WriteThenReadBack) {
  const std::string data = Pattern(1000);
  EXPECT_RET(1000, write(fd_.get(), data.data(), data.size()));
  EXPECT_RET(0, lseek(fd_.get(), 0, SEEK_SET));
  std::string got(1000, '\0');
  EXPECT_RET(1000, read(fd_.get(), &got[0], got.size()));
  EXPECT_EQ(got, data);
}

TEST_F(ReadWriteTest, ReadAtEofReturnsZero) {
  char c;
  EXPECT_RET(0, read(fd_.get(), &c, 1));
}

TEST_F(ReadWriteTest, ShortReadNearEof) {
  ASSERT_RET(10, write(fd_.get(), "0123456789", 10));
  ASSERT_RET(6, lseek(fd_.get(), 6, SEEK_SET));
  char buf[100];
  EXPECT_RET(4, read(fd_.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 4), "6789");
}

TEST_F(ReadWriteTest, ZeroLengthReadAndWrite) {
  EXPECT_RET(0, write(fd_.get(), "x", 0));
  EXPECT_RET(0, read(fd_.get(), nullptr, 0));
  struct stat st;
  ASSERT_OK(fstat(fd_.get(), &st));
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(ReadWriteTest, ReadAdvancesOffset) {
  ASSERT_RET(10, write(fd_.get(), "0123456789", 10));
  ASSERT_OK(lseek(fd_.get(), 0, SEEK_SET));
  char buf[3];
  ASSERT_RET(3, read(fd_.get(), buf, 3));
  EXPECT_RET(3, lseek(fd_.get(), 0, SEEK_CUR));
  ASSERT_RET(3, read(fd_.get(), buf, 3));
  EXPECT_EQ(std::string(buf, 3), "345");
}

TEST_F(ReadWriteTest, ReadBadFd) {
  char c;
  EXPECT_ERRNO(EBADF, read(-1, &c, 1));
  EXPECT_ERRNO(EBADF, read(100000, &c, 1));
}

TEST_F(ReadWriteTest, WriteBadFd) {
  EXPECT_ERRNO(EBADF, write(-1, "x", 1));
}

TEST_F(ReadWriteTest, ReadFromWriteOnlyFd) {
  Fd wo(open(path_.c_str(), O_WRONLY));
  ASSERT_TRUE(wo.valid());
  char c;
  EXPECT_ERRNO(EBADF, read(wo.get(), &c, 1));
}

TEST_F(ReadWriteTest, WriteToReadOnlyFd) {
  Fd ro(open(path_.c_str(), O_RDONLY));
  ASSERT_TRUE(ro.valid());
  EXPECT_ERRNO(EBADF, write(ro.get(), "x", 1));
}

TEST_F(ReadWriteTest, ReadIntoBadBuffer) {
  ASSERT_RET(4, write(fd_.get(), "abcd", 4));
  ASSERT_OK(lseek(fd_.get(), 0, SEEK_SET));
  EXPECT_ERRNO(EFAULT, read(fd_.get(), kBadPtr, 4));
}

TEST_F(ReadWriteTest, WriteFromBadBuffer) {
  EXPECT_ERRNO(EFAULT, write(fd_.get(), kBadPtr, 4));
}

TEST_F(ReadWriteTest, ReadDirectoryIsEISDIR) {
  Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(d.valid());
  char c;
  EXPECT_ERRNO(EISDIR, read(d.get(), &c, 1));
}

TEST_F(ReadWriteTest, PartialFaultAfterValidPrefix) {
  // A buffer whose second page is unmapped: the kernel copies what it can
  // and returns a short count (or EFAULT if nothing was copied).
  size_t ps = PageSize();
  Mapping m = MapAnon(2 * ps);
  ASSERT_TRUE(m.ok());
  ASSERT_OK(munmap(m.ptr() + ps, ps));
  std::string data = Pattern(2 * ps);
  ASSERT_RET(2 * ps, write(fd_.get(), data.data(), data.size()));
  ASSERT_OK(lseek(fd_.get(), 0, SEEK_SET));
  ssize_t n = read(fd_.get(), m.ptr() + ps - 100, 200);
  EXPECT_EQ(n, 100);
  EXPECT_EQ(memcmp(m.ptr() + ps - 100, data.data(), 100), 0);
  ASSERT_OK(mmap(m.ptr() + ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
}

TEST_F(ReadWriteTest, AppendModeWritesAtEnd) {
  ASSERT_RET(3, write(fd_.get(), "abc", 3));
  Fd a(open(path_.c_str(), O_WRONLY | O_APPEND));
  ASSERT_TRUE(a.valid());
  ASSERT_OK(lseek(a.get(), 0, SEEK_SET));
  ASSERT_RET(3, write(a.get(), "def", 3));
  EXPECT_RET(6, lseek(a.get(), 0, SEEK_CUR));
  std::string got;
  ASSERT_TRUE(ReadFile(path_, &got));
  EXPECT_EQ(got, "abcdef");
}

TEST_F(ReadWriteTest, WriteBeyondEofLeavesHoleOfZeros) {
  ASSERT_OK(lseek(fd_.get(), 100, SEEK_SET));
  ASSERT_RET(1, write(fd_.get(), "z", 1));
  std::string got;
  ASSERT_TRUE(ReadFile(path_, &got));
  ASSERT_EQ(got.size(), 101u);
  EXPECT_EQ(got.substr(0, 100), std::string(100, '\0'));
  EXPECT_EQ(got[100], 'z');
}

TEST_F(ReadWriteTest, PreadDoesNotMoveOffset) {
  ASSERT_RET(10, write(fd_.get(), "0123456789", 10));
  ASSERT_OK(lseek(fd_.get(), 2, SEEK_SET));
  char buf[4];
  EXPECT_RET(4, pread(fd_.get(), buf, 4, 5));
  EXPECT_EQ(std::string(buf, 4), "5678");
  EXPECT_RET(2, lseek(fd_.get(), 0, SEEK_CUR));
}

TEST_F(ReadWriteTest, PwriteDoesNotMoveOffset) {
  ASSERT_RET(4, pwrite(fd_.get(), "wxyz", 4, 6));
  EXPECT_RET(0, lseek(fd_.get(), 0, SEEK_CUR));
  struct stat st;
  ASSERT_OK(fstat(fd_.get(), &st));
  EXPECT_EQ(st.st_size, 10);
}

TEST_F(ReadWriteTest, PreadNegativeOffsetIsEINVAL) {
  char c;
  EXPECT_ERRNO(EINVAL, pread(fd_.get(), &c, 1, -1));
  EXPECT_ERRNO(EINVAL, pwrite(fd_.get(), &c, 1, -1));
}

TEST_F(ReadWriteTest, PreadPastEofReturnsZero) {
  ASSERT_RET(3, write(fd_.get(), "abc", 3));
  char c;
  EXPECT_RET(0, pread(fd_.get(), &c, 1, 1000));
}

TEST(ReadWriteSpecial, PreadOnPipeIsESPIPE) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  char c;
  EXPECT_ERRNO(ESPIPE, pread(r.get(), &c, 1, 0));
  EXPECT_ERRNO(ESPIPE, pwrite(w.get(), &c, 1, 0));
}

TEST_F(ReadWriteTest, WritevGathersInOrder) {
  struct iovec iov[3] = {{(void*)"ab", 2}, {(void*)"", 0}, {(void*)"cde", 3}};
  EXPECT_RET(5, writev(fd_.get(), iov, 3));
  std::string got;
  ASSERT_TRUE(ReadFile(path_, &got));
  EXPECT_EQ(got, "abcde");
}

TEST_F(ReadWriteTest, ReadvScattersInOrder) {
  ASSERT_RET(7, write(fd_.get(), "1234567", 7));
  ASSERT_OK(lseek(fd_.get(), 0, SEEK_SET));
  char a[2], b[3], c[10];
  struct iovec iov[3] = {{a, 2}, {b, 3}, {c, 10}};
  EXPECT_RET(7, readv(fd_.get(), iov, 3));
  EXPECT_EQ(std::string(a, 2), "12");
  EXPECT_EQ(std::string(b, 3), "345");
  EXPECT_EQ(std::string(c, 2), "67");
}

TEST_F(ReadWriteTest, ReadvZeroIovecs) {
  EXPECT_RET(0, readv(fd_.get(), nullptr, 0));
  EXPECT_RET(0, writev(fd_.get(), nullptr, 0));
}

TEST_F(ReadWriteTest, IovcntTooLargeIsEINVAL) {
  struct iovec iov = {(void*)"a", 1};
  EXPECT_ERRNO(EINVAL, writev(fd_.get(), &iov, IOV_MAX + 1));
  EXPECT_ERRNO(EINVAL, readv(fd_.get(), &iov, -1));
}

TEST_F(ReadWriteTest, IovecArrayBadPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, writev(fd_.get(), (struct iovec*)kBadPtr, 1));
}

TEST_F(ReadWriteTest, NegativeIovLenIsEINVAL) {
  char buf[4];
  struct iovec iov[2] = {{buf, 1}, {buf, (size_t)-1}};
  EXPECT_ERRNO(EINVAL, writev(fd_.get(), iov, 2));
}

TEST_F(ReadWriteTest, PreadvPwritevAtOffset) {
  struct iovec w[2] = {{(void*)"he", 2}, {(void*)"llo", 3}};
  EXPECT_RET(5, pwritev(fd_.get(), w, 2, 3));
  char a[3], b[5];
  struct iovec r[2] = {{a, 3}, {b, 5}};
  EXPECT_RET(8, preadv(fd_.get(), r, 2, 0));
  EXPECT_EQ(std::string(a, 3), std::string(3, '\0'));
  EXPECT_EQ(std::string(b, 5), "hello");
  EXPECT_RET(0, lseek(fd_.get(), 0, SEEK_CUR));
}

TEST_F(ReadWriteTest, Preadv2OffsetMinusOneUsesFilePosition) {
  ASSERT_RET(6, write(fd_.get(), "abcdef", 6));
  ASSERT_OK(lseek(fd_.get(), 2, SEEK_SET));
  char a[2];
  struct iovec r = {a, 2};
  EXPECT_RET(2, preadv2(fd_.get(), &r, 1, -1, 0));
  EXPECT_EQ(std::string(a, 2), "cd");
  EXPECT_RET(4, lseek(fd_.get(), 0, SEEK_CUR));
}

TEST_F(ReadWriteTest, Pwritev2UnknownFlagIsEOPNOTSUPP) {
  struct iovec w = {(void*)"x", 1};
  EXPECT_ERRNO(EOPNOTSUPP, pwritev2(fd_.get(), &w, 1, 0, 0x40000000));
}

#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif

TEST_F(ReadWriteTest, Pwritev2AppendWritesAtEndWhateverTheOffset) {
  ASSERT_RET(4, write(fd_.get(), "abcd", 4));
  struct iovec w = {(void*)"XY", 2};
  EXPECT_RET(2, pwritev2(fd_.get(), &w, 1, 1, RWF_APPEND));
  char got[7] = {};
  EXPECT_RET(6, pread(fd_.get(), got, sizeof got, 0));
  EXPECT_EQ(std::string(got, 6), "abcdXY");
}

TEST_F(ReadWriteTest, Pwritev2SyncFlagsWriteAtOffset) {
  struct iovec w = {(void*)"sync", 4};
  EXPECT_RET(4, pwritev2(fd_.get(), &w, 1, 0, RWF_DSYNC));
  EXPECT_RET(4, pwritev2(fd_.get(), &w, 1, 4, RWF_SYNC | RWF_HIPRI));
  char got[9] = {};
  EXPECT_RET(8, pread(fd_.get(), got, sizeof got, 0));
  EXPECT_EQ(std::string(got, 8), "syncsync");
  // An offset below -1 is invalid; -1 is the file offset, which moves.
  EXPECT_ERRNO(EINVAL, pwritev2(fd_.get(), &w, 1, -2, RWF_DSYNC));
  EXPECT_RET(4, pwritev2(fd_.get(), &w, 1, -1, RWF_DSYNC));
  EXPECT_RET(4, lseek(fd_.get(), 0, SEEK_CUR));
}

TEST(ReadWriteSpecial, Preadv2NowaitOnEmptyPipeIsEAGAIN) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  char b[4];
  struct iovec iov = {b, sizeof b};
  EXPECT_ERRNO(EAGAIN, preadv2(r.get(), &iov, 1, -1, RWF_NOWAIT));
  ASSERT_RET(2, write(w.get(), "hi", 2));
  EXPECT_RET(2, preadv2(r.get(), &iov, 1, -1, RWF_NOWAIT));
  EXPECT_EQ(std::string(b, 2), "hi");
}

TEST_F(ReadWriteTest, SyncfsChecksTheDescriptor) {
  ASSERT_RET(1, write(fd_.get(), "x", 1));
  EXPECT_OK(syncfs(fd_.get()));
  EXPECT_ERRNO(EBADF, syncfs(-1));
  sync();
}

TEST(ReadWriteSpecial, WriteToPipeWithNoReaderRaisesSIGPIPE) {
  EXPECT_TRUE(KilledBy(RunInChild([] {
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    close(p[0]);
    signal(SIGPIPE, SIG_DFL);
    write(p[1], "x", 1);
    return 0;
  }), SIGPIPE));
}

TEST(ReadWriteSpecial, WriteToPipeWithNoReaderIgnoredIsEPIPE) {
  EXPECT_CHILD_OK([] {
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    CHILD_CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE);
    return 0;
  });
}

TEST(ReadWriteSpecial, ReadInterruptedBySignalIsEINTR) {
  EXPECT_CHILD_OK([] {
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    CHILD_CHECK(InstallHandler(SIGALRM, NoopHandler) == 0);
    alarm(1);
    char c;
    CHILD_CHECK(read(p[0], &c, 1) == -1 && errno == EINTR);
    return 0;
  });
}

TEST(ReadWriteSpecial, ReadRestartedWithSARestart) {
  EXPECT_CHILD_OK([] {
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    CHILD_CHECK(InstallHandler(SIGALRM, NoopHandler, SA_RESTART) == 0);
    pid_t parent = getpid();
    pid_t writer = fork();
    if (writer == 0) {
      SleepMs(1500);
      write(p[1], "k", 1);
      _exit(0);
    }
    (void)parent;
    alarm(1);
    char c = 0;
    CHILD_CHECK(read(p[0], &c, 1) == 1);
    CHILD_CHECK(c == 'k');
    waitpid(writer, nullptr, 0);
    return 0;
  });
}

TEST(ReadWriteSpecial, DevNullAndDevZero) {
  Fd n(open("/dev/null", O_RDWR));
  ASSERT_TRUE(n.valid());
  EXPECT_RET(5, write(n.get(), "hello", 5));
  char buf[8];
  EXPECT_RET(0, read(n.get(), buf, 8));
  Fd z(open("/dev/zero", O_RDONLY));
  ASSERT_TRUE(z.valid());
  memset(buf, 'x', sizeof(buf));
  EXPECT_RET(8, read(z.get(), buf, 8));
  EXPECT_EQ(std::string(buf, 8), std::string(8, '\0'));
}

TEST(ReadWriteSpecial, DevFullWriteIsENOSPC) {
  Fd f(open("/dev/full", O_WRONLY));
  if (!f.valid()) GTEST_SKIP() << "/dev/full unavailable";
  EXPECT_ERRNO(ENOSPC, write(f.get(), "x", 1));
}

TEST(ReadWriteSpecial, NonblockingEmptyPipeIsEAGAIN) {
  int p[2];
  ASSERT_OK(pipe2(p, O_NONBLOCK));
  Fd r(p[0]), w(p[1]);
  char c;
  EXPECT_ERRNO(EAGAIN, read(r.get(), &c, 1));
}

}  // namespace
