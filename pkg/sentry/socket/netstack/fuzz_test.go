package netstack

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzSocketInput feeds arbitrary bytes where the application controls
// them: socket addresses for bind, connect and sendto, and option values
// at every level. Nothing may panic, and getsockopt must stay answerable.
func FuzzSocketInput(f *testing.F) {
	f.Add(inet("127.0.0.1", 80), 0, 6, []byte{1, 0, 0, 0})
	f.Add(inet("::ffff:127.0.0.1", 0), 1, 41, []byte{0, 0, 0, 0})
	f.Add(inet("fe80::1", 9), 2, 0, []byte{255})
	f.Add([]byte{10, 0}, 3, 1, make([]byte, 16))
	f.Add([]byte{}, 4, 6, []byte("reno"))
	f.Fuzz(func(t *testing.T, addr []byte, which int, level int, opt []byte) {
		e := newEnv(t)
		levels := []int{unix.SOL_SOCKET, unix.IPPROTO_TCP, unix.IPPROTO_IP, unix.IPPROTO_IPV6, unix.IPPROTO_UDP}
		lvl := levels[uint(level)%uint(len(levels))]
		for _, p := range []*Provider{e.v4, e.v6} {
			for _, st := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
				s := e.socket(p, st, 0)
				for name := 0; name < 80; name++ {
					s.SetSockOpt(nil, lvl, name, opt)
					s.GetSockOpt(nil, lvl, name, len(opt))
				}
				switch uint(which) % 4 {
				case 0:
					s.Bind(nil, addr)
				case 1:
					s.Connect(nil, addr)
				case 2:
					s.send([]byte("x"), addr, 0)
				case 3:
					s.Bind(nil, addr)
					s.Listen(nil, int(int8(which)))
					s.Accept(nil, 0)
				}
				s.SockName(nil)
				s.PeerName(nil)
				if got := s.getInt(unix.SOL_SOCKET, unix.SO_TYPE); got != st {
					t.Fatalf("SO_TYPE = %d after fuzzing, want %d", got, st)
				}
				s.close()
			}
		}
	})
}
