package gofer_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/fsgofer"
	"golang.org/x/sys/unix"
)

// noDonate wraps fsgofer's files so that the server never donates a host
// descriptor: every read and write then goes over 9P.
type noDonate struct{ p9.File }

func unwrap(f p9.File) p9.File {
	if n, ok := f.(noDonate); ok {
		return n.File
	}
	return f
}

func (f noDonate) Walk(names []string) ([]p9.QID, p9.File, error) {
	q, nf, err := f.File.Walk(names)
	if nf != nil {
		nf = noDonate{nf}
	}
	return q, nf, err
}

func (f noDonate) Open(flags p9.OpenFlags) (*os.File, p9.QID, uint32, error) {
	d, q, io, err := f.File.Open(flags)
	if d != nil {
		d.Close()
	}
	return nil, q, io, err
}

func (f noDonate) Create(name string, flags p9.OpenFlags, mode uint32, uid p9.UID, gid p9.GID) (p9.File, *os.File, p9.QID, uint32, error) {
	nf, d, q, io, err := f.File.Create(name, flags, mode, uid, gid)
	if d != nil {
		d.Close()
	}
	if nf != nil {
		nf = noDonate{nf}
	}
	return nf, nil, q, io, err
}

func (f noDonate) Link(target p9.File, name string) error { return f.File.Link(unwrap(target), name) }
func (f noDonate) Rename(newDir p9.File, newName string) error {
	return f.File.Rename(unwrap(newDir), newName)
}
func (f noDonate) RenameAt(oldName string, newDir p9.File, newName string) error {
	return f.File.RenameAt(oldName, unwrap(newDir), newName)
}

type noDonateAttacher struct{ a *fsgofer.Attacher }

func (n noDonateAttacher) Attach(name string, uid p9.UID) (p9.File, error) {
	f, err := n.a.Attach(name, uid)
	if err != nil {
		return nil, err
	}
	return noDonate{f}, nil
}

func serveNoDonate(t testing.TB, hostPath string) *p9.Client {
	t.Helper()
	att, err := fsgofer.NewAttacher(fsgofer.Mount{HostPath: hostPath})
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := unet.SocketPair(false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- p9.NewServer(noDonateAttacher{att}).Handle(context.Background(), a)
	}()
	c, err := p9.NewClient(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-done
		att.Close()
	})
	return c
}

func TestIOWithoutDonatedDescriptors(t *testing.T) {
	e := newEnv(t, envOpts{noDonate: true})
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	// Larger than one message, so the client splits it.
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	if n, err := vfstest.Write(e.ctx, fd, data); err != nil || n != int64(len(data)) {
		t.Fatalf("write = %d, %v", n, err)
	}
	host, _ := os.ReadFile(e.hostPath("f"))
	if !bytes.Equal(host, data) {
		t.Fatalf("host has %d bytes", len(host))
	}
	got := make([]byte, len(data)+10)
	n, err := fd.PRead(e.ctx, vfstest.Seq(got), 0, vfs.ReadOptions{})
	if err != nil || !bytes.Equal(got[:n], data) {
		t.Fatalf("read back %d, %v", n, err)
	}
	// O_APPEND without a host descriptor asks the Gofer for the size.
	afd := e.open("/f", unix.O_WRONLY|unix.O_APPEND)
	vfstest.Write(e.ctx, afd, []byte("END"))
	afd.DecRef(e.ctx)
	host, _ = os.ReadFile(e.hostPath("f"))
	if string(host[len(host)-3:]) != "END" || len(host) != len(data)+3 {
		t.Fatalf("append: len %d tail %q", len(host), host[len(host)-3:])
	}
	// mmap fills pages over 9P and writes back over 9P.
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x100000, End: 0x100000 + 2*4096}
	m, pages := mapAll(e, fd, ms, ar, true)
	if !bytes.Equal(pages[1], data[4096:8192]) {
		t.Fatal("mapped page differs")
	}
	copy(pages[0], "9P!")
	m.RemoveMapping(e.ctx, ms, ar, 0, true)
	host, _ = os.ReadFile(e.hostPath("f"))
	if string(host[:3]) != "9P!" {
		t.Fatalf("write-back over 9P: %q", host[:3])
	}
	e.must(fd.Sync(e.ctx))
}
