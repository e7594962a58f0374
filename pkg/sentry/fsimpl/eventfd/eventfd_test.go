package eventfd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/eventfd"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func u64(v uint64) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:]
}

func read(t *testing.T, ctx context.Context, fd *vfs.FileDescription) (uint64, error) {
	t.Helper()
	b, err := vfstest.Read(ctx, fd, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func TestCounter(t *testing.T) {
	ctx := context.Background()
	fd, err := eventfd.New(ctx, vfs.New(), 3, unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.DecRef(ctx)
	if fd.StatusFlags()&unix.O_NONBLOCK == 0 {
		t.Errorf("EFD_NONBLOCK not reflected in status flags")
	}
	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	fd.EventRegister(e)
	defer fd.EventUnregister(e)
	if v, err := read(t, ctx, fd); v != 3 || err != nil {
		t.Errorf("read = %d %v", v, err)
	}
	if _, err := read(t, ctx, fd); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("read of zero counter: %v", err)
	}
	if fd.Readiness(waiter.ReadableEvents) != 0 {
		t.Errorf("zero counter readable")
	}
	vfstest.Write(ctx, fd, u64(5))
	vfstest.Write(ctx, fd, u64(6))
	select {
	case <-ch:
	default:
		t.Errorf("no notification on write")
	}
	if v, _ := read(t, ctx, fd); v != 11 {
		t.Errorf("accumulated %d", v)
	}
	if _, err := vfstest.Read(ctx, fd, 7); !errors.Is(err, unix.EINVAL) {
		t.Errorf("7-byte read: %v", err)
	}
	if _, err := vfstest.Write(ctx, fd, []byte{1, 2, 3}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("short write: %v", err)
	}
	if _, err := vfstest.Write(ctx, fd, u64(^uint64(0))); !errors.Is(err, unix.EINVAL) {
		t.Errorf("write of 2^64-1: %v", err)
	}
	if _, err := vfstest.Write(ctx, fd, u64(^uint64(0)-1)); err != nil {
		t.Errorf("write of 2^64-2: %v", err)
	}
	if fd.Readiness(waiter.WritableEvents) != 0 {
		t.Errorf("full counter writable")
	}
	if n, err := vfstest.Write(ctx, fd, u64(1)); !errors.Is(err, unix.EAGAIN) || n != 0 {
		t.Errorf("overflowing write: %d, %v; want 0, EAGAIN", n, err)
	}
	if _, err := vfstest.Write(ctx, fd, u64(0)); err != nil {
		t.Errorf("write of 0 on a full counter: %v", err)
	}
}

func TestSemaphore(t *testing.T) {
	ctx := context.Background()
	fd, err := eventfd.New(ctx, vfs.New(), 2, unix.EFD_SEMAPHORE)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.DecRef(ctx)
	for i := 0; i < 2; i++ {
		if v, err := read(t, ctx, fd); v != 1 || err != nil {
			t.Errorf("semaphore read %d = %d %v", i, v, err)
		}
	}
	if _, err := read(t, ctx, fd); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("exhausted semaphore: %v", err)
	}
	st, err := fd.Stat(ctx, vfs.StatOptions{})
	if err != nil || st.Mode != 0o600 {
		t.Errorf("anon inode stat mode %o %v", st.Mode, err)
	}
	if _, err := eventfd.New(ctx, vfs.New(), 0, 0x1234); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bad flags: %v", err)
	}
}
