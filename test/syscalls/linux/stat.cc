// stat(2), lstat(2), fstat(2), fstatat(2), statx(2), lseek(2).
#include "test_util.h"

namespace {

TEST(Stat, RegularFileFields) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "hello"));
  struct stat st;
  ASSERT_OK(stat(d.Sub("a").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_GT(st.st_blksize, 0);
}

TEST(Stat, DirectoryIsDir) {
  TempDir d;
  struct stat st;
  ASSERT_OK(stat(d.path().c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_GE(st.st_nlink, 2u);
}

TEST(Stat, MissingIsENOENT) {
  TempDir d;
  struct stat st;
  EXPECT_ERRNO(ENOENT, stat(d.Sub("x").c_str(), &st));
}

TEST(Stat, BadBufferIsEFAULT) {
  EXPECT_ERRNO(EFAULT, stat("/", (struct stat*)kBadPtr));
}

TEST(Stat, BadPathIsEFAULT) {
  struct stat st;
  EXPECT_ERRNO(EFAULT, stat((const char*)kBadPtr, &st));
}

TEST(Stat, TrailingSlashOnFileIsENOTDIR) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  struct stat st;
  EXPECT_ERRNO(ENOTDIR, stat((d.Sub("a") + "/").c_str(), &st));
}

TEST(Stat, LstatDoesNotFollowSymlink) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "hello"));
  ASSERT_OK(symlink("a", d.Sub("l").c_str()));
  struct stat st;
  ASSERT_OK(lstat(d.Sub("l").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_size, 1);  // length of the target string "a"
  ASSERT_OK(stat(d.Sub("l").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 5);
}

TEST(Stat, FstatMatchesStat) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "abc"));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  struct stat a, b;
  ASSERT_OK(fstat(f.get(), &a));
  ASSERT_OK(stat(d.Sub("a").c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  EXPECT_EQ(a.st_size, b.st_size);
}

TEST(Stat, FstatBadFdIsEBADF) {
  struct stat st;
  EXPECT_ERRNO(EBADF, fstat(-1, &st));
}

TEST(Stat, FstatPipeIsFifo) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  struct stat st;
  ASSERT_OK(fstat(r.get(), &st));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(Stat, DevNullIsCharDevice) {
  struct stat st;
  ASSERT_OK(stat("/dev/null", &st));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 1u);
  EXPECT_EQ(minor(st.st_rdev), 3u);
}

TEST(Fstatat, EmptyPathOperatesOnFd) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "12345678"));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  struct stat st;
  ASSERT_OK(fstatat(f.get(), "", &st, AT_EMPTY_PATH));
  EXPECT_EQ(st.st_size, 8);
  EXPECT_ERRNO(ENOENT, fstatat(f.get(), "", &st, 0));
}

TEST(Fstatat, SymlinkNofollow) {
  TempDir d;
  ASSERT_OK(symlink("nowhere", d.Sub("l").c_str()));
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  struct stat st;
  ASSERT_OK(fstatat(dir.get(), "l", &st, AT_SYMLINK_NOFOLLOW));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_ERRNO(ENOENT, fstatat(dir.get(), "l", &st, 0));
}

TEST(Fstatat, InvalidFlagIsEINVAL) {
  struct stat st;
  EXPECT_ERRNO(EINVAL, fstatat(AT_FDCWD, "/", &st, 0x40000000));
}

TEST(Statx, BasicFields) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "abcdef"));
  struct statx sx = {};
  int r = statx(AT_FDCWD, d.Sub("a").c_str(), 0, STATX_BASIC_STATS, &sx);
  if (r == -1 && errno == ENOSYS) GTEST_SKIP() << "no statx";
  ASSERT_OK(r);
  EXPECT_EQ(sx.stx_size, 6u);
  EXPECT_TRUE(S_ISREG(sx.stx_mode));
  EXPECT_EQ(sx.stx_mask & STATX_BASIC_STATS, (unsigned)STATX_BASIC_STATS);
  struct stat st;
  ASSERT_OK(stat(d.Sub("a").c_str(), &st));
  EXPECT_EQ(sx.stx_ino, st.st_ino);
}

TEST(Statx, ReservedMaskBitIsEINVAL) {
  struct statx sx;
  EXPECT_ERRNO(EINVAL, statx(AT_FDCWD, "/", 0, 0x80000000u, &sx));
}

TEST(Statx, InvalidSyncFlagsAreEINVAL) {
  struct statx sx;
  EXPECT_ERRNO(EINVAL, statx(AT_FDCWD, "/", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                             STATX_BASIC_STATS, &sx));
}

TEST(Stat, MtimeAdvancesOnWrite) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, d.Sub("a").c_str(), old, 0));
  Fd f(open(d.Sub("a").c_str(), O_WRONLY));
  ASSERT_RET(1, write(f.get(), "y", 1));
  struct stat st;
  ASSERT_OK(fstat(f.get(), &st));
  EXPECT_GT(st.st_mtime, 1000);
  EXPECT_GT(st.st_ctime, 1000);
}

class LseekTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_.reset(open(dir_.Sub("f").c_str(), O_RDWR | O_CREAT, 0644));
    ASSERT_TRUE(fd_.valid());
    ASSERT_RET(10, write(fd_.get(), "0123456789", 10));
  }
  TempDir dir_;
  Fd fd_;
};

TEST_F(LseekTest, SeekSetCurEnd) {
  EXPECT_RET(3, lseek(fd_.get(), 3, SEEK_SET));
  EXPECT_RET(5, lseek(fd_.get(), 2, SEEK_CUR));
  EXPECT_RET(4, lseek(fd_.get(), -1, SEEK_CUR));
  EXPECT_RET(8, lseek(fd_.get(), -2, SEEK_END));
  EXPECT_RET(15, lseek(fd_.get(), 5, SEEK_END));
}

TEST_F(LseekTest, NegativeResultIsEINVAL) {
  EXPECT_ERRNO(EINVAL, lseek(fd_.get(), -1, SEEK_SET));
  EXPECT_ERRNO(EINVAL, lseek(fd_.get(), -11, SEEK_END));
}

TEST_F(LseekTest, BadWhenceIsEINVAL) {
  EXPECT_ERRNO(EINVAL, lseek(fd_.get(), 0, 42));
}

TEST_F(LseekTest, BadFdIsEBADF) {
  EXPECT_ERRNO(EBADF, lseek(-1, 0, SEEK_SET));
}

TEST_F(LseekTest, PipeIsESPIPE) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  EXPECT_ERRNO(ESPIPE, lseek(r.get(), 0, SEEK_SET));
}

TEST_F(LseekTest, SeekDataAndHole) {
  // File of 10 bytes, no holes: data at 0, hole at EOF.
  EXPECT_RET(0, lseek(fd_.get(), 0, SEEK_DATA));
  EXPECT_RET(10, lseek(fd_.get(), 0, SEEK_HOLE));
  EXPECT_ERRNO(ENXIO, lseek(fd_.get(), 10, SEEK_DATA));
  EXPECT_ERRNO(ENXIO, lseek(fd_.get(), 11, SEEK_HOLE));
}

TEST_F(LseekTest, OffsetSharedBetweenDups) {
  int d2 = dup(fd_.get());
  ASSERT_OK(d2);
  Fd dup_fd(d2);
  ASSERT_RET(7, lseek(fd_.get(), 7, SEEK_SET));
  EXPECT_RET(7, lseek(dup_fd.get(), 0, SEEK_CUR));
}

TEST_F(LseekTest, OffsetNotSharedBetweenOpens) {
  Fd other(open(dir_.Sub("f").c_str(), O_RDONLY));
  ASSERT_RET(7, lseek(fd_.get(), 7, SEEK_SET));
  EXPECT_RET(0, lseek(other.get(), 0, SEEK_CUR));
}

TEST_F(LseekTest, DirectorySeekToStart) {
  Fd d(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_RET(0, lseek(d.get(), 0, SEEK_SET));
}

}  // namespace
