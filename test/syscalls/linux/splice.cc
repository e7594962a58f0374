// sendfile(2), splice(2), tee(2), vmsplice(2), copy_file_range(2).
#include <sys/sendfile.h>
#include <sys/uio.h>

#include "test_util.h"

namespace {

struct Pipe {
  explicit Pipe(int flags = 0) {
    int p[2];
    if (pipe2(p, flags) == 0) {
      r.reset(p[0]);
      w.reset(p[1]);
    }
  }
  Fd r, w;
};

class SpliceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = Pattern(10000, 5);
    ASSERT_TRUE(WriteFile(dir_.Sub("src"), data_));
    src_.reset(open(dir_.Sub("src").c_str(), O_RDONLY));
    dst_.reset(open(dir_.Sub("dst").c_str(), O_RDWR | O_CREAT, 0644));
    ASSERT_TRUE(src_.valid() && dst_.valid());
  }
  std::string Dst() {
    std::string s;
    ReadFile(dir_.Sub("dst"), &s);
    return s;
  }
  TempDir dir_;
  std::string data_;
  Fd src_, dst_;
};

TEST_F(SpliceTest, SendfileCopiesWholeFile) {
  EXPECT_RET(10000, sendfile(dst_.get(), src_.get(), nullptr, 10000));
  EXPECT_EQ(Dst(), data_);
  EXPECT_RET(10000, lseek(src_.get(), 0, SEEK_CUR));
}

TEST_F(SpliceTest, SendfileWithOffsetLeavesFilePosition) {
  off_t off = 100;
  EXPECT_RET(50, sendfile(dst_.get(), src_.get(), &off, 50));
  EXPECT_EQ(off, 150);
  EXPECT_RET(0, lseek(src_.get(), 0, SEEK_CUR));
  EXPECT_EQ(Dst(), data_.substr(100, 50));
}

TEST_F(SpliceTest, SendfileAtEofReturnsZero) {
  off_t off = 10000;
  EXPECT_RET(0, sendfile(dst_.get(), src_.get(), &off, 10));
}

TEST_F(SpliceTest, SendfileErrors) {
  EXPECT_ERRNO(EBADF, sendfile(-1, src_.get(), nullptr, 1));
  EXPECT_ERRNO(EBADF, sendfile(dst_.get(), -1, nullptr, 1));
  Fd wo(open(dir_.Sub("src").c_str(), O_WRONLY));
  EXPECT_ERRNO(EBADF, sendfile(dst_.get(), wo.get(), nullptr, 1));
  off_t neg = -1;
  EXPECT_ERRNO(EINVAL, sendfile(dst_.get(), src_.get(), &neg, 1));
}

TEST_F(SpliceTest, SendfileToPipe) {
  Pipe p;
  EXPECT_RET(100, sendfile(p.w.get(), src_.get(), nullptr, 100));
  char buf[100];
  ASSERT_RET(100, read(p.r.get(), buf, 100));
  EXPECT_EQ(std::string(buf, 100), data_.substr(0, 100));
}

TEST_F(SpliceTest, SpliceFileToPipeToFile) {
  Pipe p;
  loff_t in_off = 10;
  EXPECT_RET(500, splice(src_.get(), &in_off, p.w.get(), nullptr, 500, 0));
  EXPECT_EQ(in_off, 510);
  EXPECT_RET(500, splice(p.r.get(), nullptr, dst_.get(), nullptr, 500, 0));
  EXPECT_EQ(Dst(), data_.substr(10, 500));
}

TEST_F(SpliceTest, SpliceRequiresAPipe) {
  EXPECT_ERRNO(EINVAL, splice(src_.get(), nullptr, dst_.get(), nullptr, 10, 0));
}

TEST_F(SpliceTest, SpliceOffsetOnPipeIsESPIPE) {
  Pipe p;
  loff_t off = 0;
  ASSERT_RET(1, write(p.w.get(), "x", 1));
  EXPECT_ERRNO(ESPIPE, splice(p.r.get(), &off, dst_.get(), nullptr, 1, 0));
}

TEST_F(SpliceTest, SpliceInvalidFlagsIsEINVAL) {
  Pipe p;
  EXPECT_ERRNO(EINVAL, splice(src_.get(), nullptr, p.w.get(), nullptr, 1, 0x100));
}

TEST_F(SpliceTest, SpliceNonblockEmptyPipeIsEAGAIN) {
  Pipe p;
  Pipe q;
  EXPECT_ERRNO(EAGAIN, splice(p.r.get(), nullptr, q.w.get(), nullptr, 10, SPLICE_F_NONBLOCK));
}

TEST_F(SpliceTest, SpliceFromEmptyPipeWithNoWriterReturnsZero) {
  Pipe p;
  p.w.reset();
  EXPECT_RET(0, splice(p.r.get(), nullptr, dst_.get(), nullptr, 10, 0));
}

TEST(Tee, DuplicatesWithoutConsuming) {
  Pipe a, b;
  ASSERT_RET(5, write(a.w.get(), "hello", 5));
  EXPECT_RET(5, tee(a.r.get(), b.w.get(), 100, 0));
  char buf[8];
  EXPECT_RET(5, read(a.r.get(), buf, 8));
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_RET(5, read(b.r.get(), buf, 8));
  EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST(Tee, SamePipeIsEINVAL) {
  Pipe a;
  ASSERT_RET(1, write(a.w.get(), "x", 1));
  EXPECT_ERRNO(EINVAL, tee(a.r.get(), a.w.get(), 1, 0));
}

TEST(Tee, NonPipeIsEINVAL) {
  Pipe a;
  Fd f(open("/dev/null", O_WRONLY));
  EXPECT_ERRNO(EINVAL, tee(a.r.get(), f.get(), 1, SPLICE_F_NONBLOCK));
}

TEST(Tee, EmptyNonblockIsEAGAIN) {
  Pipe a, b;
  EXPECT_ERRNO(EAGAIN, tee(a.r.get(), b.w.get(), 1, SPLICE_F_NONBLOCK));
}

TEST(Splice, PipeToPipeMovesData) {
  Pipe a, b;
  ASSERT_RET(6, write(a.w.get(), "abcdef", 6));
  EXPECT_RET(4, splice(a.r.get(), nullptr, b.w.get(), nullptr, 4, 0));
  char buf[8];
  EXPECT_RET(4, read(b.r.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 4), "abcd");
  EXPECT_RET(2, read(a.r.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 2), "ef");
}

TEST(Vmsplice, UserMemoryIntoPipe) {
  Pipe p;
  char msg[] = "vmsplice!";
  struct iovec iov = {msg, 9};
  EXPECT_RET(9, vmsplice(p.w.get(), &iov, 1, 0));
  char buf[16];
  EXPECT_RET(9, read(p.r.get(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 9), "vmsplice!");
}

TEST_F(SpliceTest, CopyFileRangeCopiesAndAdvances) {
  loff_t in = 0, out = 0;
  ssize_t n = copy_file_range(src_.get(), &in, dst_.get(), &out, 4000, 0);
  ASSERT_EQ(n, 4000) << strerror(errno);
  EXPECT_EQ(in, 4000);
  EXPECT_EQ(out, 4000);
  EXPECT_EQ(Dst(), data_.substr(0, 4000));
  EXPECT_ERRNO(EINVAL, copy_file_range(src_.get(), &in, dst_.get(), &out, 10, 1));
}

}  // namespace
