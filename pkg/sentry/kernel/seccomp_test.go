package kernel

import (
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/seccomp"
	"golang.org/x/sys/unix"
)

// filterFor compiles a filter that returns action for syscall nr and
// allows everything else.
func filterFor(t testing.TB, nr uintptr, action seccomp.Action) bpf.Program {
	t.Helper()
	p, err := seccomp.Compile(seccomp.NewRuleSet().Add(nr, action),
		seccomp.Options{DefaultAction: seccomp.ActionAllow, BadArchAction: seccomp.ActionKillProcess})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func seccompCall(nr int32) *bpf.SeccompData {
	return &bpf.SeccompData{Nr: nr, Arch: linux.AUDIT_ARCH_X86_64}
}

// bareTask is a task of a group of its own, enough for the seccomp state.
func bareTasks(n int) []*Task {
	tg := &ThreadGroup{}
	for i := range n {
		tg.tasks = append(tg.tasks, &Task{tg: tg, tid: ThreadID(100 + i), vtid: ThreadID(100 + i)})
	}
	return tg.tasks
}

func TestSeccompStackedFiltersMostRestrictiveWins(t *testing.T) {
	task := bareTasks(1)[0]
	install := func(p bpf.Program) {
		t.Helper()
		if tid, err := task.AppendSeccompFilter(p, SeccompFilterOptions{}); err != nil || tid != 0 {
			t.Fatalf("AppendSeccompFilter: %d, %v", tid, err)
		}
	}
	install(filterFor(t, unix.SYS_GETPPID, seccomp.Errno(unix.EPERM)))
	install(filterFor(t, unix.SYS_GETPPID, seccomp.ActionAllow))
	install(filterFor(t, unix.SYS_GETPPID, seccomp.Errno(unix.EACCES)))
	install(filterFor(t, unix.SYS_GETPID, seccomp.ActionTrap))
	install(filterFor(t, unix.SYS_GETPID, seccomp.ActionKillThread))
	install(filterFor(t, unix.SYS_DUP, seccomp.ActionLog))
	s := task.seccomp.Load()
	for _, tc := range []struct {
		nr   int32
		want uint32
	}{
		// Equal actions: the newest filter's data.
		{unix.SYS_GETPPID, uint32(seccomp.Errno(unix.EACCES))},
		// Kill thread (0) is below trap (0x30000).
		{unix.SYS_GETPID, uint32(seccomp.ActionKillThread)},
		{unix.SYS_DUP, uint32(seccomp.ActionLog)},
		{unix.SYS_READ, uint32(seccomp.ActionAllow)},
	} {
		if got, _ := s.evaluate(seccompCall(tc.nr)); got != tc.want {
			t.Errorf("syscall %d: %#x, want %#x", tc.nr, got, tc.want)
		}
	}
	if got := task.SeccompMode(); got != SeccompModeFilter {
		t.Errorf("SeccompMode() = %d, want %d", got, SeccompModeFilter)
	}
	if got := task.SeccompFilters(); got != 6 {
		t.Errorf("SeccompFilters() = %d, want 6", got)
	}
	// Kill process beats everything, and its sign bit must not be taken
	// for a large unsigned value.
	install(filterFor(t, unix.SYS_READ, seccomp.ActionKillProcess))
	if got, _ := task.seccomp.Load().evaluate(seccompCall(unix.SYS_READ)); got != uint32(seccomp.ActionKillProcess) {
		t.Errorf("read: %#x, want kill process", got)
	}
}

func TestSeccompModes(t *testing.T) {
	task := bareTasks(1)[0]
	if got := task.SeccompMode(); got != SeccompModeDisabled {
		t.Fatalf("new task mode %d", got)
	}
	if err := task.SetSeccompStrict(); err != nil {
		t.Fatal(err)
	}
	if err := task.SetSeccompStrict(); err != nil {
		t.Errorf("strict again: %v", err)
	}
	if _, err := task.AppendSeccompFilter(filterFor(t, unix.SYS_GETPID, seccomp.ActionAllow), SeccompFilterOptions{}); err != unix.EINVAL {
		t.Errorf("filter on a strict task: %v, want EINVAL", err)
	}
	other := bareTasks(1)[0]
	other.AppendSeccompFilter(filterFor(t, unix.SYS_GETPID, seccomp.ActionAllow), SeccompFilterOptions{})
	if err := other.SetSeccompStrict(); err != unix.EINVAL {
		t.Errorf("strict on a filtered task: %v, want EINVAL", err)
	}
	if _, err := task.AppendSeccompFilter(bpf.Program{}, SeccompFilterOptions{}); err != unix.EINVAL {
		t.Errorf("unvalidated program: %v, want EINVAL", err)
	}
}

func TestSeccompPathLengthLimit(t *testing.T) {
	task := bareTasks(1)[0]
	p := filterFor(t, unix.SYS_GETPID, seccomp.ActionAllow)
	n := 0
	for ; n < 100000; n++ {
		if _, err := task.AppendSeccompFilter(p, SeccompFilterOptions{}); err != nil {
			if err != unix.ENOMEM {
				t.Fatalf("filter %d: %v, want ENOMEM", n, err)
			}
			break
		}
	}
	// Each filter counts its length plus 4, except the first.
	if want := (maxSeccompPathInstructions-p.Len())/(p.Len()+4) + 1; n != want {
		t.Errorf("%d filters of %d instructions fit, want %d", n, p.Len(), want)
	}
}

func TestSeccompTSync(t *testing.T) {
	tasks := bareTasks(3)
	a, b, c := tasks[0], tasks[1], tasks[2]
	base := filterFor(t, unix.SYS_GETPPID, seccomp.Errno(unix.EPERM))
	// a and b share a's first filter (as clone would leave them).
	a.AppendSeccompFilter(base, SeccompFilterOptions{})
	b.inheritSeccomp(a)
	// c has a filter of its own, not an ancestor of a's.
	c.AppendSeccompFilter(base, SeccompFilterOptions{})
	next := filterFor(t, unix.SYS_GETPID, seccomp.Errno(unix.EACCES))
	tid, err := a.AppendSeccompFilter(next, SeccompFilterOptions{TSync: true})
	if err != nil || tid != c.tid {
		t.Fatalf("TSYNC with a diverged thread: %d, %v; want its tid %d", tid, err, c.tid)
	}
	if got, _ := a.seccomp.Load().evaluate(seccompCall(unix.SYS_GETPID)); got != seccompRetAllow {
		t.Fatalf("failed TSYNC installed the filter on the caller")
	}
	// Once c is back in the family, TSYNC reaches every thread.
	c.inheritSeccomp(a)
	if tid, err := a.AppendSeccompFilter(next, SeccompFilterOptions{TSync: true}); err != nil || tid != 0 {
		t.Fatalf("TSYNC: %d, %v", tid, err)
	}
	for _, task := range tasks {
		if got, _ := task.seccomp.Load().evaluate(seccompCall(unix.SYS_GETPID)); got != uint32(seccomp.Errno(unix.EACCES)) {
			t.Errorf("task %d after TSYNC: getpid %#x", task.tid, got)
		}
	}
	// A thread without filters is synchronized too.
	d := bareTasks(2)
	if tid, err := d[0].AppendSeccompFilter(next, SeccompFilterOptions{TSync: true}); err != nil || tid != 0 || d[1].SeccompMode() != SeccompModeFilter {
		t.Errorf("TSYNC onto a thread without filters: %d, %v, mode %d", tid, err, d[1].SeccompMode())
	}
}

func TestSeccompActionAvailable(t *testing.T) {
	for _, a := range []uint32{0x80000000, 0, 0x30000, 0x50000, 0x7ff00000, 0x7ffc0000, 0x7fff0000} {
		if !SeccompActionAvailable(a) {
			t.Errorf("action %#x not available", a)
		}
	}
	for _, a := range []uint32{0x7fc00000, 0x12340000, 0x50001, 0x10000} {
		if SeccompActionAvailable(a) {
			t.Errorf("action %#x available", a)
		}
	}
}

// TestSeccompEvaluateAllocatesNothing guards the syscall path.
func TestSeccompEvaluateAllocatesNothing(t *testing.T) {
	task := bareTasks(1)[0]
	for _, nr := range []uintptr{unix.SYS_GETPID, unix.SYS_GETPPID, unix.SYS_DUP} {
		task.AppendSeccompFilter(filterFor(t, nr, seccomp.Errno(unix.EPERM)), SeccompFilterOptions{})
	}
	s := task.seccomp.Load()
	d := seccompCall(unix.SYS_READ)
	if n := testing.AllocsPerRun(100, func() { s.evaluate(d) }); n != 0 {
		t.Errorf("evaluate allocates %v times per call", n)
	}
}

func BenchmarkSeccompEvaluate(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(string(rune('0'+n))+"-filters", func(b *testing.B) {
			task := bareTasks(1)[0]
			for i := range n {
				task.AppendSeccompFilter(filterFor(b, uintptr(unix.SYS_GETPPID+i), seccomp.Errno(unix.EPERM)), SeccompFilterOptions{})
			}
			s := task.seccomp.Load()
			d := bpf.SeccompData{Nr: unix.SYS_READ, Arch: linux.AUDIT_ARCH_X86_64}
			b.ReportAllocs()
			for b.Loop() {
				s.evaluate(&d)
			}
		})
	}
}
