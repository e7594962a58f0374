package loader

import (
	"bytes"
	"carapace.dev/carapace/pkg/abi/linux"
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

func isSpaceTab(c byte) bool   { return c == ' ' || c == '\t' }
func isTerminator(c byte) bool { return c == ' ' || c == '\t' || c == 0 }

// ParseShebang parses the "#!" line at the start of a file as Linux does:
// hdr is the file's first bytes (up to 256). The interpreter is the first
// word after "#!" (leading blanks skipped); everything after the blanks
// that follow it, up to the end of the line with trailing blanks removed,
// is one optional argument, spaces included. A line with no newline in
// the buffer is accepted only if the interpreter name visibly ends inside
// it; otherwise it may have been truncated and the result is ENOEXEC.
func ParseShebang(hdr []byte) (interp, arg string, err error) {
	buf := make([]byte, binprmBufSize)
	copy(buf, hdr)
	if len(hdr) < 2 || buf[0] != '#' || buf[1] != '!' {
		return "", "", fmt.Errorf("not a script: %w", unix.ENOEXEC)
	}
	end := bytes.IndexByte(buf, '\n')
	if end < 0 {
		first := 2
		for first < len(buf) && isSpaceTab(buf[first]) {
			first++
		}
		if first == len(buf) {
			return "", "", fmt.Errorf("#! line is all blanks: %w", unix.ENOEXEC)
		}
		if bytes.IndexFunc(buf[first:], func(r rune) bool { return r < 0x80 && isTerminator(byte(r)) }) < 0 {
			return "", "", fmt.Errorf("#! interpreter name truncated: %w", unix.ENOEXEC)
		}
		end = len(buf)
	}
	for end > 2 && isSpaceTab(buf[end-1]) {
		end--
	}
	name := 2
	for name < end && isSpaceTab(buf[name]) {
		name++
	}
	if name >= end || buf[name] == 0 {
		return "", "", fmt.Errorf("#! line names no interpreter: %w", unix.ENOEXEC)
	}
	sep := name
	for sep < end && !isTerminator(buf[sep]) {
		sep++
	}
	interp = string(buf[name:sep])
	if sep < end && buf[sep] != 0 {
		a := sep
		for a < end && isSpaceTab(buf[a]) {
			a++
		}
		if a < end {
			rest := buf[a:end]
			if i := bytes.IndexByte(rest, 0); i >= 0 {
				rest = rest[:i]
			}
			arg = string(rest)
		}
	}
	return interp, arg, nil
}

var (
	hostAuxvOnce sync.Once
	hostAuxv     map[uint64]uint64
)

// HostAuxv returns the Sentry's own auxiliary vector (from
// /proc/self/auxv), the source of the CPU feature words (linux.AT_HWCAP,
// linux.AT_HWCAP2) and linux.AT_MINSIGSTKSZ given to applications. It is empty if
// the file cannot be read.
func HostAuxv() map[uint64]uint64 {
	hostAuxvOnce.Do(func() {
		hostAuxv = make(map[uint64]uint64)
		b, err := os.ReadFile("/proc/self/auxv")
		if err != nil {
			return
		}
		for i := 0; i+16 <= len(b); i += 16 {
			k := binary.LittleEndian.Uint64(b[i:])
			if k == linux.AT_NULL {
				break
			}
			hostAuxv[k] = binary.LittleEndian.Uint64(b[i+8:])
		}
	})
	return hostAuxv
}
