package loader

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"context"
	"encoding/binary"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// Limits execve places on arguments (include/uapi/linux/binfmts.h and the
// default RLIMIT_STACK/4 rule of fs/exec.c).
const (
	MaxArgStrlen  = 32 * hostarch.PageSize
	MaxArgsTotal  = 8 << 20 / 4
	platformName  = "x86_64"
	pointerSize   = 8
	stackAlign    = 16
	randomDataLen = 16
)

// AuxEntry is one (key, value) pair of the auxiliary vector.
type AuxEntry struct {
	Key   uint64
	Value uint64
}

// StackLayout says where the initial stack put things; /proc/[pid]/cmdline
// and environ read the argument and environment areas back.
type StackLayout struct {
	SP                 hostarch.Addr // points at argc
	ArgvStart, ArgvEnd hostarch.Addr
	EnvvStart, EnvvEnd hostarch.Addr
	Execfn, Platform   hostarch.Addr
	Random             hostarch.Addr
	Auxv               []AuxEntry // as written, with the addresses filled in
	StringsBottom      hostarch.Addr
}

// checkArgs applies execve's limits: E2BIG for a string longer than
// MAX_ARG_STRLEN or a total beyond a quarter of the default stack limit.
func checkArgs(argv, envv []string) error {
	total := 0
	for _, list := range [][]string{argv, envv} {
		for _, s := range list {
			if len(s)+1 > MaxArgStrlen {
				return fmt.Errorf("argument of %d bytes: %w", len(s), unix.E2BIG)
			}
			total += len(s) + 1 + pointerSize
		}
	}
	if total > MaxArgsTotal {
		return fmt.Errorf("arguments total %d bytes: %w", total, unix.E2BIG)
	}
	return nil
}

// buildStack writes the System V initial process stack below top, in the
// order Linux uses (highest first): a NULL word, the executable's name, the
// environment strings, the argument strings, the platform string, the 16
// linux.AT_RANDOM bytes, then — 16-byte aligned at argc — argc, argv[], NULL,
// envp[], NULL, auxv pairs ending in linux.AT_NULL. linux.AT_EXECFN, linux.AT_PLATFORM and
// linux.AT_RANDOM are appended to auxv here with the addresses chosen.
func buildStack(ctx context.Context, io usermem.IO, top hostarch.Addr, argv, envv []string, execfn string, random [randomDataLen]byte, auxv []AuxEntry) (StackLayout, error) {
	var l StackLayout
	if err := checkArgs(argv, envv); err != nil {
		return l, err
	}
	sp := top - pointerSize // the terminating NULL word
	if _, err := io.ZeroOut(ctx, sp, pointerSize, usermem.IOOpts{}); err != nil {
		return l, fmt.Errorf("writing stack end marker: %w", err)
	}
	putString := func(s string) (hostarch.Addr, error) {
		b := make([]byte, len(s)+1)
		copy(b, s)
		sp -= hostarch.Addr(len(b))
		if _, err := io.CopyOut(ctx, sp, b, usermem.IOOpts{}); err != nil {
			return 0, fmt.Errorf("writing initial stack strings: %w", err)
		}
		return sp, nil
	}
	var err error
	if l.Execfn, err = putString(execfn); err != nil {
		return l, err
	}
	l.EnvvEnd = l.Execfn
	envAddrs := make([]hostarch.Addr, len(envv))
	for i := len(envv) - 1; i >= 0; i-- {
		if envAddrs[i], err = putString(envv[i]); err != nil {
			return l, err
		}
	}
	l.EnvvStart = sp
	l.ArgvEnd = sp
	argAddrs := make([]hostarch.Addr, len(argv))
	for i := len(argv) - 1; i >= 0; i-- {
		if argAddrs[i], err = putString(argv[i]); err != nil {
			return l, err
		}
	}
	l.ArgvStart = sp
	l.StringsBottom = sp
	sp &^= stackAlign - 1
	if l.Platform, err = putString(platformName); err != nil {
		return l, err
	}
	sp -= randomDataLen
	l.Random = sp
	if _, err := io.CopyOut(ctx, sp, random[:], usermem.IOOpts{}); err != nil {
		return l, fmt.Errorf("writing linux.AT_RANDOM bytes: %w", err)
	}

	l.Auxv = append(append([]AuxEntry(nil), auxv...),
		AuxEntry{linux.AT_PLATFORM, uint64(l.Platform)},
		AuxEntry{linux.AT_RANDOM, uint64(l.Random)},
		AuxEntry{linux.AT_EXECFN, uint64(l.Execfn)},
		AuxEntry{linux.AT_NULL, 0})
	words := 1 + len(argv) + 1 + len(envv) + 1 + 2*len(l.Auxv)
	sp = (sp - hostarch.Addr(words*pointerSize)) &^ (stackAlign - 1)
	l.SP = sp
	buf := make([]byte, 0, words*pointerSize)
	le := binary.LittleEndian
	buf = le.AppendUint64(buf, uint64(len(argv)))
	for _, a := range argAddrs {
		buf = le.AppendUint64(buf, uint64(a))
	}
	buf = le.AppendUint64(buf, 0)
	for _, a := range envAddrs {
		buf = le.AppendUint64(buf, uint64(a))
	}
	buf = le.AppendUint64(buf, 0)
	for _, e := range l.Auxv {
		buf = le.AppendUint64(buf, e.Key)
		buf = le.AppendUint64(buf, e.Value)
	}
	if _, err := io.CopyOut(ctx, sp, buf, usermem.IOOpts{}); err != nil {
		return l, fmt.Errorf("writing argc/argv/envp/auxv: %w", err)
	}
	return l, nil
}
