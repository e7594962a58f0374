// pipe(2), pipe2(2) and pipe I/O semantics from pipe(7).
#include <sys/ioctl.h>
#include <limits.h>

#include "test_util.h"

namespace {

struct Pipe {
  Pipe(int flags = 0) {
    int p[2];
    if (pipe2(p, flags) == 0) {
      r.reset(p[0]);
      w.reset(p[1]);
    }
  }
  Fd r, w;
};

TEST(Pipe, DataFlowsInOrder) {
  Pipe p;
  ASSERT_TRUE(p.r.valid());
  ASSERT_RET(5, write(p.w.get(), "hello", 5));
  ASSERT_RET(6, write(p.w.get(), " world", 6));
  char buf[32];
  EXPECT_RET(11, read(p.r.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 11), "hello world");
}

TEST(Pipe, EofAfterWriterClosed) {
  Pipe p;
  ASSERT_RET(1, write(p.w.get(), "a", 1));
  p.w.reset();
  char buf[4];
  EXPECT_RET(1, read(p.r.get(), buf, 4));
  EXPECT_RET(0, read(p.r.get(), buf, 4));
}

TEST(Pipe, EndsHaveCorrectAccessModes) {
  Pipe p;
  EXPECT_EQ(fcntl(p.r.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fcntl(p.w.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  char c;
  EXPECT_ERRNO(EBADF, write(p.r.get(), "x", 1));
  EXPECT_ERRNO(EBADF, read(p.w.get(), &c, 1));
}

TEST(Pipe, BadArrayIsEFAULT) { EXPECT_ERRNO(EFAULT, pipe((int*)kBadPtr)); }

TEST(Pipe2, BadFlagsAreEINVAL) {
  int p[2];
  EXPECT_ERRNO(EINVAL, pipe2(p, O_RDWR | 0x1000000));
}

TEST(Pipe2, CloexecAndNonblock) {
  Pipe p(O_CLOEXEC | O_NONBLOCK);
  EXPECT_EQ(fcntl(p.r.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(p.w.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_TRUE(fcntl(p.r.get(), F_GETFL) & O_NONBLOCK);
  char c;
  EXPECT_ERRNO(EAGAIN, read(p.r.get(), &c, 1));
}

TEST(Pipe2, PacketModeKeepsWriteBoundaries) {
  Pipe p(O_DIRECT);
  if (!p.r.valid()) GTEST_SKIP() << "O_DIRECT pipes unsupported";
  ASSERT_RET(3, write(p.w.get(), "abc", 3));
  ASSERT_RET(2, write(p.w.get(), "de", 2));
  char buf[16];
  EXPECT_RET(3, read(p.r.get(), buf, sizeof(buf)));
  EXPECT_RET(2, read(p.r.get(), buf, sizeof(buf)));
}

TEST(Pipe, FullNonblockingPipeIsEAGAIN) {
  Pipe p(O_NONBLOCK);
  std::string chunk(4096, 'x');
  size_t total = 0;
  for (;;) {
    ssize_t n = write(p.w.get(), chunk.data(), chunk.size());
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    total += n;
    ASSERT_LT(total, 64u << 20) << "pipe never filled";
  }
  EXPECT_EQ(total, (size_t)fcntl(p.w.get(), F_GETPIPE_SZ));
}

TEST(Pipe, PartialWriteWhenNearlyFullNonblocking) {
  Pipe p(O_NONBLOCK);
  int cap = fcntl(p.w.get(), F_GETPIPE_SZ);
  std::string big(cap - 10, 'a');
  ASSERT_RET(cap - 10, write(p.w.get(), big.data(), big.size()));
  // More than PIPE_BUF bytes may be written partially.
  std::string more(PIPE_BUF * 2, 'b');
  ssize_t n = write(p.w.get(), more.data(), more.size());
  if (n == -1) {
    EXPECT_EQ(errno, EAGAIN);
  } else {
    EXPECT_GT(n, 0);
    EXPECT_LT(n, (ssize_t)more.size());
  }
}

TEST(Pipe, AtomicSmallWriteWhenNoRoomIsEAGAIN) {
  Pipe p(O_NONBLOCK);
  int cap = fcntl(p.w.get(), F_GETPIPE_SZ);
  std::string big(cap - 10, 'a');
  ASSERT_RET(cap - 10, write(p.w.get(), big.data(), big.size()));
  // A write of <= PIPE_BUF bytes is atomic: all or nothing.
  std::string small(100, 'b');
  EXPECT_ERRNO(EAGAIN, write(p.w.get(), small.data(), small.size()));
}

TEST(Pipe, FionreadReportsQueuedBytes) {
  Pipe p;
  ASSERT_RET(7, write(p.w.get(), "1234567", 7));
  int n = -1;
  ASSERT_OK(ioctl(p.r.get(), FIONREAD, &n));
  EXPECT_EQ(n, 7);
}

TEST(Pipe, BlockingReadWakesOnWrite) {
  Pipe p;
  pid_t pid = fork();
  if (pid == 0) {
    SleepMs(50);
    write(p.w.get(), "w", 1);
    _exit(0);
  }
  char c = 0;
  EXPECT_RET(1, read(p.r.get(), &c, 1));
  EXPECT_EQ(c, 'w');
  waitpid(pid, nullptr, 0);
}

TEST(Pipe, LargeTransferAcrossProcesses) {
  Pipe p;
  const size_t kSize = 1 << 20;
  pid_t pid = fork();
  if (pid == 0) {
    p.r.reset();
    std::string data = Pattern(kSize, 3);
    _exit(WriteFull(p.w.get(), data.data(), data.size()) == (ssize_t)kSize ? 0 : 1);
  }
  p.w.reset();
  std::string got(kSize, '\0');
  EXPECT_RET(kSize, ReadFull(p.r.get(), &got[0], kSize));
  EXPECT_EQ(got, Pattern(kSize, 3));
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST(Pipe, ProcFdLinkNamesPipe) {
  Pipe p;
  char buf[64] = {};
  std::string link = "/proc/self/fd/" + std::to_string(p.r.get());
  ASSERT_OK(readlink(link.c_str(), buf, sizeof(buf) - 1));
  EXPECT_EQ(strncmp(buf, "pipe:[", 6), 0) << buf;
}

// Reopening an anonymous pipe through /proc/self/fd opens the same pipe
// with the requested access and, unlike a FIFO, does not wait for a
// writer even when none is left (`echo x | cat /proc/self/fd/0`).
TEST(Pipe, ReopenThroughProcFdDoesNotWaitForWriter) {
  EXPECT_CHILD_OK([] {
    alarm(10);  // a wait for a writer would hang: die instead
    Pipe p;
    CHILD_CHECK(p.r.valid());
    CHILD_CHECK(write(p.w.get(), "x", 1) == 1);
    p.w.reset();
    std::string link = "/proc/self/fd/" + std::to_string(p.r.get());
    Fd r(open(link.c_str(), O_RDONLY));
    CHILD_CHECK(r.valid());
    char buf[4];
    CHILD_CHECK(read(r.get(), buf, sizeof(buf)) == 1 && buf[0] == 'x');
    CHILD_CHECK(read(r.get(), buf, sizeof(buf)) == 0);
    return 0;
  });
}

TEST(Pipe, ReopenReadEndForWritingThroughProcFd) {
  Pipe p;
  ASSERT_TRUE(p.r.valid());
  std::string link = "/proc/self/fd/" + std::to_string(p.r.get());
  Fd w(open(link.c_str(), O_WRONLY | O_NONBLOCK));
  ASSERT_TRUE(w.valid());
  ASSERT_RET(2, write(w.get(), "hi", 2));
  char buf[4];
  EXPECT_RET(2, read(p.r.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 2), "hi");
}

TEST(Fifo, MkfifoOpenNonblockingReaderThenWriter) {
  TempDir d;
  ASSERT_OK(mkfifo(d.Sub("f").c_str(), 0600));
  // A non-blocking write-only open with no reader fails with ENXIO.
  EXPECT_ERRNO(ENXIO, open(d.Sub("f").c_str(), O_WRONLY | O_NONBLOCK));
  Fd r(open(d.Sub("f").c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_TRUE(r.valid());
  Fd w(open(d.Sub("f").c_str(), O_WRONLY | O_NONBLOCK));
  ASSERT_TRUE(w.valid());
  ASSERT_RET(2, write(w.get(), "ok", 2));
  char buf[2];
  EXPECT_RET(2, read(r.get(), buf, 2));
}

}  // namespace
