package vdso_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform/ptrace"
	sys "carapace.dev/carapace/pkg/sentry/syscalls/linux"
)

// clockProgram reads the time many ways, then once from a clock only the
// kernel serves.
const clockProgram = `
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
int main(void) {
  struct timespec a, b, c;
  struct timeval tv;
  long backwards = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < 1000; i++) {
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (b.tv_sec < a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec < a.tv_nsec)) backwards++;
    a = b;
    clock_gettime(CLOCK_REALTIME, &c);
    gettimeofday(&tv, NULL);
    if (time(NULL) < c.tv_sec || tv.tv_sec < c.tv_sec) backwards++;
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
  printf("backwards %ld realtime %ld\n", backwards, (long)tv.tv_sec);
  return 0;
}
`

// In a sandbox, glibc's clock_gettime, gettimeofday and time no longer
// reach the kernel (its --strace log shows none), while the clocks the
// vDSO leaves to the kernel still do.
func TestClockCallsStayInTheSandbox(t *testing.T) {
	if raceEnabled {
		t.Skip("ptrace platform stubs do not start under the race detector")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src, prog := filepath.Join(dir, "clocks.c"), filepath.Join(dir, "clocks")
	if err := os.WriteFile(src, []byte(clockProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-static", "-O1", "-o", prog, src).CombinedOutput(); err != nil {
		t.Skipf("gcc -static (Debian package libc6-dev): %v\n%s", err, out)
	}
	mf, err := pgalloc.New("vdso-sandbox-test")
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	p, err := ptrace.New(mf)
	if err != nil {
		t.Skipf("ptrace platform unavailable: %v", err)
	}
	defer p.Close()
	k, err := kernel.New(kernel.Config{Platform: p, MemoryFile: mf, Syscalls: sys.Table(), Strace: true})
	if err != nil {
		t.Fatal(err)
	}
	if !k.VDSO().UsesTSC() {
		t.Skip("host TSC is not invariant: the vDSO makes syscalls")
	}
	ctx := context.Background()
	root, err := kerneltest.NewRoot(ctx, k.VFS(), mf, prog)
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	var logged, out kerneltest.SyncBuffer
	log.SetTarget(&logged, log.Text)
	defer log.SetTarget(os.Stderr, log.Text)
	fdt := kernel.NewFDTable()
	stdout := kerneltest.NewWriterFile(k.VFS(), &out)
	fdt.NewFD(1, 1024, stdout, kernel.FDFlags{})
	stdout.DecRef(ctx)
	tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{
		Filename: prog, Root: root, Argv: []string{"clocks"}, FDTable: fdt,
	})
	if err != nil {
		t.Fatalf("CreateProcess: %v", err)
	}
	k.Start(tg)
	select {
	case <-tg.Exited():
	case <-time.After(60 * time.Second):
		tg.Kill()
		<-tg.Exited()
		t.Fatalf("did not exit; output %q", out.String())
	}
	m := regexp.MustCompile(`^backwards 0 realtime (\d+)\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output %q", out.String())
	}
	lines := logged.String()
	if n := len(regexp.MustCompile(`\] (clock_gettime|gettimeofday|time)\(`).FindAllString(lines, -1)); n != 1 {
		t.Errorf("%d clock syscalls reached the kernel, want 1 (CLOCK_PROCESS_CPUTIME_ID):\n%s", n, lines)
	}
	if !regexp.MustCompile(`\] clock_gettime\(0x2, `).MatchString(lines) {
		t.Errorf("CLOCK_PROCESS_CPUTIME_ID did not reach the kernel:\n%s", lines)
	}
}
