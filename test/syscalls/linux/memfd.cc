// memfd_create(2) and file sealing (fcntl F_ADD_SEALS/F_GET_SEALS).
#include <sys/mman.h>

#include "test_util.h"

namespace {

TEST(Memfd, CreateWriteReadSize) {
  Fd f(memfd_create("test", 0));
  ASSERT_TRUE(f.valid()) << strerror(errno);
  ASSERT_RET(5, write(f.get(), "hello", 5));
  struct stat st;
  ASSERT_OK(fstat(f.get(), &st));
  EXPECT_EQ(st.st_size, 5);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  char buf[5];
  EXPECT_RET(5, pread(f.get(), buf, 5, 0));
}

TEST(Memfd, ProcLinkShowsName) {
  Fd f(memfd_create("myname", 0));
  char buf[128] = {};
  ASSERT_OK(readlink(("/proc/self/fd/" + std::to_string(f.get())).c_str(), buf, sizeof(buf) - 1));
  EXPECT_EQ(std::string(buf).rfind("/memfd:myname", 0), 0u) << buf;
}

TEST(Memfd, FlagsAndErrors) {
  Fd f(memfd_create("x", MFD_CLOEXEC));
  EXPECT_EQ(fcntl(f.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_ERRNO(EINVAL, memfd_create("x", 0x100));
  std::string longname(300, 'n');
  EXPECT_ERRNO(EINVAL, memfd_create(longname.c_str(), 0));
  EXPECT_ERRNO(EFAULT, memfd_create((const char*)kBadPtr, 0));
}

TEST(Memfd, SharedMappingSeesWrites) {
  Fd f(memfd_create("map", 0));
  ASSERT_OK(ftruncate(f.get(), 4096));
  Mapping a(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.get(), 0), 4096);
  Mapping b(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, f.get(), 0), 4096);
  ASSERT_TRUE(a.ok() && b.ok());
  strcpy(a.ptr(), "through a");
  EXPECT_STREQ(b.ptr(), "through a");
  char buf[9];
  ASSERT_RET(9, pread(f.get(), buf, 9, 0));
  EXPECT_EQ(std::string(buf, 9), "through a");
}

TEST(Memfd, SealsDefaultToSealSealWithoutAllowSealing) {
  Fd f(memfd_create("s", 0));
  EXPECT_EQ(fcntl(f.get(), F_GET_SEALS), F_SEAL_SEAL);
  EXPECT_ERRNO(EPERM, fcntl(f.get(), F_ADD_SEALS, F_SEAL_WRITE));
}

TEST(Memfd, SealWritePreventsWrites) {
  Fd f(memfd_create("s", MFD_ALLOW_SEALING));
  ASSERT_RET(3, write(f.get(), "abc", 3));
  EXPECT_EQ(fcntl(f.get(), F_GET_SEALS), 0);
  ASSERT_OK(fcntl(f.get(), F_ADD_SEALS, F_SEAL_WRITE));
  EXPECT_ERRNO(EPERM, write(f.get(), "x", 1));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_WRITE, MAP_SHARED, f.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
}

TEST(Memfd, SealShrinkAndGrow) {
  Fd f(memfd_create("s", MFD_ALLOW_SEALING));
  ASSERT_OK(ftruncate(f.get(), 100));
  ASSERT_OK(fcntl(f.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
  EXPECT_ERRNO(EPERM, ftruncate(f.get(), 50));
  EXPECT_ERRNO(EPERM, ftruncate(f.get(), 200));
  EXPECT_OK(ftruncate(f.get(), 100));
  // Writing within the size is allowed; past it is growth.
  EXPECT_RET(1, pwrite(f.get(), "x", 1, 10));
  EXPECT_ERRNO(EPERM, pwrite(f.get(), "x", 1, 100));
}

TEST(Memfd, SealWriteWithWritableMappingIsEBUSY) {
  Fd f(memfd_create("s", MFD_ALLOW_SEALING));
  ASSERT_OK(ftruncate(f.get(), 4096));
  Mapping m(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.get(), 0), 4096);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EBUSY, fcntl(f.get(), F_ADD_SEALS, F_SEAL_WRITE));
}

TEST(Memfd, SealSealForbidsFurtherSeals) {
  Fd f(memfd_create("s", MFD_ALLOW_SEALING));
  ASSERT_OK(fcntl(f.get(), F_ADD_SEALS, F_SEAL_SEAL));
  EXPECT_ERRNO(EPERM, fcntl(f.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_EQ(fcntl(f.get(), F_GET_SEALS), F_SEAL_SEAL);
}

TEST(Memfd, AddSealsNeedsWritableFd) {
  Fd f(memfd_create("s", MFD_ALLOW_SEALING));
  Fd ro(open(("/proc/self/fd/" + std::to_string(f.get())).c_str(), O_RDONLY));
  ASSERT_TRUE(ro.valid());
  EXPECT_ERRNO(EPERM, fcntl(ro.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_EQ(fcntl(ro.get(), F_GET_SEALS), 0);
}

TEST(Memfd, SealsOnNonMemfdAreEINVAL) {
  int p[2];
  ASSERT_OK(pipe(p));
  Fd r(p[0]), w(p[1]);
  EXPECT_ERRNO(EINVAL, fcntl(r.get(), F_GET_SEALS));
  EXPECT_ERRNO(EINVAL, fcntl(w.get(), F_ADD_SEALS, F_SEAL_WRITE));
}

}  // namespace
