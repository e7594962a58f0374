package linux

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestSignalNamesAndRanges(t *testing.T) {
	for s, want := range map[Signal]string{
		SIGHUP: "SIGHUP", SIGSEGV: "SIGSEGV", SIGSYS: "SIGSYS", SIGIO: "SIGIO", SIGRTMIN: "SIGRTMIN",
		SIGRTMIN + 3: "SIGRTMIN+3", SIGRTMAX: "SIGRTMIN+32", 0: "signal 0", 65: "signal 65", -1: "signal -1",
	} {
		if got := s.String(); got != want {
			t.Errorf("Signal(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	for s := Signal(1); s < SIGRTMIN; s++ {
		if strings.HasPrefix(s.String(), "signal ") {
			t.Errorf("standard signal %d has no name", int(s))
		}
		if !s.IsValid() || !s.IsStandard() || s.IsRealtime() {
			t.Errorf("signal %d misclassified", int(s))
		}
	}
	for s := SIGRTMIN; s <= SIGRTMAX; s++ {
		if !s.IsValid() || s.IsStandard() || !s.IsRealtime() {
			t.Errorf("signal %d misclassified", int(s))
		}
	}
	for _, s := range []Signal{0, -1, 65, 1000} {
		if s.IsValid() || s.IsStandard() || s.IsRealtime() {
			t.Errorf("signal %d considered valid", int(s))
		}
	}
}

func TestDefaultActions(t *testing.T) {
	// The Action column of signal(7), grouped.
	want := map[SignalDefault][]Signal{
		SignalDefaultCore:     {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS},
		SignalDefaultStop:     {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU},
		SignalDefaultContinue: {SIGCONT},
		SignalDefaultIgnore:   {SIGCHLD, SIGURG, SIGWINCH},
		SignalDefaultTerminate: {SIGHUP, SIGINT, SIGKILL, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
			SIGSTKFLT, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGRTMIN, SIGRTMIN + 1, SIGRTMAX},
	}
	seen := 0
	for action, sigs := range want {
		for _, s := range sigs {
			if got := DefaultAction(s); got != action {
				t.Errorf("DefaultAction(%v) = %v, want %v", s, got, action)
			}
			if s.IsStandard() {
				seen++
			}
		}
	}
	if seen != 31 {
		t.Errorf("table covers %d standard signals, want 31", seen)
	}
}

func TestSignalSet(t *testing.T) {
	set := MakeSignalSet(SIGINT, SIGKILL, SIGRTMAX, 0, 65)
	if uint64(set) != 1<<1|1<<8|1<<63 {
		t.Fatalf("MakeSignalSet = %#x", uint64(set))
	}
	if set.Len() != 3 || !set.Contains(SIGINT) || set.Contains(SIGHUP) || set.Contains(0) || set.Contains(65) {
		t.Errorf("Contains/Len wrong for %#x", uint64(set))
	}
	if set.Lowest() != SIGINT || SignalSet(0).Lowest() != 0 {
		t.Errorf("Lowest wrong")
	}
	set = set.Remove(SIGINT).Add(SIGHUP)
	var got []Signal
	set.ForEach(func(s Signal) { got = append(got, s) })
	if fmt.Sprint(got) != fmt.Sprint([]Signal{SIGHUP, SIGKILL, SIGRTMAX}) {
		t.Errorf("ForEach visited %v", got)
	}
	if UnblockableSignals != SignalSetOf(SIGKILL)|SignalSetOf(SIGSTOP) {
		t.Errorf("UnblockableSignals = %#x", uint64(UnblockableSignals))
	}
	if SignalSetOf(0) != 0 || SignalSetOf(-3) != 0 || SignalSetOf(SIGHUP) != 1 {
		t.Errorf("SignalSetOf wrong")
	}
}

func TestSignalStackContains(t *testing.T) {
	ss := SignalStack{Addr: 0x1000, Size: 0x2000}
	for sp, want := range map[uint64]bool{0x1000: false, 0x1001: true, 0x3000: true, 0x3001: false, 0: false} {
		if got := ss.Contains(sp); got != want {
			t.Errorf("Contains(%#x) = %v, want %v", sp, got, want)
		}
	}
}

// TestSignalInfoAccessorsMatchC has C fill siginfo_t through its named union
// members and checks that the Go accessors read the same values, and that
// the Go setters produce the same bytes.
func TestSignalInfoAccessorsMatchC(t *testing.T) {
	type member struct {
		cAssign string
		check   func(si *SignalInfo) bool
		set     func(si *SignalInfo)
	}
	members := []member{
		{"s.si_pid = 1234; s.si_uid = 1000; s.si_status = 7; s.si_utime = 11; s.si_stime = 12;",
			func(si *SignalInfo) bool {
				return si.Pid() == 1234 && si.UID() == 1000 && si.Status() == 7 && si.UTime() == 11 && si.STime() == 12
			},
			func(si *SignalInfo) {
				si.SetPid(1234)
				si.SetUID(1000)
				si.SetStatus(7)
				si.SetUTime(11)
				si.SetSTime(12)
			}},
		{"s.si_pid = -5; s.si_uid = 4000000000u; s.si_value.sival_ptr = (void*)0x1122334455667788ull;",
			func(si *SignalInfo) bool {
				return si.Pid() == -5 && si.UID() == 4000000000 && si.Value() == 0x1122334455667788
			},
			func(si *SignalInfo) { si.SetPid(-5); si.SetUID(4000000000); si.SetValue(0x1122334455667788) }},
		{"s.si_tid = 3; s.si_overrun = 99; s.si_value.sival_int = -2;",
			func(si *SignalInfo) bool {
				return si.TimerID() == 3 && si.Overrun() == 99 && uint32(si.Value()) == 0xfffffffe
			},
			func(si *SignalInfo) { si.SetTimerID(3); si.SetOverrun(99); si.SetValue(0xfffffffe) }},
		{"s.si_addr = (void*)0x7fff12345678ull; s.si_addr_lsb = 12;",
			func(si *SignalInfo) bool { return si.Addr() == 0x7fff12345678 && si.AddrLSB() == 12 },
			func(si *SignalInfo) { si.SetAddr(0x7fff12345678); si.SetAddrLSB(12) }},
		{"s.si_call_addr = (void*)0x401000; s.si_syscall = 59; s.si_arch = 0xc000003e;",
			func(si *SignalInfo) bool {
				return si.CallAddr() == 0x401000 && si.Syscall() == 59 && si.Arch() == AUDIT_ARCH_X86_64
			},
			func(si *SignalInfo) { si.SetCallAddr(0x401000); si.SetSyscall(59); si.SetArch(AUDIT_ARCH_X86_64) }},
		{"s.si_band = -3; s.si_fd = 42;",
			func(si *SignalInfo) bool { return si.Band() == -3 && si.Fd() == 42 },
			func(si *SignalInfo) { si.SetBand(-3); si.SetFd(42) }},
	}
	var body strings.Builder
	for _, m := range members {
		fmt.Fprintf(&body, `{ siginfo_t s; memset(&s, 0, sizeof s); s.si_signo = 17; s.si_errno = 2; s.si_code = -6; %s
  unsigned char *p = (unsigned char *)&s; for (size_t i = 0; i < sizeof s; i++) printf("%%02x", p[i]); printf("\n"); }
`, m.cAssign)
	}
	lines := runC(t, []string{"asm/siginfo.h", "string.h"}, body.String())
	if len(lines) != len(members) {
		t.Fatalf("C printed %d lines, want %d", len(lines), len(members))
	}
	for i, m := range members {
		raw, err := hex.DecodeString(lines[i])
		if err != nil || len(raw) != SizeOfSignalInfo {
			t.Fatalf("bad C output %q", lines[i])
		}
		var si SignalInfo
		si.UnmarshalBytes(raw)
		if si.Signo != 17 || si.Errno != 2 || si.Code != SI_TKILL || !m.check(&si) {
			t.Errorf("%s: accessors read %+v", m.cAssign, si)
		}
		built := SignalInfo{Signo: 17, Errno: 2, Code: SI_TKILL}
		m.set(&built)
		out := make([]byte, SizeOfSignalInfo)
		built.MarshalBytes(out)
		if hex.EncodeToString(out) != lines[i] {
			t.Errorf("%s: setters wrote\n%x\nC wrote\n%s", m.cAssign, out, lines[i])
		}
	}
}
