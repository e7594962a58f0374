// open(2), openat(2), openat2(2), creat(2), close(2), close_range(2).
#include <linux/openat2.h>
#include <linux/close_range.h>

#include "test_util.h"

namespace {

long Openat2(int dirfd, const char* path, struct open_how* how, size_t size) {
  return syscall(SYS_openat2, dirfd, path, how, size);
}
int CloseRange(unsigned first, unsigned last, unsigned flags) {
  return static_cast<int>(syscall(SYS_close_range, first, last, flags));
}

TEST(Open, CreateNewFileWithMode) {
  TempDir d;
  mode_t old = umask(022);
  Fd f(open(d.Sub("a").c_str(), O_CREAT | O_WRONLY, 0666));
  umask(old);
  ASSERT_TRUE(f.valid()) << strerror(errno);
  struct stat st;
  ASSERT_OK(fstat(f.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(st.st_size, 0);
}

TEST(Open, NonexistentIsENOENT) {
  TempDir d;
  EXPECT_ERRNO(ENOENT, open(d.Sub("missing").c_str(), O_RDONLY));
}

TEST(Open, EmptyPathIsENOENT) {
  EXPECT_ERRNO(ENOENT, open("", O_RDONLY));
}

TEST(Open, ExclOnExistingIsEEXIST) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  EXPECT_ERRNO(EEXIST, open(d.Sub("a").c_str(), O_CREAT | O_EXCL | O_RDWR, 0644));
}

TEST(Open, ExclDoesNotFollowSymlink) {
  TempDir d;
  ASSERT_OK(symlink(d.Sub("target").c_str(), d.Sub("link").c_str()));
  EXPECT_ERRNO(EEXIST, open(d.Sub("link").c_str(), O_CREAT | O_EXCL | O_RDWR, 0644));
  EXPECT_ERRNO(ENOENT, access(d.Sub("target").c_str(), F_OK));
}

TEST(Open, CreatThroughDanglingSymlinkCreatesTarget) {
  TempDir d;
  ASSERT_OK(symlink(d.Sub("target").c_str(), d.Sub("link").c_str()));
  Fd f(open(d.Sub("link").c_str(), O_CREAT | O_WRONLY, 0644));
  ASSERT_TRUE(f.valid());
  EXPECT_OK(access(d.Sub("target").c_str(), F_OK));
}

TEST(Open, TruncEmptiesFile) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "hello"));
  Fd f(open(d.Sub("a").c_str(), O_WRONLY | O_TRUNC));
  ASSERT_TRUE(f.valid());
  struct stat st;
  ASSERT_OK(fstat(f.get(), &st));
  EXPECT_EQ(st.st_size, 0);
}

TEST(Open, DirectoryFlagOnFileIsENOTDIR) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  EXPECT_ERRNO(ENOTDIR, open(d.Sub("a").c_str(), O_RDONLY | O_DIRECTORY));
}

TEST(Open, PathComponentIsFileIsENOTDIR) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  EXPECT_ERRNO(ENOTDIR, open(d.Sub("a/b").c_str(), O_RDONLY));
}

TEST(Open, WriteOpenOfDirectoryIsEISDIR) {
  TempDir d;
  EXPECT_ERRNO(EISDIR, open(d.path().c_str(), O_WRONLY));
  EXPECT_ERRNO(EISDIR, open(d.path().c_str(), O_RDWR));
}

TEST(Open, NofollowOnSymlinkIsELOOP) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  ASSERT_OK(symlink("a", d.Sub("l").c_str()));
  EXPECT_ERRNO(ELOOP, open(d.Sub("l").c_str(), O_RDONLY | O_NOFOLLOW));
}

TEST(Open, SymlinkLoopIsELOOP) {
  TempDir d;
  ASSERT_OK(symlink("l2", d.Sub("l1").c_str()));
  ASSERT_OK(symlink("l1", d.Sub("l2").c_str()));
  EXPECT_ERRNO(ELOOP, open(d.Sub("l1").c_str(), O_RDONLY));
}

TEST(Open, NameTooLongIsENAMETOOLONG) {
  TempDir d;
  std::string p = d.path() + "/" + std::string(300, 'a');
  EXPECT_ERRNO(ENAMETOOLONG, open(p.c_str(), O_RDONLY));
}

TEST(Open, BadPathPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, open(static_cast<const char*>(kBadPtr), O_RDONLY));
}

TEST(Open, ReturnsLowestFreeFd) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  Fd a(open(d.Sub("a").c_str(), O_RDONLY));
  Fd b(open(d.Sub("a").c_str(), O_RDONLY));
  ASSERT_TRUE(a.valid() && b.valid());
  int freed = a.get();
  a.reset();
  Fd c(open(d.Sub("a").c_str(), O_RDONLY));
  EXPECT_EQ(c.get(), freed);
}

TEST(Open, CloexecFlagIsReportedByFcntl) {
  Fd f(open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(f.valid());
  EXPECT_EQ(fcntl(f.get(), F_GETFD), FD_CLOEXEC);
  Fd g(open("/dev/null", O_RDONLY));
  EXPECT_EQ(fcntl(g.get(), F_GETFD), 0);
}

TEST(Open, AccessModeReportedByGetfl) {
  Fd f(open("/dev/null", O_WRONLY | O_APPEND));
  ASSERT_TRUE(f.valid());
  int fl = fcntl(f.get(), F_GETFL);
  EXPECT_EQ(fl & O_ACCMODE, O_WRONLY);
  EXPECT_TRUE(fl & O_APPEND);
}

TEST(Open, OPathAllowsFstatButNotRead) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "abc"));
  Fd f(open(d.Sub("a").c_str(), O_PATH));
  ASSERT_TRUE(f.valid());
  struct stat st;
  EXPECT_OK(fstat(f.get(), &st));
  EXPECT_EQ(st.st_size, 3);
  char c;
  EXPECT_ERRNO(EBADF, read(f.get(), &c, 1));
}

TEST(Open, TmpfileIsUnnamedAndLinkable) {
  TempDir d;
  int fd = open(d.path().c_str(), O_TMPFILE | O_RDWR, 0600);
  if (fd < 0 && errno == EOPNOTSUPP) GTEST_SKIP() << "filesystem lacks O_TMPFILE";
  Fd f(fd);
  ASSERT_TRUE(f.valid()) << strerror(errno);
  DIR* dir = opendir(d.path().c_str());
  ASSERT_NE(dir, nullptr);
  int entries = 0;
  while (struct dirent* e = readdir(dir)) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
  }
  closedir(dir);
  EXPECT_EQ(entries, 0);
  ASSERT_RET(2, write(f.get(), "hi", 2));
  std::string proc = "/proc/self/fd/" + std::to_string(f.get());
  EXPECT_OK(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, d.Sub("named").c_str(), AT_SYMLINK_FOLLOW));
  std::string got;
  EXPECT_TRUE(ReadFile(d.Sub("named"), &got));
  EXPECT_EQ(got, "hi");
}

TEST(Open, TmpfileWithoutWriteAccessIsEINVAL) {
  TempDir d;
  EXPECT_ERRNO(EINVAL, open(d.path().c_str(), O_TMPFILE | O_RDONLY, 0600));
}

// The /dev every container has (OCI runtime spec, "Default Devices" and
// the links runc makes).
TEST(Open, StandardDevNodesExist) {
  struct Node {
    const char* path;
    unsigned major, minor;
  };
  for (const Node& n : {Node{"/dev/null", 1, 3}, Node{"/dev/zero", 1, 5}, Node{"/dev/full", 1, 7},
                        Node{"/dev/random", 1, 8}, Node{"/dev/urandom", 1, 9}, Node{"/dev/tty", 5, 0}}) {
    struct stat st;
    ASSERT_EQ(stat(n.path, &st), 0) << n.path;
    EXPECT_TRUE(S_ISCHR(st.st_mode)) << n.path;
    EXPECT_EQ(major(st.st_rdev), n.major) << n.path;
    EXPECT_EQ(minor(st.st_rdev), n.minor) << n.path;
  }
  for (const char* link : {"/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"}) {
    struct stat st;
    ASSERT_EQ(lstat(link, &st), 0) << link;
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << link;
  }
  for (const char* dir : {"/dev/pts", "/dev/shm"}) {
    struct stat st;
    ASSERT_EQ(stat(dir, &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
  }
  struct stat st;
  EXPECT_OK(stat("/dev/ptmx", &st));
}

// Opening /dev/fd/N of a regular file is a new open file description:
// its own offset, starting at 0.
TEST(Open, DevFdReopenHasItsOwnOffset) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "0123456789"));
  Fd fd(open(d.Sub("f").c_str(), O_RDONLY));
  ASSERT_TRUE(fd.valid());
  char buf[8];
  ASSERT_RET(4, read(fd.get(), buf, 4));
  Fd again(open(("/dev/fd/" + std::to_string(fd.get())).c_str(), O_RDONLY));
  ASSERT_TRUE(again.valid());
  ASSERT_RET(3, read(again.get(), buf, 3));
  EXPECT_EQ(std::string(buf, 3), "012");
  ASSERT_RET(2, read(fd.get(), buf, 2));
  EXPECT_EQ(std::string(buf, 2), "45");
}

TEST(Openat, RelativeToDirfd) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "xyz"));
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(dir.valid());
  Fd f(openat(dir.get(), "a", O_RDONLY));
  ASSERT_TRUE(f.valid());
  char buf[3];
  EXPECT_RET(3, read(f.get(), buf, 3));
}

TEST(Openat, AbsolutePathIgnoresDirfd) {
  EXPECT_OK(Fd(openat(-1, "/dev/null", O_RDONLY)).get());
}

TEST(Openat, BadDirfdIsEBADF) {
  EXPECT_ERRNO(EBADF, openat(-1, "relative", O_RDONLY));
}

TEST(Openat, FileDirfdIsENOTDIR) {
  Fd f(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(ENOTDIR, openat(f.get(), "x", O_RDONLY));
}

TEST(Openat, AtFdcwdUsesCurrentDirectory) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  EXPECT_CHILD_OK([&] {
    CHILD_CHECK(chdir(d.path().c_str()) == 0);
    int fd = openat(AT_FDCWD, "a", O_RDONLY);
    CHILD_CHECK(fd >= 0);
    return 0;
  });
}

TEST(Openat2, BasicOpen) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  struct open_how how = {};
  how.flags = O_RDONLY;
  Fd f(Openat2(AT_FDCWD, d.Sub("a").c_str(), &how, sizeof(how)));
  if (!f.valid() && errno == ENOSYS) GTEST_SKIP() << "openat2 unsupported";
  EXPECT_TRUE(f.valid()) << strerror(errno);
}

TEST(Openat2, ModeWithoutCreateIsEINVAL) {
  struct open_how how = {};
  how.flags = O_RDONLY;
  how.mode = 0644;
  EXPECT_ERRNO(EINVAL, Openat2(AT_FDCWD, "/dev/null", &how, sizeof(how)));
}

TEST(Openat2, UnknownFlagBitsAreEINVAL) {
  struct open_how how = {};
  how.flags = 1ULL << 40;
  EXPECT_ERRNO(EINVAL, Openat2(AT_FDCWD, "/dev/null", &how, sizeof(how)));
  how.flags = 0;
  how.resolve = 1ULL << 30;
  EXPECT_ERRNO(EINVAL, Openat2(AT_FDCWD, "/dev/null", &how, sizeof(how)));
}

TEST(Openat2, SizeTooSmallIsEINVAL) {
  struct open_how how = {};
  EXPECT_ERRNO(EINVAL, Openat2(AT_FDCWD, "/dev/null", &how, 8));
}

TEST(Openat2, LargerStructWithNonzeroTailIsE2BIG) {
  char buf[sizeof(struct open_how) + 8] = {};
  buf[sizeof(struct open_how)] = 1;
  EXPECT_ERRNO(E2BIG, Openat2(AT_FDCWD, "/dev/null", (struct open_how*)buf, sizeof(buf)));
}

TEST(Openat2, ResolveBeneathRejectsEscape) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("sub").c_str(), 0755));
  Fd dir(open(d.Sub("sub").c_str(), O_RDONLY | O_DIRECTORY));
  struct open_how how = {};
  how.flags = O_RDONLY;
  how.resolve = RESOLVE_BENEATH;
  EXPECT_ERRNO(EXDEV, Openat2(dir.get(), "..", &how, sizeof(how)));
  EXPECT_ERRNO(EXDEV, Openat2(dir.get(), "/dev/null", &how, sizeof(how)));
}

TEST(Openat2, ResolveNoSymlinks) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "x"));
  ASSERT_OK(symlink("a", d.Sub("l").c_str()));
  struct open_how how = {};
  how.flags = O_RDONLY;
  how.resolve = RESOLVE_NO_SYMLINKS;
  EXPECT_ERRNO(ELOOP, Openat2(AT_FDCWD, d.Sub("l").c_str(), &how, sizeof(how)));
}

TEST(Openat2, ResolveInRootTreatsSlashAsDirfd) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "inside"));
  Fd dir(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  struct open_how how = {};
  how.flags = O_RDONLY;
  how.resolve = RESOLVE_IN_ROOT;
  Fd f(Openat2(dir.get(), "/a", &how, sizeof(how)));
  ASSERT_TRUE(f.valid()) << strerror(errno);
  char buf[6];
  EXPECT_RET(6, read(f.get(), buf, 6));
}

TEST(Creat, EquivalentToOpenCreatWronlyTrunc) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), "old contents"));
  Fd f(creat(d.Sub("a").c_str(), 0644));
  ASSERT_TRUE(f.valid());
  EXPECT_EQ(fcntl(f.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  struct stat st;
  ASSERT_OK(fstat(f.get(), &st));
  EXPECT_EQ(st.st_size, 0);
  char c;
  EXPECT_ERRNO(EBADF, read(f.get(), &c, 1));
}

TEST(Close, CloseTwiceIsEBADF) {
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_OK(fd);
  EXPECT_OK(close(fd));
  EXPECT_ERRNO(EBADF, close(fd));
}

TEST(Close, NegativeIsEBADF) { EXPECT_ERRNO(EBADF, close(-1)); }

TEST(Close, OtherDupKeepsFileOpen) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]);
  int w2 = dup(p[1]);
  ASSERT_OK(w2);
  ASSERT_OK(close(p[1]));
  Fd w(w2);
  EXPECT_RET(1, write(w.get(), "q", 1));
  char c;
  EXPECT_RET(1, read(r.get(), &c, 1));
}

TEST(CloseRange, ClosesInclusiveRange) {
  EXPECT_CHILD_OK([] {
    for (int i = 100; i <= 105; i++) CHILD_CHECK(dup2(0, i) == i);
    CHILD_CHECK(CloseRange(101, 104, 0) == 0);
    CHILD_CHECK(fcntl(100, F_GETFD) >= 0);
    for (int i = 101; i <= 104; i++) CHILD_CHECK(fcntl(i, F_GETFD) == -1 && errno == EBADF);
    CHILD_CHECK(fcntl(105, F_GETFD) >= 0);
    return 0;
  });
}

TEST(CloseRange, FirstGreaterThanLastIsEINVAL) {
  EXPECT_ERRNO(EINVAL, CloseRange(10, 5, 0));
}

TEST(CloseRange, UnknownFlagIsEINVAL) {
  EXPECT_ERRNO(EINVAL, CloseRange(1000, 1001, 0x80000000u));
}

TEST(CloseRange, CloexecFlagMarksInsteadOfClosing) {
  EXPECT_CHILD_OK([] {
    CHILD_CHECK(dup2(0, 200) == 200);
    CHILD_CHECK(fcntl(200, F_GETFD) == 0);
    CHILD_CHECK(CloseRange(200, ~0u, CLOSE_RANGE_CLOEXEC) == 0);
    CHILD_CHECK(fcntl(200, F_GETFD) == FD_CLOEXEC);
    return 0;
  });
}

TEST(CloseRange, UnopenedRangeSucceeds) {
  EXPECT_OK(CloseRange(60000, 60010, 0));
}

}  // namespace
