package proc_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	sunix "carapace.dev/carapace/pkg/sentry/socket/unix"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

func TestProcNet(t *testing.T) {
	e := newEnv(t)
	// Before any socket family is registered the files exist, empty.
	if got := e.read("/proc/net/tcp"); got != "" {
		t.Errorf("/proc/net/tcp without netstack = %q", got)
	}
	s := netstack.NewStack()
	lo, err := netstack.AddLoopback(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lo.Close)
	v4 := netstack.NewProvider(e.k.VFS(), s, unix.AF_INET)
	e.k.RegisterSocketProvider(unix.AF_INET, v4)
	e.k.RegisterSocketProvider(unix.AF_INET6, netstack.NewProvider(e.k.VFS(), s, unix.AF_INET6))
	e.k.RegisterSocketProvider(unix.AF_UNIX, sunix.NewProvider())

	want := []string{"dev", "if_inet6", "route", "snmp", "tcp", "tcp6", "udp", "udp6", "unix"}
	got := e.list("/proc/net")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("/proc/net lacks %s (has %v)", w, got)
		}
	}

	fd, err := v4.Socket(e.task, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.DecRef(e.task)
	sk, _ := socket.FromFile(fd)
	addr := []byte{unix.AF_INET, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0} // 127.0.0.1:8080
	if err := sk.Bind(e.task, addr); err != nil {
		t.Fatal(err)
	}
	if err := sk.Listen(e.task, 5); err != nil {
		t.Fatal(err)
	}
	st, _ := fd.Inode().Stat(e.task, unix.STATX_INO)
	tcp := e.read("/proc/net/tcp")
	row := fmt.Sprintf("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 %d 1 ", st.Ino)
	if !strings.Contains(tcp, row) {
		t.Errorf("/proc/net/tcp lacks %q:\n%s", row, tcp)
	}
	if dev := e.read("/proc/net/dev"); !strings.Contains(dev, "    lo: ") {
		t.Errorf("/proc/net/dev:\n%s", dev)
	}
	if u := e.read("/proc/net/unix"); !strings.HasPrefix(u, "Num       RefCount Protocol Flags    Type St Inode Path\n") {
		t.Errorf("/proc/net/unix = %q", u)
	}
}

// TestProcNetIsSelfNet checks the Linux layout: /proc/net is a symlink to
// self/net, and every process and thread has a net directory of its own
// (the files of its network namespace).
func TestProcNetIsSelfNet(t *testing.T) {
	e := newEnv(t)
	e.k.RegisterSocketProvider(unix.AF_UNIX, sunix.NewProvider())
	target, err := e.readlink("/proc/net")
	if err != nil || target != "self/net" {
		t.Fatalf("readlink /proc/net = %q, %v; want self/net", target, err)
	}
	pid := strconv.Itoa(int(e.task.ThreadGroup().ID()))
	tid := strconv.Itoa(int(e.task.ThreadID()))
	want := e.list("/proc/net")
	for _, dir := range []string{"/proc/self/net", "/proc/" + pid + "/net", "/proc/" + pid + "/task/" + tid + "/net"} {
		if got := e.list(dir); !slices.Equal(got, want) {
			t.Errorf("%s lists %v, /proc/net %v", dir, got, want)
		}
		if got := e.read(dir + "/unix"); !strings.HasPrefix(got, "Num ") {
			t.Errorf("%s/unix = %q", dir, got)
		}
	}
	if !slices.Contains(e.list("/proc/self"), "net") {
		t.Errorf("/proc/self lacks net")
	}
	st, err := e.k.VFS().StatAt(e.task, e.task.Credentials(), e.pop("/proc/self/net"), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil || st.Mode != unix.S_IFDIR|0o555 {
		t.Errorf("stat /proc/self/net = mode %o, %v; want a 0555 directory", st.Mode, err)
	}
}
