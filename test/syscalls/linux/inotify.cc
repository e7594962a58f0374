// inotify_init1(2), inotify_add_watch(2), inotify_rm_watch(2) and the
// events described in inotify(7).
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>

#include "test_util.h"

namespace {

struct Event {
  int wd;
  uint32_t mask;
  uint32_t cookie;
  std::string name;
};

std::vector<Event> ReadEvents(int fd) {
  std::vector<Event> out;
  alignas(struct inotify_event) char buf[8192];
  ssize_t n = read(fd, buf, sizeof(buf));
  for (ssize_t off = 0; n > 0 && off < n;) {
    auto* e = reinterpret_cast<struct inotify_event*>(buf + off);
    out.push_back({e->wd, e->mask, e->cookie, e->len ? std::string(e->name) : ""});
    off += sizeof(*e) + e->len;
  }
  return out;
}

bool HasEvent(const std::vector<Event>& evs, uint32_t mask, const std::string& name) {
  for (auto& e : evs)
    if ((e.mask & mask) && e.name == name) return true;
  return false;
}

TEST(Inotify, InitFlags) {
  Fd a(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(fcntl(a.get(), F_GETFD), FD_CLOEXEC);
  char buf[256];
  EXPECT_ERRNO(EAGAIN, read(a.get(), buf, sizeof(buf)));
  EXPECT_ERRNO(EINVAL, inotify_init1(0x1));
}

TEST(Inotify, CreateModifyDeleteInDirectory) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  int wd = inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE | IN_MODIFY | IN_DELETE);
  ASSERT_OK(wd);
  ASSERT_TRUE(WriteFile(d.Sub("f"), "x"));
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  auto evs = ReadEvents(in.get());
  EXPECT_TRUE(HasEvent(evs, IN_CREATE, "f"));
  EXPECT_TRUE(HasEvent(evs, IN_MODIFY, "f"));
  EXPECT_TRUE(HasEvent(evs, IN_DELETE, "f"));
  for (auto& e : evs) EXPECT_EQ(e.wd, wd);
}

TEST(Inotify, DirectoryEventsHaveIsdir) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE));
  ASSERT_OK(mkdir(d.Sub("sub").c_str(), 0755));
  auto evs = ReadEvents(in.get());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].mask, (uint32_t)(IN_CREATE | IN_ISDIR));
}

TEST(Inotify, MoveEventsShareCookie) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.path().c_str(), IN_MOVE));
  ASSERT_OK(rename(d.Sub("a").c_str(), d.Sub("b").c_str()));
  auto evs = ReadEvents(in.get());
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].mask, (uint32_t)IN_MOVED_FROM);
  EXPECT_EQ(evs[0].name, "a");
  EXPECT_EQ(evs[1].mask, (uint32_t)IN_MOVED_TO);
  EXPECT_EQ(evs[1].name, "b");
  EXPECT_EQ(evs[0].cookie, evs[1].cookie);
  EXPECT_NE(evs[0].cookie, 0u);
}

TEST(Inotify, FileWatchOpenCloseAttrib) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.Sub("f").c_str(), IN_OPEN | IN_CLOSE_NOWRITE | IN_ATTRIB));
  { Fd f(open(d.Sub("f").c_str(), O_RDONLY)); }
  ASSERT_OK(chmod(d.Sub("f").c_str(), 0600));
  auto evs = ReadEvents(in.get());
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].mask, (uint32_t)IN_OPEN);
  EXPECT_EQ(evs[1].mask, (uint32_t)IN_CLOSE_NOWRITE);
  EXPECT_EQ(evs[2].mask, (uint32_t)IN_ATTRIB);
  EXPECT_EQ(evs[0].name, "");
}

TEST(Inotify, AddWatchAgainReturnsSameWdAndReplacesMask) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  int wd1 = inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE);
  int wd2 = inotify_add_watch(in.get(), d.path().c_str(), IN_DELETE);
  EXPECT_EQ(wd1, wd2);
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  EXPECT_TRUE(ReadEvents(in.get()).empty());
  int wd3 = inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE | IN_MASK_ADD);
  EXPECT_EQ(wd3, wd1);
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  EXPECT_TRUE(HasEvent(ReadEvents(in.get()), IN_DELETE, "f"));
}

TEST(Inotify, RmWatchGeneratesIgnored) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  int wd = inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE);
  ASSERT_OK(inotify_rm_watch(in.get(), wd));
  auto evs = ReadEvents(in.get());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].mask, (uint32_t)IN_IGNORED);
  EXPECT_ERRNO(EINVAL, inotify_rm_watch(in.get(), wd));
}

TEST(Inotify, DeleteSelfAndIgnored) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.Sub("f").c_str(), IN_DELETE_SELF));
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  auto evs = ReadEvents(in.get());
  ASSERT_GE(evs.size(), 2u);
  EXPECT_EQ(evs[0].mask, (uint32_t)IN_DELETE_SELF);
  EXPECT_EQ(evs.back().mask, (uint32_t)IN_IGNORED);
}

// Masks of the events queued on in, in order.
std::vector<uint32_t> Masks(int in) {
  std::vector<uint32_t> out;
  for (auto& e : ReadEvents(in)) out.push_back(e.mask);
  return out;
}

// inotify(7): IN_DELETE_SELF comes when the file is really gone. Unlink
// of an open file reports only IN_ATTRIB (the link count); the deletion
// and the end of the watch come at the last close.
TEST(Inotify, DeleteSelfWaitsForLastClose) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "x"));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.Sub("f").c_str(), IN_ATTRIB | IN_DELETE_SELF));
  Fd f(open(d.Sub("f").c_str(), O_RDONLY));
  ASSERT_TRUE(f.valid());
  int dup_fd;
  ASSERT_OK(dup_fd = dup(f.get()));
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_ATTRIB}));
  f.reset();
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>());
  ASSERT_OK(close(dup_fd));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_DELETE_SELF, IN_IGNORED}));
}

// A shared mapping keeps the file as an open descriptor does.
TEST(Inotify, DeleteSelfWaitsForMunmap) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), "x"));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.Sub("f").c_str(), IN_ATTRIB | IN_DELETE_SELF));
  Fd f(open(d.Sub("f").c_str(), O_RDONLY));
  ASSERT_TRUE(f.valid());
  void* m = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, f.get(), 0);
  ASSERT_NE(m, MAP_FAILED);
  f.reset();
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_ATTRIB}));
  ASSERT_OK(munmap(m, 4096));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_DELETE_SELF, IN_IGNORED}));
}

// Unlink of an unused file reports all three at once; of one of two
// names, only IN_ATTRIB.
TEST(Inotify, UnlinkReportsAttribThenDeleteSelf) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  ASSERT_OK(link(d.Sub("f").c_str(), d.Sub("g").c_str()));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.Sub("f").c_str(), IN_ATTRIB | IN_DELETE_SELF));
  ASSERT_OK(unlink(d.Sub("g").c_str()));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_ATTRIB}));
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_ATTRIB, IN_DELETE_SELF, IN_IGNORED}));
}

// A removed directory that is still some process's working directory is
// deleted when it stops being one; rmdir reports no IN_ATTRIB, and the
// IN_DELETE_SELF has no IN_ISDIR.
TEST(Inotify, RmdirOfWorkingDirectoryReportsDeleteSelfAtChdir) {
  TempDir d;
  std::string sub = d.Sub("sub");
  ASSERT_OK(mkdir(sub.c_str(), 0755));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), sub.c_str(), IN_ATTRIB | IN_DELETE_SELF));
  int status = RunInChild([&] {
    CHILD_CHECK(chdir(sub.c_str()) == 0);
    CHILD_CHECK(rmdir(sub.c_str()) == 0);
    char buf[64];
    // Nothing yet: the child's working directory holds it.
    CHILD_CHECK(read(in.get(), buf, sizeof(buf)) == -1 && errno == EAGAIN);
    CHILD_CHECK(chdir("/") == 0);
    return 0;
  });
  ASSERT_TRUE(ExitedWith(status, 0));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_DELETE_SELF, IN_IGNORED}));
}

// A rename over a watched file reports its link count change, then its
// deletion.
TEST(Inotify, RenameOverWatchedFileDeletesIt) {
  TempDir d;
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_TRUE(WriteFile(d.Sub("b"), ""));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.Sub("b").c_str(), IN_ATTRIB | IN_DELETE_SELF));
  ASSERT_OK(rename(d.Sub("a").c_str(), d.Sub("b").c_str()));
  EXPECT_EQ(Masks(in.get()), std::vector<uint32_t>({IN_ATTRIB, IN_DELETE_SELF, IN_IGNORED}));
}

TEST(Inotify, Errors) {
  TempDir d;
  Fd in(inotify_init1(0));
  EXPECT_ERRNO(ENOENT, inotify_add_watch(in.get(), d.Sub("none").c_str(), IN_ALL_EVENTS));
  EXPECT_ERRNO(EINVAL, inotify_add_watch(in.get(), d.path().c_str(), 0));
  Fd notin(open("/dev/null", O_RDONLY));
  EXPECT_ERRNO(EINVAL, inotify_add_watch(notin.get(), d.path().c_str(), IN_CREATE));
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  EXPECT_ERRNO(ENOTDIR, inotify_add_watch(in.get(), d.Sub("f").c_str(), IN_CREATE | IN_ONLYDIR));
}

TEST(Inotify, SmallReadBufferIsEINVAL) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE));
  ASSERT_TRUE(WriteFile(d.Sub("name"), ""));
  char buf[sizeof(struct inotify_event)];  // no room for the name
  EXPECT_ERRNO(EINVAL, read(in.get(), buf, sizeof(buf)));
}

TEST(Inotify, FionreadAndPoll) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE));
  struct pollfd pfd = {in.get(), POLLIN, 0};
  EXPECT_RET(0, poll(&pfd, 1, 0));
  ASSERT_TRUE(WriteFile(d.Sub("f"), ""));
  EXPECT_RET(1, poll(&pfd, 1, 0));
  int n = 0;
  ASSERT_OK(ioctl(in.get(), FIONREAD, &n));
  EXPECT_GE(n, (int)sizeof(struct inotify_event));
}

TEST(Inotify, IdenticalEventsCoalesce) {
  TempDir d;
  Fd f(open(d.Sub("f").c_str(), O_WRONLY | O_CREAT, 0644));
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.path().c_str(), IN_MODIFY));
  ASSERT_RET(1, write(f.get(), "a", 1));
  ASSERT_RET(1, write(f.get(), "b", 1));
  EXPECT_EQ(ReadEvents(in.get()).size(), 1u);
}

TEST(Inotify, OneshotFiresOnceThenIgnored) {
  TempDir d;
  Fd in(inotify_init1(IN_NONBLOCK));
  int wd = inotify_add_watch(in.get(), d.path().c_str(), IN_CREATE | IN_ONESHOT);
  ASSERT_OK(wd);
  ASSERT_TRUE(WriteFile(d.Sub("a"), ""));
  ASSERT_TRUE(WriteFile(d.Sub("b"), ""));
  auto evs = ReadEvents(in.get());
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].mask, (uint32_t)IN_CREATE);
  EXPECT_EQ(evs[0].name, "a");
  EXPECT_EQ(evs[1].mask, (uint32_t)IN_IGNORED);
  EXPECT_ERRNO(EINVAL, inotify_rm_watch(in.get(), wd));
}

TEST(Inotify, ExclUnlinkDropsEventsOfUnlinkedChildren) {
  TempDir d;
  Fd f(open(d.Sub("f").c_str(), O_WRONLY | O_CREAT, 0644));
  ASSERT_TRUE(f.valid());
  Fd in(inotify_init1(IN_NONBLOCK));
  ASSERT_OK(inotify_add_watch(in.get(), d.path().c_str(), IN_MODIFY | IN_DELETE | IN_EXCL_UNLINK));
  ASSERT_OK(unlink(d.Sub("f").c_str()));
  ASSERT_RET(1, write(f.get(), "x", 1));
  auto evs = ReadEvents(in.get());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].mask, (uint32_t)IN_DELETE);
}

}  // namespace
