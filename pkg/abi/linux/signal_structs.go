package linux

// Sigaction is the kernel's struct sigaction as rt_sigaction(2) reads and
// writes it on amd64. Its field order differs from glibc's struct sigaction.
type Sigaction struct {
	Handler  uint64
	Flags    uint64
	Restorer uint64
	Mask     SignalSet
}

// SignalStack is stack_t, for sigaltstack(2) and UContext64.Stack.
type SignalStack struct {
	Addr  uint64
	Flags int32
	_     int32
	Size  uint64
}

// SignalInfo is siginfo_t: three ints, padding, then a 112-byte union whose
// meaning depends on Signo and Code. The accessors read and write the union
// members the Sentry uses; each names the siginfo(2) field it maps to.
type SignalInfo struct {
	Signo int32
	Errno int32
	Code  int32
	_     int32
	// Fields is the union, little-endian as in memory.
	Fields [112]byte
}

// SigContext is struct sigcontext on amd64, the register save area in a
// signal frame (uc_mcontext).
type SigContext struct {
	R8       uint64
	R9       uint64
	R10      uint64
	R11      uint64
	R12      uint64
	R13      uint64
	R14      uint64
	R15      uint64
	Rdi      uint64
	Rsi      uint64
	Rbp      uint64
	Rbx      uint64
	Rdx      uint64
	Rax      uint64
	Rcx      uint64
	Rsp      uint64
	Rip      uint64
	Eflags   uint64
	Cs       uint16
	Gs       uint16
	Fs       uint16
	Ss       uint16
	Err      uint64
	Trapno   uint64
	Oldmask  uint64
	Cr2      uint64
	Fpstate  uint64 // address of the FP/XSAVE area, 0 if none
	Reserved [8]uint64
}

// UContext64 is the fixed part of struct ucontext on amd64, as the kernel
// builds it in a signal frame (asm-generic/ucontext.h with the kernel's
// 8-byte sigset_t, not glibc's ucontext_t).
type UContext64 struct {
	Flags    uint64
	Link     uint64
	Stack    SignalStack
	MContext SigContext
	Sigmask  SignalSet
}

// UContext64 flags (uc_flags).
const (
	UC_FP_XSTATE         = 0x1
	UC_SIGCONTEXT_SS     = 0x2
	UC_STRICT_RESTORE_SS = 0x4
)

// Struct sizes.
const (
	SizeOfSigaction   = 32
	SizeOfSignalStack = 24
	SizeOfSignalInfo  = 128
	SizeOfSigContext  = 256
	SizeOfUContext64  = 304
)

// Offsets in SignalInfo.Fields of the union members.
const (
	siPidOffset     = 0 // _kill, _rt, _sigchld: si_pid
	siUIDOffset     = 4 // si_uid
	siStatusOffset  = 8 // _sigchld: si_status
	siUTimeOffset   = 16
	siSTimeOffset   = 24
	siValueOffset   = 8 // _rt and _timer: si_value (sigval, 8 bytes)
	siTimerIDOffset = 0 // _timer: si_tid
	siOverrunOffset = 4 // si_overrun
	siAddrOffset    = 0 // _sigfault: si_addr; _sigsys: si_call_addr
	siAddrLSBOffset = 8 // _sigfault: si_addr_lsb (short)
	siSyscallOffset = 8 // _sigsys: si_syscall
	siArchOffset    = 12
	siBandOffset    = 0 // _sigpoll: si_band (long)
	siFdOffset      = 8 // si_fd
)

func (s *SignalInfo) u32(off int) uint32      { return le.Uint32(s.Fields[off:]) }
func (s *SignalInfo) put32(off int, v uint32) { le.PutUint32(s.Fields[off:], v) }
func (s *SignalInfo) u64(off int) uint64      { return le.Uint64(s.Fields[off:]) }
func (s *SignalInfo) put64(off int, v uint64) { le.PutUint64(s.Fields[off:], v) }

// Pid returns si_pid (kill, sigqueue, SIGCHLD).
func (s *SignalInfo) Pid() int32 { return int32(s.u32(siPidOffset)) }

// SetPid sets si_pid.
func (s *SignalInfo) SetPid(pid int32) { s.put32(siPidOffset, uint32(pid)) }

// UID returns si_uid (kill, sigqueue, SIGCHLD).
func (s *SignalInfo) UID() uint32 { return s.u32(siUIDOffset) }

// SetUID sets si_uid.
func (s *SignalInfo) SetUID(uid uint32) { s.put32(siUIDOffset, uid) }

// Status returns si_status of SIGCHLD: the exit code for CLD_EXITED, else a
// signal number.
func (s *SignalInfo) Status() int32 { return int32(s.u32(siStatusOffset)) }

// SetStatus sets si_status.
func (s *SignalInfo) SetStatus(status int32) { s.put32(siStatusOffset, uint32(status)) }

// UTime returns si_utime of SIGCHLD, in clock ticks.
func (s *SignalInfo) UTime() int64 { return int64(s.u64(siUTimeOffset)) }

// SetUTime sets si_utime.
func (s *SignalInfo) SetUTime(t int64) { s.put64(siUTimeOffset, uint64(t)) }

// STime returns si_stime of SIGCHLD, in clock ticks.
func (s *SignalInfo) STime() int64 { return int64(s.u64(siSTimeOffset)) }

// SetSTime sets si_stime.
func (s *SignalInfo) SetSTime(t int64) { s.put64(siSTimeOffset, uint64(t)) }

// Value returns si_value (sigqueue and POSIX timers) as its 64 raw bits.
func (s *SignalInfo) Value() uint64 { return s.u64(siValueOffset) }

// SetValue sets si_value.
func (s *SignalInfo) SetValue(v uint64) { s.put64(siValueOffset, v) }

// TimerID returns si_timerid of a POSIX timer signal.
func (s *SignalInfo) TimerID() int32 { return int32(s.u32(siTimerIDOffset)) }

// SetTimerID sets si_timerid.
func (s *SignalInfo) SetTimerID(id int32) { s.put32(siTimerIDOffset, uint32(id)) }

// Overrun returns si_overrun of a POSIX timer signal.
func (s *SignalInfo) Overrun() int32 { return int32(s.u32(siOverrunOffset)) }

// SetOverrun sets si_overrun.
func (s *SignalInfo) SetOverrun(n int32) { s.put32(siOverrunOffset, uint32(n)) }

// Addr returns si_addr of SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP.
func (s *SignalInfo) Addr() uint64 { return s.u64(siAddrOffset) }

// SetAddr sets si_addr.
func (s *SignalInfo) SetAddr(addr uint64) { s.put64(siAddrOffset, addr) }

// AddrLSB returns si_addr_lsb of BUS_MCEERR_* signals.
func (s *SignalInfo) AddrLSB() int16 { return int16(le.Uint16(s.Fields[siAddrLSBOffset:])) }

// SetAddrLSB sets si_addr_lsb.
func (s *SignalInfo) SetAddrLSB(v int16) { le.PutUint16(s.Fields[siAddrLSBOffset:], uint16(v)) }

// CallAddr returns si_call_addr of SIGSYS: the address after the syscall
// instruction.
func (s *SignalInfo) CallAddr() uint64 { return s.u64(siAddrOffset) }

// SetCallAddr sets si_call_addr.
func (s *SignalInfo) SetCallAddr(addr uint64) { s.put64(siAddrOffset, addr) }

// Syscall returns si_syscall of SIGSYS.
func (s *SignalInfo) Syscall() int32 { return int32(s.u32(siSyscallOffset)) }

// SetSyscall sets si_syscall.
func (s *SignalInfo) SetSyscall(nr int32) { s.put32(siSyscallOffset, uint32(nr)) }

// Arch returns si_arch of SIGSYS (an AUDIT_ARCH_* value).
func (s *SignalInfo) Arch() uint32 { return s.u32(siArchOffset) }

// SetArch sets si_arch.
func (s *SignalInfo) SetArch(arch uint32) { s.put32(siArchOffset, arch) }

// Band returns si_band of SIGIO/SIGPOLL (poll event bits).
func (s *SignalInfo) Band() int64 { return int64(s.u64(siBandOffset)) }

// SetBand sets si_band.
func (s *SignalInfo) SetBand(band int64) { s.put64(siBandOffset, uint64(band)) }

// Fd returns si_fd of SIGIO/SIGPOLL.
func (s *SignalInfo) Fd() int32 { return int32(s.u32(siFdOffset)) }

// SetFd sets si_fd.
func (s *SignalInfo) SetFd(fd int32) { s.put32(siFdOffset, uint32(fd)) }

// AUDIT_ARCH_X86_64 is the si_arch and seccomp_data.arch of amd64
// (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
const AUDIT_ARCH_X86_64 = 0xc000003e

// SizeBytes implements Marshaler.
func (*Sigaction) SizeBytes() int { return SizeOfSigaction }

// MarshalBytes implements Marshaler.
func (a *Sigaction) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfSigaction-1]
	le.PutUint64(dst[0:], a.Handler)
	le.PutUint64(dst[8:], a.Flags)
	le.PutUint64(dst[16:], a.Restorer)
	le.PutUint64(dst[24:], uint64(a.Mask))
	return dst[SizeOfSigaction:]
}

// UnmarshalBytes implements Marshaler.
func (a *Sigaction) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfSigaction-1]
	a.Handler = le.Uint64(src[0:])
	a.Flags = le.Uint64(src[8:])
	a.Restorer = le.Uint64(src[16:])
	a.Mask = SignalSet(le.Uint64(src[24:]))
	return src[SizeOfSigaction:]
}

// SizeBytes implements Marshaler.
func (*SignalStack) SizeBytes() int { return SizeOfSignalStack }

// MarshalBytes implements Marshaler.
func (ss *SignalStack) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfSignalStack-1]
	le.PutUint64(dst[0:], ss.Addr)
	le.PutUint32(dst[8:], uint32(ss.Flags))
	le.PutUint32(dst[12:], 0)
	le.PutUint64(dst[16:], ss.Size)
	return dst[SizeOfSignalStack:]
}

// UnmarshalBytes implements Marshaler.
func (ss *SignalStack) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfSignalStack-1]
	*ss = SignalStack{Addr: le.Uint64(src[0:]), Flags: int32(le.Uint32(src[8:])), Size: le.Uint64(src[16:])}
	return src[SizeOfSignalStack:]
}

// Contains reports whether sp lies within the stack, the test sigaltstack
// and signal delivery use for "already on the alternate stack". The range is
// (Addr, Addr+Size]: a full stack's sp equals Addr+Size.
func (ss *SignalStack) Contains(sp uint64) bool {
	return sp > ss.Addr && sp-ss.Addr <= ss.Size
}

// SizeBytes implements Marshaler.
func (*SignalInfo) SizeBytes() int { return SizeOfSignalInfo }

// MarshalBytes implements Marshaler.
func (s *SignalInfo) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfSignalInfo-1]
	le.PutUint32(dst[0:], uint32(s.Signo))
	le.PutUint32(dst[4:], uint32(s.Errno))
	le.PutUint32(dst[8:], uint32(s.Code))
	le.PutUint32(dst[12:], 0)
	copy(dst[16:SizeOfSignalInfo], s.Fields[:])
	return dst[SizeOfSignalInfo:]
}

// UnmarshalBytes implements Marshaler.
func (s *SignalInfo) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfSignalInfo-1]
	s.Signo = int32(le.Uint32(src[0:]))
	s.Errno = int32(le.Uint32(src[4:]))
	s.Code = int32(le.Uint32(src[8:]))
	copy(s.Fields[:], src[16:SizeOfSignalInfo])
	return src[SizeOfSignalInfo:]
}

// SizeBytes implements Marshaler.
func (*SigContext) SizeBytes() int { return SizeOfSigContext }

// MarshalBytes implements Marshaler.
func (c *SigContext) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfSigContext-1]
	le.PutUint64(dst[0:], c.R8)
	le.PutUint64(dst[8:], c.R9)
	le.PutUint64(dst[16:], c.R10)
	le.PutUint64(dst[24:], c.R11)
	le.PutUint64(dst[32:], c.R12)
	le.PutUint64(dst[40:], c.R13)
	le.PutUint64(dst[48:], c.R14)
	le.PutUint64(dst[56:], c.R15)
	le.PutUint64(dst[64:], c.Rdi)
	le.PutUint64(dst[72:], c.Rsi)
	le.PutUint64(dst[80:], c.Rbp)
	le.PutUint64(dst[88:], c.Rbx)
	le.PutUint64(dst[96:], c.Rdx)
	le.PutUint64(dst[104:], c.Rax)
	le.PutUint64(dst[112:], c.Rcx)
	le.PutUint64(dst[120:], c.Rsp)
	le.PutUint64(dst[128:], c.Rip)
	le.PutUint64(dst[136:], c.Eflags)
	le.PutUint16(dst[144:], c.Cs)
	le.PutUint16(dst[146:], c.Gs)
	le.PutUint16(dst[148:], c.Fs)
	le.PutUint16(dst[150:], c.Ss)
	le.PutUint64(dst[152:], c.Err)
	le.PutUint64(dst[160:], c.Trapno)
	le.PutUint64(dst[168:], c.Oldmask)
	le.PutUint64(dst[176:], c.Cr2)
	le.PutUint64(dst[184:], c.Fpstate)
	for i, r := range c.Reserved {
		le.PutUint64(dst[192+8*i:], r)
	}
	return dst[SizeOfSigContext:]
}

// UnmarshalBytes implements Marshaler.
func (c *SigContext) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfSigContext-1]
	c.R8 = le.Uint64(src[0:])
	c.R9 = le.Uint64(src[8:])
	c.R10 = le.Uint64(src[16:])
	c.R11 = le.Uint64(src[24:])
	c.R12 = le.Uint64(src[32:])
	c.R13 = le.Uint64(src[40:])
	c.R14 = le.Uint64(src[48:])
	c.R15 = le.Uint64(src[56:])
	c.Rdi = le.Uint64(src[64:])
	c.Rsi = le.Uint64(src[72:])
	c.Rbp = le.Uint64(src[80:])
	c.Rbx = le.Uint64(src[88:])
	c.Rdx = le.Uint64(src[96:])
	c.Rax = le.Uint64(src[104:])
	c.Rcx = le.Uint64(src[112:])
	c.Rsp = le.Uint64(src[120:])
	c.Rip = le.Uint64(src[128:])
	c.Eflags = le.Uint64(src[136:])
	c.Cs = le.Uint16(src[144:])
	c.Gs = le.Uint16(src[146:])
	c.Fs = le.Uint16(src[148:])
	c.Ss = le.Uint16(src[150:])
	c.Err = le.Uint64(src[152:])
	c.Trapno = le.Uint64(src[160:])
	c.Oldmask = le.Uint64(src[168:])
	c.Cr2 = le.Uint64(src[176:])
	c.Fpstate = le.Uint64(src[184:])
	for i := range c.Reserved {
		c.Reserved[i] = le.Uint64(src[192+8*i:])
	}
	return src[SizeOfSigContext:]
}

// SizeBytes implements Marshaler.
func (*UContext64) SizeBytes() int { return SizeOfUContext64 }

// MarshalBytes implements Marshaler.
func (u *UContext64) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfUContext64-1]
	le.PutUint64(dst[0:], u.Flags)
	le.PutUint64(dst[8:], u.Link)
	u.Stack.MarshalBytes(dst[16:])
	u.MContext.MarshalBytes(dst[40:])
	le.PutUint64(dst[296:], uint64(u.Sigmask))
	return dst[SizeOfUContext64:]
}

// UnmarshalBytes implements Marshaler.
func (u *UContext64) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfUContext64-1]
	u.Flags = le.Uint64(src[0:])
	u.Link = le.Uint64(src[8:])
	u.Stack.UnmarshalBytes(src[16:])
	u.MContext.UnmarshalBytes(src[40:])
	u.Sigmask = SignalSet(le.Uint64(src[296:]))
	return src[SizeOfUContext64:]
}
