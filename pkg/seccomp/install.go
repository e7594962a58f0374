package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"carapace.dev/carapace/pkg/bpf"
	"golang.org/x/sys/unix"
)

// Filter flags for InstallProgram.
const (
	// FlagTSync applies the filter to every thread of the process
	// (SECCOMP_FILTER_FLAG_TSYNC); Go programs need it, since goroutines
	// move between threads.
	FlagTSync = unix.SECCOMP_FILTER_FLAG_TSYNC
	// FlagLog makes the kernel log every action but allow
	// (SECCOMP_FILTER_FLAG_LOG).
	FlagLog = unix.SECCOMP_FILTER_FLAG_LOG
)

// Install compiles s and installs it on every thread of the calling process.
// It cannot be undone.
func Install(s *RuleSet, opts Options) error {
	p, err := Compile(s, opts)
	if err != nil {
		return err
	}
	flags := uint32(FlagTSync)
	if opts.KernelLog {
		flags |= FlagLog
	}
	return InstallProgram(p, flags)
}

// InstallProgram sets no_new_privs and installs p with seccomp(2)
// SECCOMP_SET_MODE_FILTER and flags. Without FlagTSync only the calling OS
// thread is filtered, so callers then need runtime.LockOSThread.
func InstallProgram(p bpf.Program, flags uint32) error {
	if p.Kind() != bpf.SeccompFilter || p.Len() == 0 {
		return fmt.Errorf("seccomp: install: program was not validated as a seccomp filter")
	}
	insns := p.Instructions()
	filter := make([]unix.SockFilter, len(insns))
	for i, ins := range insns {
		filter[i] = unix.SockFilter{Code: ins.OpCode, Jt: ins.JumpIfTrue, Jf: ins.JumpIfFalse, K: ins.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	// no_new_privs is per thread (TSYNC propagates it), so set it on the
	// thread that installs the filter.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, errno)
	}
	if r != 0 {
		// With TSYNC a positive result names a thread that could not be
		// synchronized; the filter was not installed.
		return fmt.Errorf("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): thread %d could not be synchronized", r)
	}
	return nil
}
