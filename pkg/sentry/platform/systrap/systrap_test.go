package systrap

import (
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/platformtest"
	"golang.org/x/sys/unix"
)

var factory = platformtest.Factory{
	New:     func(mf *pgalloc.MemoryFile) (platform.Platform, error) { return New(mf) },
	StubPID: func(as platform.AddressSpace) int { return as.(*addressSpace).pid },
}

func TestPlatform(t *testing.T) { platformtest.Run(t, factory) }

func TestStress(t *testing.T) { platformtest.Stress(t, factory, 64, 3*time.Second) }

// BenchmarkNativeGetpid is the host's own syscall cost, for comparison.
func BenchmarkNativeGetpid(b *testing.B) {
	for b.Loop() {
		unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	}
}

func BenchmarkSyscallRoundTrip(b *testing.B) { platformtest.BenchSyscallRoundTrip(b, factory) }
func BenchmarkFaultRoundTrip(b *testing.B)   { platformtest.BenchFaultRoundTrip(b, factory) }
func BenchmarkMapFile(b *testing.B)          { platformtest.BenchMapFile(b, factory) }
