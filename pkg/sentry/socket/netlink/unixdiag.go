package netlink

import (
	"encoding/binary"

	unixsock "carapace.dev/carapace/pkg/sentry/socket/unix"
	"golang.org/x/sys/unix"
)

// unix_diag (`ss -x`): SOCK_DIAG_BY_FAMILY for AF_UNIX with struct
// unix_diag_req, answered from the AF_UNIX provider's sockets.

// Wire sizes and flags of linux/unix_diag.h.
const (
	unixDiagReqSize = 24 // struct unix_diag_req
	unixDiagMsgSize = 16 // struct unix_diag_msg

	udiagShowName    = 0x01
	udiagShowPeer    = 0x04
	udiagShowIcons   = 0x08
	udiagShowRQLen   = 0x10
	udiagShowMeminfo = 0x20

	unixDiagName     = 0
	unixDiagPeer     = 2
	unixDiagIcons    = 3
	unixDiagRQLen    = 4
	unixDiagMeminfo  = 5
	unixDiagShutdown = 6
)

// UnixSource is what unix_diag reads: the AF_UNIX provider implements it.
type UnixSource interface {
	DiagSockets() []unixsock.DiagSocket
}

// unixDiagRequest is struct unix_diag_req.
type unixDiagRequest struct {
	states, ino, show uint32
	cookie            [2]uint32
}

func parseUnixDiagReq(b []byte) (r unixDiagRequest, ok bool) {
	if len(b) < unixDiagReqSize {
		return r, false
	}
	r.states = binary.LittleEndian.Uint32(b[4:])
	r.ino = binary.LittleEndian.Uint32(b[8:])
	r.show = binary.LittleEndian.Uint32(b[12:])
	r.cookie = [2]uint32{binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint32(b[20:])}
	return r, true
}

// handleUnixDiag answers an AF_UNIX request: a dump of the sockets whose
// state is in udiag_states, or the one socket of inode udiag_ino (EINVAL
// for 0, ENOENT if none, ESTALE for another cookie), as Linux does.
func handleUnixDiag(m Message, pid uint32, sources diagSources) [][]byte {
	req, ok := parseUnixDiagReq(m.Payload)
	if !ok {
		return diagAck(m, pid, unix.EINVAL)
	}
	if _, ok := ParseAttrs(m.Payload[unixDiagReqSize:]); !ok {
		return diagAck(m, pid, unix.EINVAL)
	}
	src, _ := sources(unix.AF_UNIX).(UnixSource)
	var socks []unixsock.DiagSocket
	if src != nil {
		socks = src.DiagSockets()
	}
	var w diagWriter
	if m.Flags&flagDump != 0 {
		for i := range socks {
			if req.states&(1<<socks[i].State) != 0 {
				w.unixMsg(&socks[i], flagMulti, m.Seq, pid, req.show)
			}
		}
		w.begin(msgDone, flagMulti, m.Seq, pid)
		w.put(make([]byte, 4))
		w.end()
		return w.finish()
	}
	if req.ino == 0 {
		return diagAck(m, pid, unix.EINVAL)
	}
	for i := range socks {
		d := &socks[i]
		if uint32(d.Inode) != req.ino {
			continue
		}
		if req.cookie != [2]uint32{inetDiagNoCookie, inetDiagNoCookie} && req.cookie != [2]uint32{uint32(d.Inode), uint32(d.Inode >> 32)} {
			return diagAck(m, pid, unix.ESTALE)
		}
		w.unixMsg(d, 0, m.Seq, pid, req.show)
		out := w.finish()
		if m.Flags&flagAck != 0 {
			out = append(out, diagAck(m, pid, 0)...)
		}
		return out
	}
	return diagAck(m, pid, unix.ENOENT)
}

// unixMsg appends struct unix_diag_msg and the attributes show asks for,
// in Linux's order; UNIX_DIAG_SHUTDOWN always. UDIAG_SHOW_VFS and
// UDIAG_SHOW_UID are not answered.
func (w *diagWriter) unixMsg(d *unixsock.DiagSocket, flags uint16, seq, pid, show uint32) {
	w.begin(sockDiagByFamily, flags, seq, pid)
	var b [unixDiagMsgSize]byte
	b[0], b[1], b[2] = unix.AF_UNIX, uint8(d.Type), d.State
	binary.LittleEndian.PutUint32(b[4:], uint32(d.Inode))
	binary.LittleEndian.PutUint32(b[8:], uint32(d.Inode))
	binary.LittleEndian.PutUint32(b[12:], uint32(d.Inode>>32))
	w.put(b[:])
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	if show&udiagShowName != 0 && d.Name != nil {
		w.attr(unixDiagName, d.Name)
	}
	if show&udiagShowPeer != 0 && d.HasPeer {
		w.attr(unixDiagPeer, u32(uint32(d.PeerInode)))
	}
	if show&udiagShowIcons != 0 && d.State == 10 {
		icons := make([]byte, 0, 4*len(d.Pending))
		for _, ino := range d.Pending {
			icons = binary.LittleEndian.AppendUint32(icons, uint32(ino))
		}
		w.attr(unixDiagIcons, icons)
	}
	if show&udiagShowRQLen != 0 {
		w.attr(unixDiagRQLen, append(u32(d.RecvQueue), u32(d.SendQueue)...))
	}
	if show&udiagShowMeminfo != 0 {
		var sm [skMeminfoVars * 4]byte
		binary.LittleEndian.PutUint32(sm[0:], d.RecvQueue)
		binary.LittleEndian.PutUint32(sm[4:], d.RcvBuf)
		binary.LittleEndian.PutUint32(sm[8:], d.SendQueue)
		binary.LittleEndian.PutUint32(sm[12:], d.SndBuf)
		w.attr(unixDiagMeminfo, sm[:])
	}
	w.attrU8(unixDiagShutdown, d.Shutdown)
	w.end()
}
