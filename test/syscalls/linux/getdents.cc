// getdents64(2) and the readdir(3)/seekdir(3) behaviour built on it.
#include <map>
#include <set>

#include "test_util.h"

namespace {

struct Dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

std::vector<std::pair<std::string, unsigned char>> ListAll(int fd, size_t bufsize = 4096) {
  std::vector<std::pair<std::string, unsigned char>> out;
  std::vector<char> buf(bufsize);
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf.data(), buf.size());
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<Dirent64*>(buf.data() + off);
      out.emplace_back(d->d_name, d->d_type);
      off += d->d_reclen;
    }
  }
  return out;
}

TEST(Getdents, ListsEntriesWithTypes) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("file"), ""));
  ASSERT_OK(mkdir(d.Sub("dir").c_str(), 0755));
  ASSERT_OK(symlink("file", d.Sub("link").c_str()));
  ASSERT_OK(mkfifo(d.Sub("fifo").c_str(), 0600));
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  std::map<std::string, unsigned char> got;
  for (auto& e : ListAll(f.get())) got[e.first] = e.second;
  EXPECT_EQ(got.size(), 6u);
  EXPECT_EQ(got["."], DT_DIR);
  EXPECT_EQ(got[".."], DT_DIR);
  EXPECT_EQ(got["file"], DT_REG);
  EXPECT_EQ(got["dir"], DT_DIR);
  EXPECT_EQ(got["link"], DT_LNK);
  EXPECT_EQ(got["fifo"], DT_FIFO);
}

TEST(Getdents, EmptyAtEnd) {
  TempDir d;
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  ListAll(f.get());
  char buf[1024];
  EXPECT_RET(0, syscall(SYS_getdents64, f.get(), buf, sizeof(buf)));
}

TEST(Getdents, SmallBufferReturnsPartialListing) {
  TempDir d;
  for (int i = 0; i < 50; i++) ASSERT_TRUE(WriteFile(d.Sub("entry_with_long_name_" + std::to_string(i)), ""));
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  auto all = ListAll(f.get(), 256);
  std::set<std::string> names;
  for (auto& e : all) names.insert(e.first);
  EXPECT_EQ(names.size(), 52u);
  EXPECT_EQ(all.size(), 52u);  // no duplicates across calls
}

TEST(Getdents, BufferTooSmallForOneEntryIsEINVAL) {
  TempDir d;
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  char buf[4];
  EXPECT_ERRNO(EINVAL, syscall(SYS_getdents64, f.get(), buf, sizeof(buf)));
}

TEST(Getdents, NotADirectoryIsENOTDIR) {
  Fd f(open("/dev/null", O_RDONLY));
  char buf[256];
  EXPECT_ERRNO(ENOTDIR, syscall(SYS_getdents64, f.get(), buf, sizeof(buf)));
}

TEST(Getdents, BadFdAndBadBuffer) {
  char buf[256];
  EXPECT_ERRNO(EBADF, syscall(SYS_getdents64, -1, buf, sizeof(buf)));
  TempDir d;
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(EFAULT, syscall(SYS_getdents64, f.get(), kBadPtr, 256));
}

TEST(Getdents, RewindWithLseekRestarts) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  auto first = ListAll(f.get());
  ASSERT_OK(lseek(f.get(), 0, SEEK_SET));
  auto second = ListAll(f.get());
  EXPECT_EQ(first.size(), second.size());
}

TEST(Getdents, SeekToReturnedOffsetResumes) {
  TempDir d;
  for (int i = 0; i < 10; i++) ASSERT_TRUE(WriteFile(d.Sub("f" + std::to_string(i)), ""));
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  char buf[4096];
  long n = syscall(SYS_getdents64, f.get(), buf, sizeof(buf));
  ASSERT_GT(n, 0);
  // Collect (name, d_off) pairs; seeking to entry k's d_off yields k+1.
  std::vector<std::pair<std::string, int64_t>> ents;
  for (long off = 0; off < n;) {
    auto* e = reinterpret_cast<Dirent64*>(buf + off);
    ents.emplace_back(e->d_name, e->d_off);
    off += e->d_reclen;
  }
  ASSERT_GE(ents.size(), 3u);
  ASSERT_OK(lseek(f.get(), ents[1].second, SEEK_SET));
  n = syscall(SYS_getdents64, f.get(), buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(reinterpret_cast<Dirent64*>(buf)->d_name), ents[2].first);
}

TEST(Getdents, InodeNumbersMatchStat) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("x"), ""));
  struct stat st;
  ASSERT_OK(stat(d.Sub("x").c_str(), &st));
  Fd f(open(d.path().c_str(), O_RDONLY | O_DIRECTORY));
  char buf[4096];
  long n = syscall(SYS_getdents64, f.get(), buf, sizeof(buf));
  bool found = false;
  for (long off = 0; off < n;) {
    auto* e = reinterpret_cast<Dirent64*>(buf + off);
    if (strcmp(e->d_name, "x") == 0) {
      found = true;
      EXPECT_EQ(e->d_ino, st.st_ino);
    }
    off += e->d_reclen;
  }
  EXPECT_TRUE(found);
}

// Reading a directory that has been removed fails: it has no entries left,
// not even "." and "..".
TEST(Getdents, RemovedDirectoryIsENOENT) {
  TempDir d;
  ASSERT_OK(mkdir(d.Sub("gone").c_str(), 0755));
  Fd f(open(d.Sub("gone").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(rmdir(d.Sub("gone").c_str()));
  char buf[1024];
  EXPECT_ERRNO(ENOENT, syscall(SYS_getdents64, f.get(), buf, sizeof(buf)));
}

}  // namespace
