// setxattr(2), getxattr(2), listxattr(2), removexattr(2) and their l*/f*
// variants, on user.* attributes.
#include <sys/xattr.h>

#include <set>

#include "test_util.h"

namespace {

class XattrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("f");
    ASSERT_TRUE(WriteFile(path_, "x"));
    if (setxattr(path_.c_str(), "user.probe", "1", 1, 0) != 0 && errno == ENOTSUP)
      GTEST_SKIP() << "filesystem lacks user xattrs";
    ASSERT_OK(removexattr(path_.c_str(), "user.probe"));
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(XattrTest, SetGetRoundTrip) {
  ASSERT_OK(setxattr(path_.c_str(), "user.k", "value", 5, 0));
  char buf[16];
  EXPECT_RET(5, getxattr(path_.c_str(), "user.k", buf, sizeof(buf)));
  EXPECT_EQ(std::string(buf, 5), "value");
}

TEST_F(XattrTest, SizeQueryWithZeroBuffer) {
  ASSERT_OK(setxattr(path_.c_str(), "user.k", "12345678", 8, 0));
  EXPECT_RET(8, getxattr(path_.c_str(), "user.k", nullptr, 0));
}

TEST_F(XattrTest, SmallBufferIsERANGE) {
  ASSERT_OK(setxattr(path_.c_str(), "user.k", "12345678", 8, 0));
  char buf[4];
  EXPECT_ERRNO(ERANGE, getxattr(path_.c_str(), "user.k", buf, sizeof(buf)));
}

TEST_F(XattrTest, MissingIsENODATA) {
  char buf[4];
  EXPECT_ERRNO(ENODATA, getxattr(path_.c_str(), "user.none", buf, sizeof(buf)));
  EXPECT_ERRNO(ENODATA, removexattr(path_.c_str(), "user.none"));
}

TEST_F(XattrTest, CreateAndReplaceFlags) {
  EXPECT_ERRNO(ENODATA, setxattr(path_.c_str(), "user.k", "a", 1, XATTR_REPLACE));
  ASSERT_OK(setxattr(path_.c_str(), "user.k", "a", 1, XATTR_CREATE));
  EXPECT_ERRNO(EEXIST, setxattr(path_.c_str(), "user.k", "b", 1, XATTR_CREATE));
  EXPECT_OK(setxattr(path_.c_str(), "user.k", "c", 1, XATTR_REPLACE));
  char v;
  EXPECT_RET(1, getxattr(path_.c_str(), "user.k", &v, 1));
  EXPECT_EQ(v, 'c');
}

TEST_F(XattrTest, InvalidFlagsAndNames) {
  EXPECT_ERRNO(EINVAL, setxattr(path_.c_str(), "user.k", "a", 1, 0x10));
  EXPECT_ERRNO(EOPNOTSUPP, setxattr(path_.c_str(), "bogusnamespace.k", "a", 1, 0));
  EXPECT_ERRNO(ERANGE, setxattr(path_.c_str(), "", "a", 1, 0));
  std::string longname = "user." + std::string(300, 'n');
  EXPECT_ERRNO(ERANGE, setxattr(path_.c_str(), longname.c_str(), "a", 1, 0));
}

TEST_F(XattrTest, ListReturnsNulSeparatedNames) {
  ASSERT_OK(setxattr(path_.c_str(), "user.a", "1", 1, 0));
  ASSERT_OK(setxattr(path_.c_str(), "user.bb", "2", 1, 0));
  ssize_t need = listxattr(path_.c_str(), nullptr, 0);
  ASSERT_GE(need, (ssize_t)strlen("user.a") + 1 + (ssize_t)strlen("user.bb") + 1);
  std::vector<char> buf(need);
  ssize_t n = listxattr(path_.c_str(), buf.data(), buf.size());
  ASSERT_EQ(n, need);
  std::set<std::string> names;
  for (ssize_t i = 0; i < n; i += strlen(buf.data() + i) + 1) names.insert(buf.data() + i);
  EXPECT_TRUE(names.count("user.a"));
  EXPECT_TRUE(names.count("user.bb"));
  if (need > 1) {
    char small[1];
    EXPECT_ERRNO(ERANGE, listxattr(path_.c_str(), small, 1));
  }
}

TEST_F(XattrTest, RemoveDeletes) {
  ASSERT_OK(setxattr(path_.c_str(), "user.k", "a", 1, 0));
  ASSERT_OK(removexattr(path_.c_str(), "user.k"));
  EXPECT_ERRNO(ENODATA, getxattr(path_.c_str(), "user.k", nullptr, 0));
}

TEST_F(XattrTest, FdVariants) {
  Fd f(open(path_.c_str(), O_RDONLY));
  ASSERT_OK(fsetxattr(f.get(), "user.fd", "zz", 2, 0));
  char buf[4];
  EXPECT_RET(2, fgetxattr(f.get(), "user.fd", buf, sizeof(buf)));
  EXPECT_GT(flistxattr(f.get(), nullptr, 0), 0);
  EXPECT_OK(fremovexattr(f.get(), "user.fd"));
  EXPECT_ERRNO(EBADF, fgetxattr(-1, "user.fd", buf, sizeof(buf)));
}

TEST_F(XattrTest, EmptyValueAllowed) {
  ASSERT_OK(setxattr(path_.c_str(), "user.empty", "", 0, 0));
  EXPECT_RET(0, getxattr(path_.c_str(), "user.empty", nullptr, 0));
}

TEST_F(XattrTest, UserXattrOnSymlinkIsEPERM) {
  ASSERT_OK(symlink("f", dir_.Sub("l").c_str()));
  EXPECT_ERRNO(EPERM, lsetxattr(dir_.Sub("l").c_str(), "user.k", "a", 1, 0));
  // The non-l variant follows the link to the file.
  EXPECT_OK(setxattr(dir_.Sub("l").c_str(), "user.k", "a", 1, 0));
}

TEST_F(XattrTest, MissingFileIsENOENT) {
  char buf[4];
  EXPECT_ERRNO(ENOENT, getxattr(dir_.Sub("none").c_str(), "user.k", buf, sizeof(buf)));
}

}  // namespace
