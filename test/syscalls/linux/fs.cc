// chdir(2), fchdir(2), getcwd(2), mkdir(2)/mkdirat(2), rmdir(2),
// rename(2)/renameat2(2), link(2)/linkat(2), symlink(2), readlink(2),
// unlink(2)/unlinkat(2), mknod(2).
#include <linux/fs.h>
#include <sys/stat.h>

#include "test_util.h"

namespace {

TEST(Chdir, ChangesCwd) {
  TempDir d;
  std::string path = d.path();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(chdir(path.c_str()) == 0);
    char buf[4096];
    CHILD_CHECK(getcwd(buf, sizeof(buf)) != nullptr);
    char real[4096];
    CHILD_CHECK(realpath(path.c_str(), real) != nullptr);
    CHILD_CHECK(strcmp(buf, real) == 0);
    return 0;
  });
}

TEST(Chdir, Errors) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "x"));
  EXPECT_ERRNO(ENOTDIR, chdir(d.Sub("f").c_str()));
  EXPECT_ERRNO(ENOENT, chdir(d.Sub("none").c_str()));
  EXPECT_ERRNO(EFAULT, chdir((const char*)kBadPtr));
}

TEST(Fchdir, ChangesCwdViaFd) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("sub/marker"), "x"));
  Fd dir(open(d.Sub("sub").c_str(), O_RDONLY | O_DIRECTORY));
  int fd = dir.get();
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(fchdir(fd) == 0);
    CHILD_CHECK(access("marker", F_OK) == 0);
    return 0;
  });
  Fd f(open(d.Sub("sub/marker").c_str(), O_RDONLY));
  EXPECT_ERRNO(ENOTDIR, fchdir(f.get()));
  EXPECT_ERRNO(EBADF, fchdir(-1));
}

TEST(Getcwd, SmallBufferIsERANGE) {
  char buf[1];
  EXPECT_ERRNO(ERANGE, syscall(SYS_getcwd, buf, 1));
}

TEST(Getcwd, ReturnsLengthIncludingNul) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(chdir("/") == 0);
    char buf[16];
    CHILD_CHECK(syscall(SYS_getcwd, buf, sizeof(buf)) == 2);
    CHILD_CHECK(strcmp(buf, "/") == 0);
    return 0;
  });
}

TEST(Getcwd, DeletedDirectoryIsMarkedUnreachable) {
  TempDir d;
  std::string sub = d.Sub("gone");
  ASSERT_OK(mkdir(sub.c_str(), 0755));
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(chdir(sub.c_str()) == 0);
    CHILD_CHECK(rmdir(sub.c_str()) == 0);
    char buf[4096];
    // getcwd(2): ENOENT if the current working directory was unlinked.
    CHILD_CHECK(syscall(SYS_getcwd, buf, sizeof(buf)) == -1 && errno == ENOENT);
    return 0;
  });
}

TEST(Mkdir, CreatesWithModeAndLinkCount) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0750));
  struct stat st;
  ASSERT_OK(stat(d.Sub("a").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_nlink, 2u);
  struct stat parent_before, parent_after;
  ASSERT_OK(stat(d.path().c_str(), &parent_before));
  ASSERT_OK(mkdir(d.Sub("b").c_str(), 0750));
  ASSERT_OK(stat(d.path().c_str(), &parent_after));
  EXPECT_EQ(parent_after.st_nlink, parent_before.st_nlink + 1);
}

TEST(Mkdir, Errors) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0755));
  EXPECT_ERRNO(EEXIST, mkdir(d.Sub("a").c_str(), 0755));
  EXPECT_ERRNO(ENOENT, mkdir(d.Sub("x/y").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  EXPECT_ERRNO(ENOTDIR, mkdir(d.Sub("f/y").c_str(), 0755));
  EXPECT_ERRNO(EEXIST, mkdir(d.Sub("f").c_str(), 0755));
}

TEST(Mkdirat, RelativeToDirfd) {
  TempDir d;
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(mkdirat(dir.get(), "sub", 0755));
  struct stat st;
  EXPECT_OK(stat(d.Sub("sub").c_str(), &st));
}

TEST(Rmdir, RemovesEmptyOnly) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("a/f"), ""));
  EXPECT_ERRNO(ENOTEMPTY, rmdir(d.Sub("a").c_str()));
  ASSERT_OK(unlink(d.Sub("a/f").c_str()));
  EXPECT_OK(rmdir(d.Sub("a").c_str()));
  EXPECT_ERRNO(ENOENT, rmdir(d.Sub("a").c_str()));
}

TEST(Rmdir, Errors) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  EXPECT_ERRNO(ENOTDIR, rmdir(d.Sub("f").c_str()));
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0755));
  EXPECT_ERRNO(EINVAL, rmdir((d.Sub("a") + "/.").c_str()));
}

TEST(Rename, MovesFile) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "data"));
  struct stat before;
  ASSERT_OK(stat(d.Sub("a").c_str(), &before));
  ASSERT_OK(rename(d.Sub("a").c_str(), d.Sub("b").c_str()));
  EXPECT_ERRNO(ENOENT, access(d.Sub("a").c_str(), F_OK));
  struct stat after;
  ASSERT_OK(stat(d.Sub("b").c_str(), &after));
  EXPECT_EQ(before.st_ino, after.st_ino);
}

TEST(Rename, ReplacesExistingFileAtomically) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "new"));
  ASSERT_TRUE(WriteFile(d.Sub("b"), "old"));
  ASSERT_OK(rename(d.Sub("a").c_str(), d.Sub("b").c_str()));
  std::string got;
  ASSERT_TRUE(ReadFile(d.Sub("b"), &got));
  EXPECT_EQ(got, "new");
}

TEST(Rename, SameFileIsNoop) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  ASSERT_OK(link(d.Sub("a").c_str(), d.Sub("b").c_str()));
  EXPECT_OK(rename(d.Sub("a").c_str(), d.Sub("b").c_str()));
  // Both names still exist (POSIX: rename between hard links does nothing).
  EXPECT_OK(access(d.Sub("a").c_str(), F_OK));
  EXPECT_OK(access(d.Sub("b").c_str(), F_OK));
}

TEST(Rename, DirectoryErrors) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("dir").c_str(), 0755));
  ASSERT_OK(mkdir(d.Sub("full").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("full/f"), ""));
  ASSERT_TRUE(WriteFile(d.Sub("file"), ""));
  EXPECT_ERRNO(ENOTEMPTY, rename(d.Sub("dir").c_str(), d.Sub("full").c_str()));
  EXPECT_ERRNO(ENOTDIR, rename(d.Sub("dir").c_str(), d.Sub("file").c_str()));
  EXPECT_ERRNO(EISDIR, rename(d.Sub("file").c_str(), d.Sub("dir").c_str()));
  EXPECT_ERRNO(EINVAL, rename(d.Sub("dir").c_str(), d.Sub("dir/sub").c_str()));
}

TEST(Rename, DirectoryOntoEmptyDirectory) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0755));
  ASSERT_OK(mkdir(d.Sub("b").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("a/f"), ""));
  ASSERT_OK(rename(d.Sub("a").c_str(), d.Sub("b").c_str()));
  EXPECT_OK(access(d.Sub("b/f").c_str(), F_OK));
}

TEST(Renameat2, NoreplaceFailsIfTargetExists) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "1"));
  ASSERT_TRUE(WriteFile(d.Sub("b"), "2"));
  EXPECT_ERRNO(EEXIST, renameat2(AT_FDCWD, d.Sub("a").c_str(), AT_FDCWD, d.Sub("b").c_str(), RENAME_NOREPLACE));
  EXPECT_OK(renameat2(AT_FDCWD, d.Sub("a").c_str(), AT_FDCWD, d.Sub("c").c_str(), RENAME_NOREPLACE));
}

TEST(Renameat2, ExchangeSwapsNames) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "1"));
  ASSERT_TRUE(WriteFile(d.Sub("b"), "2"));
  ASSERT_OK(renameat2(AT_FDCWD, d.Sub("a").c_str(), AT_FDCWD, d.Sub("b").c_str(), RENAME_EXCHANGE));
  std::string a, b;
  ReadFile(d.Sub("a"), &a);
  ReadFile(d.Sub("b"), &b);
  EXPECT_EQ(a, "2");
  EXPECT_EQ(b, "1");
}

TEST(Renameat2, InvalidFlagCombinationIsEINVAL) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "1"));
  EXPECT_ERRNO(EINVAL, renameat2(AT_FDCWD, d.Sub("a").c_str(), AT_FDCWD, d.Sub("b").c_str(),
                                  RENAME_NOREPLACE | RENAME_EXCHANGE));
}

TEST(Link, CreatesHardLink) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  ASSERT_OK(link(d.Sub("a").c_str(), d.Sub("b").c_str()));
  struct stat a, b;
  ASSERT_OK(stat(d.Sub("a").c_str(), &a));
  ASSERT_OK(stat(d.Sub("b").c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
}

TEST(Link, Errors) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  ASSERT_TRUE(WriteFile(d.Sub("b"), "x"));
  EXPECT_ERRNO(EEXIST, link(d.Sub("a").c_str(), d.Sub("b").c_str()));
  EXPECT_ERRNO(ENOENT, link(d.Sub("none").c_str(), d.Sub("c").c_str()));
  EXPECT_ERRNO(EPERM, link(d.path().c_str(), d.Sub("dirlink").c_str()));
}

TEST(Linkat, EmptyPathLinksFd) {
  SKIP_IF_NOT_ROOT();  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  ASSERT_OK(linkat(f.get(), "", AT_FDCWD, d.Sub("b").c_str(), AT_EMPTY_PATH));
  EXPECT_OK(access(d.Sub("b").c_str(), F_OK));
}

TEST(Linkat, SymlinkFollowFlag) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  ASSERT_OK(symlink("a", d.Sub("l").c_str()));
  ASSERT_OK(linkat(AT_FDCWD, d.Sub("l").c_str(), AT_FDCWD, d.Sub("nofollow").c_str(), 0));
  ASSERT_OK(linkat(AT_FDCWD, d.Sub("l").c_str(), AT_FDCWD, d.Sub("follow").c_str(), AT_SYMLINK_FOLLOW));
  struct stat st;
  ASSERT_OK(lstat(d.Sub("nofollow").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_OK(lstat(d.Sub("follow").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_ERRNO(EINVAL, linkat(AT_FDCWD, d.Sub("a").c_str(), AT_FDCWD, d.Sub("z").c_str(), 0x1));
}

TEST(Symlink, ReadlinkReturnsTargetWithoutNul) {
  TempDir d;
  ASSERT_OK(symlink("some/target", d.Sub("l").c_str()));
  char buf[64];
  memset(buf, 'Z', sizeof(buf));
  EXPECT_RET(11, readlink(d.Sub("l").c_str(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 11), "some/target");
  EXPECT_EQ(buf[11], 'Z');
}

TEST(Symlink, ReadlinkTruncates) {
  TempDir d;
  ASSERT_OK(symlink("abcdef", d.Sub("l").c_str()));
  char buf[3];
  EXPECT_RET(3, readlink(d.Sub("l").c_str(), buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 3), "abc");
}

TEST(Symlink, Errors) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "x"));
  char buf[16];
  EXPECT_ERRNO(EINVAL, readlink(d.Sub("f").c_str(), buf, sizeof(buf)));
  EXPECT_ERRNO(EINVAL, readlink(d.Sub("f").c_str(), buf, 0));
  EXPECT_ERRNO(EEXIST, symlink("x", d.Sub("f").c_str()));
  EXPECT_ERRNO(ENOENT, symlink("", d.Sub("empty").c_str()));
}

TEST(Symlink, RelativeTargetResolvedFromLinkDirectory) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("target"), "hello"));
  ASSERT_OK(symlink("../target", d.Sub("sub/l").c_str()));
  std::string got;
  ASSERT_TRUE(ReadFile(d.Sub("sub/l"), &got));
  EXPECT_EQ(got, "hello");
}

TEST(Readlinkat, EmptyPathOnOPathFd) {
  TempDir d;
  ASSERT_OK(symlink("tgt", d.Sub("l").c_str()));
  Fd f(open(d.Sub("l").c_str(), O_PATH | O_NOFOLLOW));
  ASSERT_TRUE(f.valid());
  char buf[8];
  EXPECT_RET(3, readlinkat(f.get(), "", buf, sizeof(buf)));
}

TEST(Unlink, RemovesNameButOpenFdStillWorks) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "data"));
  Fd f(open(d.Sub("a").c_str(), O_RDONLY));
  ASSERT_OK(unlink(d.Sub("a").c_str()));
  EXPECT_ERRNO(ENOENT, access(d.Sub("a").c_str(), F_OK));
  char buf[4];
  EXPECT_RET(4, read(f.get(), buf, 4));
  struct stat st;
  ASSERT_OK(fstat(f.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
}

TEST(Unlink, DirectoryIsEISDIR) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, unlink(d.Sub("a").c_str()));
}

TEST(Unlinkat, RemovedirFlag) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("a").c_str(), 0755));
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(ENOTDIR, unlinkat(dir.get(), "f", AT_REMOVEDIR));
  EXPECT_OK(unlinkat(dir.get(), "a", AT_REMOVEDIR));
  EXPECT_OK(unlinkat(dir.get(), "f", 0));
  EXPECT_ERRNO(EINVAL, unlinkat(dir.get(), "x", 0x1));
}

TEST(Unlink, StickyDirectoryProtectsOthersFiles) {
  SKIP_IF_NOT_ROOT();
  TempDir d;
  ASSERT_OK(chmod(d.path().c_str(), 01777));
  ASSERT_TRUE(WriteFile(d.Sub("rootfile"), ""));
  std::string path = d.Sub("rootfile");
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(setresuid(1000, 1000, 1000) == 0);
    CHILD_CHECK(unlink(path.c_str()) == -1 && (errno == EPERM || errno == EACCES));
    return 0;
  });
}

TEST(Mknod, FifoAndRegular) {
  TempDir d;
  ASSERT_OK(mknod(d.Sub("fifo").c_str(), S_IFIFO | 0600, 0));
  ASSERT_OK(mknod(d.Sub("reg").c_str(), S_IFREG | 0600, 0));
  struct stat st;
  ASSERT_OK(stat(d.Sub("fifo").c_str(), &st));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_OK(stat(d.Sub("reg").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_ERRNO(EEXIST, mknod(d.Sub("reg").c_str(), S_IFREG | 0600, 0));
}

TEST(Mknod, InvalidTypeIsEINVAL) {
  TempDir d;
  EXPECT_ERRNO(EINVAL, mknod(d.Sub("x").c_str(), 0170000 | 0600, 0));
}

}  // namespace
