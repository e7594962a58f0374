package linux

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseSendControl feeds arbitrary sendmsg control buffers to the
// decoder: it must never panic, never accept more than SCM_MAX_FD
// descriptors, and accept only buffers whose headers all fit.
func FuzzParseSendControl(f *testing.F) {
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdsBytes(1, 2, 3)), true)
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, fdsBytes(1, 0, 0)), cmsg(unix.SOL_IP, 1, []byte{1})...), true)
	f.Add(cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, make([]byte, 4*254)), true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1, 0, 0, 0}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, buf []byte, isUnix bool) {
		family := unix.AF_INET
		if isUnix {
			family = unix.AF_UNIX
		}
		c, err := parseSendControl(buf, family)
		if err != nil {
			return
		}
		if len(c.fds) > scmMaxFD {
			t.Fatalf("accepted %d descriptors", len(c.fds))
		}
		// Every header walked must have fitted the buffer.
		for off := 0; off+sizeofCmsghdr <= len(buf); {
			l := binary.LittleEndian.Uint64(buf[off:])
			if l < sizeofCmsghdr || l > uint64(len(buf)-off) {
				t.Fatalf("accepted a cmsg_len %d at %d of %d", l, off, len(buf))
			}
			off += cmsgAlign(int(l))
		}
		if !isUnix && (len(c.fds) > 0 || c.hasCreds) {
			t.Fatal("AF_UNIX control messages accepted for another family")
		}
	})
}

// FuzzCmsgWriter checks put_cmsg truncation: the buffer never exceeds its
// limit, each written cmsg_len fits, and truncation is flagged.
func FuzzCmsgWriter(f *testing.F) {
	f.Add(64, []byte("abcdefgh"), 3)
	f.Add(20, []byte("0123456789abcdef"), 1)
	f.Add(0, []byte{}, 2)
	f.Fuzz(func(t *testing.T, limit int, data []byte, times int) {
		if limit < 0 || limit > 1<<16 || times < 0 || times > 8 {
			return
		}
		w := cmsgWriter{limit: limit}
		for range times {
			w.put(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, data)
		}
		// Everything fits when the last message's unpadded length does
		// (put_cmsg pads only when there is room).
		want := 0
		if times > 0 {
			want = (times-1)*cmsgAlign(sizeofCmsghdr+len(data)) + sizeofCmsghdr + len(data)
		}
		if len(w.buf) > limit {
			t.Fatalf("wrote %d bytes into a %d-byte buffer", len(w.buf), limit)
		}
		if want > limit && times > 0 && w.flags&unix.MSG_CTRUNC == 0 {
			t.Fatalf("needed %d of %d bytes without MSG_CTRUNC", want, limit)
		}
		if want <= limit && w.flags != 0 {
			t.Fatalf("flags %#x though everything fitted", w.flags)
		}
		for off := 0; off+sizeofCmsghdr <= len(w.buf); {
			l := int(binary.LittleEndian.Uint64(w.buf[off:]))
			if l < sizeofCmsghdr || off+l > len(w.buf) {
				t.Fatalf("bad cmsg_len %d at %d of %d", l, off, len(w.buf))
			}
			off += cmsgAlign(l)
		}
	})
}

// FuzzDecodeMsghdr checks that any 56 bytes decode and that the fields
// come from their ABI offsets.
func FuzzDecodeMsghdr(f *testing.F) {
	f.Add(make([]byte, sizeofMsghdr))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < sizeofMsghdr {
			return
		}
		m := decodeMsghdr(b)
		if uint64(m.iovLen) != binary.LittleEndian.Uint64(b[24:]) || uint64(m.controlLen) != binary.LittleEndian.Uint64(b[40:]) {
			t.Fatal("fields decoded from the wrong offsets")
		}
	})
}
