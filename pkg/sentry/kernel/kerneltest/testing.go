package kerneltest

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
)

// NewKernel makes a kernel without a platform over a new memory file
// named name, for tests that need tasks but run no application code; the
// end of tb closes the memory file.
func NewKernel(tb testing.TB, name string) *kernel.Kernel {
	tb.Helper()
	mf, err := pgalloc.New(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mf.Close() })
	k, err := kernel.New(kernel.Config{MemoryFile: mf})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// NewTestTask is NewTask failing tb on error; the end of tb releases the
// task (before NewKernel's memory file is closed, as cleanups run last
// first).
func NewTestTask(tb testing.TB, k *kernel.Kernel) *kernel.Task {
	tb.Helper()
	t, release, err := NewTask(context.Background(), k)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(release)
	return t
}

// SyncBuffer is a bytes.Buffer that a task goroutine may write (a
// process's stdout, the --strace log) while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
