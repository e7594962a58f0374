package signalfd

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// queue is a Source holding pending signals in order.
type queue struct {
	infos   []linux.SignalInfo
	waiters waiter.Queue
}

func (q *queue) DequeueSignal(set linux.SignalSet) (linux.SignalInfo, bool) {
	for i, info := range q.infos {
		if set.Contains(linux.Signal(info.Signo)) {
			q.infos = append(q.infos[:i], q.infos[i+1:]...)
			return info, true
		}
	}
	return linux.SignalInfo{}, false
}

func (q *queue) PendingIn(set linux.SignalSet) bool {
	for _, info := range q.infos {
		if set.Contains(linux.Signal(info.Signo)) {
			return true
		}
	}
	return false
}

func (q *queue) SignalWaiters() *waiter.Queue { return &q.waiters }

func (q *queue) send(sig linux.Signal, pid int32) {
	info := linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}
	info.SetPid(pid)
	q.infos = append(q.infos, info)
	q.waiters.Notify(waiter.EventIn)
}

func read(t *testing.T, fd *vfs.FileDescription, n int) ([]byte, error) {
	t.Helper()
	b := make([]byte, n)
	seq, err := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(n), usermem.IOOpts{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fd.Read(context.Background(), seq, vfs.ReadOptions{})
	return b[:got], err
}

func TestReadReadinessAndMask(t *testing.T) {
	ctx := context.Background()
	v := vfs.New()
	q := &queue{}
	fd, err := New(ctx, v, q, linux.MakeSignalSet(linux.SIGUSR1, linux.SIGKILL), unix.SFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.DecRef(ctx)
	f, _ := FromFile(fd)
	if f.Mask().Contains(linux.SIGKILL) {
		t.Fatal("SIGKILL kept in the mask")
	}
	if _, err := New(ctx, v, q, 0, 0x1); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad flags: %v", err)
	}
	e, ch := waiter.NewChannelEntry(waiter.EventIn)
	fd.EventRegister(e)
	defer fd.EventUnregister(e)
	if _, err := read(t, fd, SizeOfSiginfo); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("empty read: %v", err)
	}
	q.send(linux.SIGUSR2, 5)
	if fd.Readiness(waiter.EventIn) != 0 {
		t.Fatal("readable for a signal outside the mask")
	}
	q.send(linux.SIGUSR1, 6)
	q.send(linux.SIGUSR1, 7)
	select {
	case <-ch:
	default:
		t.Fatal("no readiness notification")
	}
	if fd.Readiness(waiter.EventIn) == 0 {
		t.Fatal("not readable")
	}
	if _, err := read(t, fd, 100); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("short buffer: %v", err)
	}
	// Two records fit; both are taken in order.
	b, err := read(t, fd, 3*SizeOfSiginfo-1)
	if err != nil || len(b) != 2*SizeOfSiginfo {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
	if p1, p2 := binary.LittleEndian.Uint32(b[12:]), binary.LittleEndian.Uint32(b[SizeOfSiginfo+12:]); p1 != 6 || p2 != 7 {
		t.Fatalf("pids %d %d", p1, p2)
	}
	f.SetMask(linux.MakeSignalSet(linux.SIGUSR2))
	if b, err := read(t, fd, SizeOfSiginfo); err != nil || binary.LittleEndian.Uint32(b) != uint32(linux.SIGUSR2) {
		t.Fatalf("after SetMask: %v %v", b, err)
	}
}
