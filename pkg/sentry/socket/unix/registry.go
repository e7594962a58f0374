package unix

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	sys "golang.org/x/sys/unix"
)

// registry is the set of live AF_UNIX sockets that have a file, which
// /proc/net/unix lists. Only socket creation and close touch it.
type registry struct {
	mu    sync.Mutex
	socks map[*sock]uint64 // socket → its file's inode number
}

// newFile makes s's socket file and records it in the registry.
func (p *Provider) newFile(v *vfs.VirtualFilesystem, creds *auth.Credentials, s *sock, flags uint32) *vfs.FileDescription {
	fd := socket.NewFile(v, creds, s, flags)
	var ino uint64
	if st, err := fd.Inode().Stat(context.Background(), sys.STATX_INO); err == nil {
		ino = st.Ino
	}
	p.reg.mu.Lock()
	if p.reg.socks == nil {
		p.reg.socks = make(map[*sock]uint64)
	}
	p.reg.socks[s] = ino
	p.reg.mu.Unlock()
	return fd
}

func (p *Provider) untrack(s *sock) {
	p.reg.mu.Lock()
	delete(p.reg.socks, s)
	p.reg.mu.Unlock()
}

// Linux's socket states (SS_*) and __SO_ACCEPTCON as /proc/net/unix
// prints them.
const (
	ssUnconnected = 1
	ssConnected   = 3
	soAcceptCon   = 1 << 16
)

// ProcNet returns /proc/net/unix for name "unix"; ok is false otherwise.
// Each line is: kernel address (hidden, as with kptr_restrict), refcount,
// protocol, flags, type, state, inode and the bound path ('@' starts an
// abstract name, whose NULs print as '@').
func (p *Provider) ProcNet(name string) (content []byte, ok bool) {
	if name != "unix" {
		return nil, false
	}
	rows := p.reg.sorted()
	var b bytes.Buffer
	b.WriteString("Num       RefCount Protocol Flags    Type St Inode Path\n")
	for _, r := range rows {
		s := r.s
		s.mu.Lock()
		flags, state := 0, ssUnconnected
		if s.listening {
			flags = soAcceptCon
		} else if s.connected && s.connectionOriented() && s.peer != nil {
			state = ssConnected
		}
		path := procPath(s.addr)
		s.mu.Unlock()
		fmt.Fprintf(&b, "0000000000000000: %08X %08X %08X %04X %02X %5d", 2, 0, flags, s.stype, state, r.ino)
		if path != "" {
			b.WriteByte(' ')
			b.WriteString(path)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), true
}

// procPath renders a bound sockaddr_un's path for /proc/net/unix.
func procPath(addr []byte) string {
	const familySize = 2
	if len(addr) <= familySize {
		return ""
	}
	p := addr[familySize:]
	if p[0] == 0 {
		return "@" + string(bytes.ReplaceAll(p[1:], []byte{0}, []byte{'@'}))
	}
	if i := bytes.IndexByte(p, 0); i >= 0 {
		p = p[:i]
	}
	return string(p)
}
