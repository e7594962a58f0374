package strace

import (
	"encoding/binary"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// Memory reads the traced application's memory.
type Memory interface {
	// ReadMemory fills p from address addr, reporting whether all of it
	// could be read.
	ReadMemory(addr uintptr, p []byte) bool
}

// Struct argument kinds: a pointer whose target is shown. "Out" kinds are
// written by the call and shown only when it succeeded.
const (
	firstStructKind argKind = 64 + iota
	kindTimespecIn
	kindTimespecOut
	kindStatOut
	kindSigactionIn
	kindSigactionOut
)

func init() {
	structArgs := map[uintptr]map[int]argKind{
		linux.SYS_NANOSLEEP:       {0: kindTimespecIn},
		linux.SYS_CLOCK_GETTIME:   {1: kindTimespecOut},
		linux.SYS_CLOCK_GETRES:    {1: kindTimespecOut},
		linux.SYS_CLOCK_NANOSLEEP: {2: kindTimespecIn},
		linux.SYS_FSTAT:           {1: kindStatOut},
		linux.SYS_STAT:            {1: kindStatOut},
		linux.SYS_LSTAT:           {1: kindStatOut},
		linux.SYS_NEWFSTATAT:      {2: kindStatOut},
		linux.SYS_RT_SIGACTION:    {1: kindSigactionIn, 2: kindSigactionOut},
	}
	for nr, m := range structArgs {
		k := argKinds[nr]
		for i, kind := range m {
			k[i] = kind
		}
		argKinds[nr] = k
	}
	argCounts[linux.SYS_CLOCK_GETRES] = 2
	argCounts[linux.SYS_CLOCK_NANOSLEEP] = 4
}

// writeStruct shows the struct at addr, or the address when there is no
// memory, the pointer is NULL, the call failed for an out struct, or the
// struct cannot be read.
func writeStruct(b *strings.Builder, kind argKind, addr uintptr, mem Memory, succeeded bool) {
	out := kind == kindTimespecOut || kind == kindStatOut || kind == kindSigactionOut
	var buf [64]byte
	var size int
	switch kind {
	case kindTimespecIn, kindTimespecOut:
		size = 16
	case kindStatOut:
		size = 64
	case kindSigactionIn, kindSigactionOut:
		size = 32
	}
	if mem == nil || addr == 0 || (out && !succeeded) || !mem.ReadMemory(addr, buf[:size]) {
		b.WriteString("0x")
		b.WriteString(strconv.FormatUint(uint64(addr), 16))
		return
	}
	le := binary.LittleEndian
	switch kind {
	case kindTimespecIn, kindTimespecOut:
		b.WriteString("{tv_sec=")
		b.WriteString(strconv.FormatInt(int64(le.Uint64(buf[0:])), 10))
		b.WriteString(", tv_nsec=")
		b.WriteString(strconv.FormatInt(int64(le.Uint64(buf[8:])), 10))
		b.WriteByte('}')
	case kindStatOut:
		// struct stat on x86-64: st_mode at 24, st_uid 28, st_gid 32,
		// st_size 48.
		b.WriteString("{st_mode=")
		writeFileMode(b, le.Uint32(buf[24:]))
		b.WriteString(", st_uid=")
		b.WriteString(strconv.FormatUint(uint64(le.Uint32(buf[28:])), 10))
		b.WriteString(", st_gid=")
		b.WriteString(strconv.FormatUint(uint64(le.Uint32(buf[32:])), 10))
		b.WriteString(", st_size=")
		b.WriteString(strconv.FormatInt(int64(le.Uint64(buf[48:])), 10))
		b.WriteString(", ...}")
	case kindSigactionIn, kindSigactionOut:
		// The kernel's struct sigaction: handler, flags, restorer, mask.
		b.WriteString("{sa_handler=")
		switch h := le.Uint64(buf[0:]); h {
		case 0:
			b.WriteString("SIG_DFL")
		case 1:
			b.WriteString("SIG_IGN")
		default:
			b.WriteString("0x")
			b.WriteString(strconv.FormatUint(h, 16))
		}
		b.WriteString(", sa_mask=0x")
		b.WriteString(strconv.FormatUint(le.Uint64(buf[24:]), 16))
		b.WriteString(", sa_flags=")
		writeFlags(b, le.Uint64(buf[8:]), sigactionFlags)
		b.WriteByte('}')
	}
}

var sigactionFlags = []flag{
	{linux.SA_SIGINFO, "SA_SIGINFO"}, {linux.SA_RESTORER, "SA_RESTORER"}, {linux.SA_ONSTACK, "SA_ONSTACK"},
	{linux.SA_RESTART, "SA_RESTART"}, {linux.SA_NODEFER, "SA_NODEFER"}, {linux.SA_RESETHAND, "SA_RESETHAND"},
	{linux.SA_NOCLDSTOP, "SA_NOCLDSTOP"}, {linux.SA_NOCLDWAIT, "SA_NOCLDWAIT"},
}

var fileTypes = map[uint32]string{
	unix.S_IFREG: "S_IFREG", unix.S_IFDIR: "S_IFDIR", unix.S_IFLNK: "S_IFLNK", unix.S_IFCHR: "S_IFCHR",
	unix.S_IFBLK: "S_IFBLK", unix.S_IFIFO: "S_IFIFO", unix.S_IFSOCK: "S_IFSOCK",
}

// writeFileMode writes S_IFREG|0644.
func writeFileMode(b *strings.Builder, m uint32) {
	if n, ok := fileTypes[m&unix.S_IFMT]; ok {
		b.WriteString(n)
		b.WriteByte('|')
	}
	b.WriteString("0")
	b.WriteString(strconv.FormatUint(uint64(m&0o7777), 8))
}
