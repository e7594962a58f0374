package seccomp

import (
	"math/rand/v2"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/bpf"
	"golang.org/x/sys/unix"
)

var testOptions = Options{DefaultAction: Errno(unix.EPERM), BadArchAction: ActionKillProcess}

func mustCompile(t testing.TB, s *RuleSet, opts Options) bpf.Program {
	t.Helper()
	p, err := Compile(s, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func data(nr int32, args ...uint64) *bpf.SeccompData {
	d := &bpf.SeccompData{Nr: nr, Arch: AuditArchX86_64}
	copy(d.Args[:], args)
	return d
}

func TestCompiledActions(t *testing.T) {
	s := NewRuleSet().
		Allow(unix.SYS_READ, unix.SYS_WRITE, unix.SYS_CLOSE, unix.SYS_EXIT_GROUP).
		Add(unix.SYS_MMAP, ActionAllow, AnyValue(), AnyValue(), MaskedEqual(unix.PROT_EXEC, 0)).
		Add(unix.SYS_MMAP, Errno(unix.EACCES)).
		Add(unix.SYS_IOCTL, ActionAllow, EqualTo(0), EqualTo(unix.TCGETS)).
		Add(unix.SYS_IOCTL, Errno(unix.ENOTTY), AnyValue(), NotEqualTo(unix.TCGETS)).
		Add(unix.SYS_KILL, ActionKillThread).
		Add(unix.SYS_PTRACE, ActionTrap).
		Add(unix.SYS_GETPID, Trace(7)).
		Add(unix.SYS_OPENAT, ActionUserNotif).
		Add(unix.SYS_FUTEX, ActionLog, GreaterThan(0xffffffff))
	for _, tc := range []struct {
		name string
		d    *bpf.SeccompData
		want Action
	}{
		{"read", data(unix.SYS_READ), ActionAllow},
		{"exit_group", data(unix.SYS_EXIT_GROUP, 1), ActionAllow},
		{"unlisted", data(unix.SYS_GETUID), Errno(unix.EPERM)},
		{"number zero (read)", data(0), ActionAllow},
		{"number 1 past the end", data(449), Errno(unix.EPERM)},
		{"x32 number", data(0x40000000 | unix.SYS_READ), ActionKillProcess},
		{"negative number", data(-1), ActionKillProcess},
		{"i386 arch", &bpf.SeccompData{Nr: unix.SYS_READ, Arch: 0x40000003}, ActionKillProcess},
		{"mmap no exec", data(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE), ActionAllow},
		{"mmap exec", data(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_EXEC), Errno(unix.EACCES)},
		{"mmap exec bit in high word is not PROT_EXEC", data(unix.SYS_MMAP, 0, 4096, 1<<34), ActionAllow},
		{"ioctl TCGETS fd 0", data(unix.SYS_IOCTL, 0, unix.TCGETS), ActionAllow},
		{"ioctl TCGETS fd 1", data(unix.SYS_IOCTL, 1, unix.TCGETS), Errno(unix.EPERM)},
		{"ioctl TCGETS fd 1<<32", data(unix.SYS_IOCTL, 1<<32, unix.TCGETS), Errno(unix.EPERM)},
		{"ioctl other", data(unix.SYS_IOCTL, 0, unix.TCSETS), Errno(unix.ENOTTY)},
		{"ioctl TCGETS with high bits", data(unix.SYS_IOCTL, 0, 1<<32|unix.TCGETS), Errno(unix.ENOTTY)},
		{"kill", data(unix.SYS_KILL), ActionKillThread},
		{"ptrace", data(unix.SYS_PTRACE), ActionTrap},
		{"getpid", data(unix.SYS_GETPID), Trace(7)},
		{"openat", data(unix.SYS_OPENAT), ActionUserNotif},
		{"futex small", data(unix.SYS_FUTEX, 0xffffffff), Errno(unix.EPERM)},
		{"futex large", data(unix.SYS_FUTEX, 0x100000000), ActionLog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Evaluate(tc.d, testOptions); got != tc.want {
				t.Errorf("Evaluate = %v, want %v", got, tc.want)
			}
			p := mustCompile(t, s, testOptions)
			if got := Action(p.RunSeccomp(tc.d)); got != tc.want {
				t.Errorf("compiled filter = %v, want %v\n%s", got, tc.want, bpf.Disassemble(p.Instructions()))
			}
		})
	}
}

// boundaries are values around which 32-bit halves and signs change.
var boundaries = []uint64{
	0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100000000, 0x100000001,
	0x1ffffffff, 0x17fffffff, 0x180000000, 0x7fffffff00000000, 0x7fffffffffffffff,
	0x8000000000000000, 0x8000000000000001, 0x80000000ffffffff, 0xffffffff00000000,
	0xffffffff7fffffff, 0xffffffff80000000, 0xfffffffffffffffe, 0xffffffffffffffff,
}

// TestComparisons checks every comparison against every boundary value and
// its neighbours, through the compiled program and against Go's own 64-bit
// comparison operators.
func TestComparisons(t *testing.T) {
	type cmp struct {
		name  string
		build func(v uint64) ArgMatcher
		holds func(a, v uint64) bool
	}
	cmps := []cmp{
		{">", GreaterThan, func(a, v uint64) bool { return a > v }},
		{">=", GreaterThanOrEqual, func(a, v uint64) bool { return a >= v }},
		{"<", LessThan, func(a, v uint64) bool { return a < v }},
		{"<=", LessThanOrEqual, func(a, v uint64) bool { return a <= v }},
		{"==", EqualTo, func(a, v uint64) bool { return a == v }},
		{"!=", NotEqualTo, func(a, v uint64) bool { return a != v }},
		{"s>", func(v uint64) ArgMatcher { return SignedGreaterThan(int64(v)) }, func(a, v uint64) bool { return int64(a) > int64(v) }},
		{"s>=", func(v uint64) ArgMatcher { return SignedGreaterThanOrEqual(int64(v)) }, func(a, v uint64) bool { return int64(a) >= int64(v) }},
		{"s<", func(v uint64) ArgMatcher { return SignedLessThan(int64(v)) }, func(a, v uint64) bool { return int64(a) < int64(v) }},
		{"s<=", func(v uint64) ArgMatcher { return SignedLessThanOrEqual(int64(v)) }, func(a, v uint64) bool { return int64(a) <= int64(v) }},
		{"&0xff00000000ff==0x1200000034", func(v uint64) ArgMatcher { return MaskedEqual(0xff00000000ff, 0x1200000034) },
			func(a, v uint64) bool { return a&0xff00000000ff == 0x1200000034 }},
	}
	var args []uint64
	for _, b := range boundaries {
		args = append(args, b-1, b, b+1, b^0xffffffff, b^0xffffffff00000000)
	}
	args = append(args, 0x1200000034, 0xff1200ffff34)
	for _, c := range cmps {
		for _, v := range boundaries {
			for argIndex := range 6 {
				if argIndex != 0 && argIndex != 5 && v != boundaries[9] {
					continue // every arg slot once, the ends for all values
				}
				m := make([]ArgMatcher, argIndex+1)
				m[argIndex] = c.build(v)
				s := NewRuleSet().Add(unix.SYS_WRITE, ActionAllow, m...)
				p := mustCompile(t, s, testOptions)
				for _, a := range args {
					d := data(unix.SYS_WRITE)
					d.Args[argIndex] = a
					want := Errno(unix.EPERM)
					if c.holds(a, v) {
						want = ActionAllow
					}
					if got := Action(p.RunSeccomp(d)); got != want {
						t.Fatalf("arg%d=%#x %s %#x: compiled filter says %v, want %v\n%s", argIndex, a, c.name, v, got, want, bpf.Disassemble(p.Instructions()))
					}
					if got := s.Evaluate(d, testOptions); got != want {
						t.Fatalf("arg%d=%#x %s %#x: Evaluate says %v, want %v", argIndex, a, c.name, v, got, want)
					}
				}
			}
		}
	}
}

func randomMatcher(r *rand.Rand) ArgMatcher {
	v := boundaries[r.IntN(len(boundaries))]
	if r.IntN(3) == 0 {
		v = r.Uint64()
	}
	switch r.IntN(13) {
	case 0:
		return EqualTo(v)
	case 1:
		return NotEqualTo(v)
	case 2:
		mask := boundaries[r.IntN(len(boundaries))]
		if r.IntN(2) == 0 {
			v &= mask
		}
		return MaskedEqual(mask, v)
	case 3:
		return GreaterThan(v)
	case 4:
		return GreaterThanOrEqual(v)
	case 5:
		return LessThan(v)
	case 6:
		return LessThanOrEqual(v)
	case 7:
		return SignedGreaterThan(int64(v))
	case 8:
		return SignedGreaterThanOrEqual(int64(v))
	case 9:
		return SignedLessThan(int64(v))
	case 10:
		return SignedLessThanOrEqual(int64(v))
	}
	return AnyValue()
}

var randomActions = []Action{ActionAllow, Errno(1), Errno(2), Errno(3), ActionTrap, ActionLog, Trace(4), ActionKillProcess, ActionKillThread}

func randomRuleSet(r *rand.Rand, syscalls int) *RuleSet {
	s := NewRuleSet()
	for range syscalls {
		nr := uintptr(r.IntN(40))
		if r.IntN(4) == 0 {
			nr = uintptr(r.IntN(500))
		}
		var m []ArgMatcher
		for range r.IntN(4) {
			m = append(m, randomMatcher(r))
		}
		s.Add(nr, randomActions[r.IntN(len(randomActions))], m...)
	}
	return s
}

func randomArg(r *rand.Rand) uint64 {
	if r.IntN(2) == 0 {
		return boundaries[r.IntN(len(boundaries))] + uint64(r.IntN(3)) - 1
	}
	return r.Uint64()
}

// TestRandomRuleSets compares compiled filters with Evaluate, the direct
// reading of the rules.
func TestRandomRuleSets(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 300 {
		s := randomRuleSet(r, 1+r.IntN(60))
		opts := Options{DefaultAction: randomActions[r.IntN(len(randomActions))], BadArchAction: randomActions[r.IntN(len(randomActions))], LogInsteadOfKill: r.IntN(4) == 0, AllowCancelledSyscall: r.IntN(2) == 0}
		p := mustCompile(t, s, opts)
		for range 200 {
			d := data(int32(r.IntN(520)))
			if r.IntN(50) == 0 {
				d.Nr = int32(r.Uint32())
			}
			if r.IntN(50) == 0 {
				d.Nr = -1
			}
			if r.IntN(50) == 0 {
				d.Arch = r.Uint32()
			}
			for k := range d.Args {
				d.Args[k] = randomArg(r)
			}
			if got, want := Action(p.RunSeccomp(d)), s.Evaluate(d, opts); got != want {
				t.Fatalf("rule set %d, input %+v: compiled %v, Evaluate %v\n%s", i, *d, got, want, bpf.Disassemble(p.Instructions()))
			}
		}
	}
}

func TestLogInsteadOfKill(t *testing.T) {
	s := NewRuleSet().Add(unix.SYS_KILL, ActionKillProcess).Add(unix.SYS_TKILL, ActionKillThread).Add(unix.SYS_READ, Errno(unix.EIO))
	opts := Options{DefaultAction: ActionKillProcess, BadArchAction: ActionKillProcess, LogInsteadOfKill: true}
	p := mustCompile(t, s, opts)
	for _, tc := range []struct {
		d    *bpf.SeccompData
		want Action
	}{
		{data(unix.SYS_KILL), ActionLog}, {data(unix.SYS_TKILL), ActionLog}, {data(unix.SYS_GETPID), ActionLog},
		{&bpf.SeccompData{Arch: 1}, ActionLog}, {data(unix.SYS_READ), Errno(unix.EIO)},
	} {
		if got := Action(p.RunSeccomp(tc.d)); got != tc.want {
			t.Errorf("nr %d: got %v, want %v", tc.d.Nr, got, tc.want)
		}
	}
}

func TestAllowCancelledSyscall(t *testing.T) {
	s := NewRuleSet().Allow(unix.SYS_READ)
	for _, allow := range []bool{false, true} {
		opts := Options{DefaultAction: Errno(unix.EPERM), BadArchAction: ActionKillProcess, AllowCancelledSyscall: allow}
		p := mustCompile(t, s, opts)
		want := ActionKillProcess
		if allow {
			want = ActionAllow
		}
		for _, tc := range []struct {
			d    *bpf.SeccompData
			want Action
		}{
			{data(-1), want},
			{data(-2), ActionKillProcess},
			{data(x32SyscallBit), ActionKillProcess},
			{&bpf.SeccompData{Nr: -1, Arch: 0x40000003}, ActionKillProcess}, // i386
			{data(unix.SYS_READ), ActionAllow},
			{data(unix.SYS_WRITE), Errno(unix.EPERM)},
		} {
			if got := Action(p.RunSeccomp(tc.d)); got != tc.want {
				t.Errorf("allow=%v nr %d arch %#x: got %v, want %v", allow, tc.d.Nr, tc.d.Arch, got, tc.want)
			}
			if got := s.Evaluate(tc.d, opts); got != tc.want {
				t.Errorf("allow=%v nr %d arch %#x: Evaluate %v, want %v", allow, tc.d.Nr, tc.d.Arch, got, tc.want)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	huge := NewRuleSet()
	for nr := range uintptr(300) {
		for v := range uint64(3) {
			huge.Add(nr, ActionAllow, EqualTo(v), LessThan(v<<40|uint64(nr)))
		}
	}
	for name, tc := range map[string]struct {
		s    *RuleSet
		opts Options
		want string
	}{
		"too long":          {huge, testOptions, "limit of 4096"},
		"seven args":        {NewRuleSet().Add(1, ActionAllow, make([]ArgMatcher, 7)...), testOptions, "argument matchers"},
		"x32 number":        {NewRuleSet().Allow(0x40000001), testOptions, "not a native"},
		"bad action":        {NewRuleSet().Add(1, Action(0x12340000)), testOptions, "unknown seccomp action"},
		"allow with data":   {NewRuleSet().Add(1, ActionAllow|5), testOptions, "data"},
		"bad default":       {NewRuleSet(), Options{DefaultAction: 0x00010000}, "unknown seccomp action"},
		"merged bad action": {NewRuleSet().Merge(NewRuleSet().Add(1, ActionAllow, make([]ArgMatcher, 7)...)), testOptions, "argument matchers"},
	} {
		_, err := Compile(tc.s, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestCompileIsCompact(t *testing.T) {
	// 100 consecutive allowed syscalls are one range: arch check, x32
	// check, and a search over three runs.
	s := NewRuleSet()
	for nr := range uintptr(100) {
		s.Allow(nr)
	}
	p := mustCompile(t, s, testOptions)
	if p.Len() > 10 {
		t.Errorf("100 consecutive allowed syscalls compile to %d instructions:\n%s", p.Len(), bpf.Disassemble(p.Instructions()))
	}
	// Identical actions share one return instruction (or an inline copy
	// where it is the jump's own target), and nothing is left unreachable.
	listing := bpf.Disassemble(p.Instructions())
	if strings.Count(listing, "ret #0x7fff0000") > 1 || strings.Contains(listing, "ja") {
		t.Errorf("redundant code:\n%s", listing)
	}
}

func TestMergeAndAccessors(t *testing.T) {
	a := NewRuleSet().Allow(3)
	b := NewRuleSet().Add(3, Errno(unix.EIO), EqualTo(1)).Allow(1)
	a.Merge(b)
	if got := a.Syscalls(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("Syscalls = %v", got)
	}
	// Merged rules come after the set's own: the unconditional allow wins.
	if got := a.Evaluate(data(3, 1), testOptions); got != ActionAllow {
		t.Errorf("Evaluate = %v, want allow", got)
	}
	if rules := a.Rules(3); len(rules) != 2 || rules[1].Action != Errno(unix.EIO) {
		t.Errorf("Rules(3) = %v", rules)
	}
	if got := (Rule{Action: Errno(unix.EIO), Args: [6]ArgMatcher{EqualTo(1)}}).String(); got != "errno(5) if arg0 == 0x1" {
		t.Errorf("Rule.String() = %q", got)
	}
}

// TestLargeRuleSet needs conditional jumps longer than 255 instructions,
// which the assembler must route through unconditional ones.
func TestLargeRuleSet(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	s := NewRuleSet()
	for nr := range uintptr(300) {
		if nr%3 == 0 {
			s.Add(nr, Errno(unix.Errno(1+nr%7)), randomMatcher(r), randomMatcher(r))
		}
		s.Add(nr, randomActions[r.IntN(len(randomActions))], AnyValue(), randomMatcher(r))
	}
	opts := Options{DefaultAction: ActionKillProcess, BadArchAction: ActionKillProcess}
	p := mustCompile(t, s, opts)
	if p.Len() < 1000 {
		t.Fatalf("only %d instructions: the test needs long jumps", p.Len())
	}
	if !strings.Contains(bpf.Disassemble(p.Instructions()), "ja ") {
		t.Fatal("no unconditional jumps: long conditional jumps were not exercised")
	}
	for range 20000 {
		d := data(int32(r.IntN(310)))
		for k := range d.Args {
			d.Args[k] = randomArg(r)
		}
		if got, want := Action(p.RunSeccomp(d)), s.Evaluate(d, opts); got != want {
			t.Fatalf("input %+v: compiled %v, Evaluate %v", *d, got, want)
		}
	}
}
