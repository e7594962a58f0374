package unix_test

import (
	"fmt"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"golang.org/x/sys/unix"
)

func TestProcNetUnixListsLiveSockets(t *testing.T) {
	e := newEnv(t)
	a, b, _, _ := e.pair(unix.SOCK_STREAM)
	lfd, err := e.p.Socket(e.task, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := socket.FromFile(lfd)
	if err := l.Bind(e.task, []byte{unix.AF_UNIX, 0, 0, 'r', 'e', 'g', 0, 'x'}); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(e.task, 1); err != nil {
		t.Fatal(err)
	}
	stA, _ := a.Inode().Stat(e.task, unix.STATX_INO)
	stL, _ := lfd.Inode().Stat(e.task, unix.STATX_INO)

	out, ok := e.p.ProcNet("unix")
	if !ok {
		t.Fatal("ProcNet(\"unix\") not answered")
	}
	text := string(out)
	if !strings.HasPrefix(text, "Num       RefCount Protocol Flags    Type St Inode Path\n") {
		t.Errorf("header: %q", strings.SplitN(text, "\n", 2)[0])
	}
	wantPair := fmt.Sprintf(": 00000002 00000000 00000000 0001 03 %5d\n", stA.Ino)
	wantListener := fmt.Sprintf(": 00000002 00000000 00010000 0001 01 %5d @reg@x\n", stL.Ino)
	for _, w := range []string{wantPair, wantListener} {
		if !strings.Contains(text, w) {
			t.Errorf("/proc/net/unix lacks %q:\n%s", w, text)
		}
	}
	if n := strings.Count(text, "\n"); n != 4 {
		t.Errorf("%d lines, want header + 3 sockets:\n%s", n, text)
	}
	a.DecRef(e.task)
	b.DecRef(e.task)
	lfd.DecRef(e.task)
	out, _ = e.p.ProcNet("unix")
	if n := strings.Count(string(out), "\n"); n != 1 {
		t.Errorf("closed sockets still listed:\n%s", out)
	}
	if _, ok := e.p.ProcNet("tcp"); ok {
		t.Error("AF_UNIX answered tcp")
	}
}
