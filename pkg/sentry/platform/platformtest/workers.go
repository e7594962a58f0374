package platformtest

import (
	"runtime"
	"sync"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
)

// newCodeSpace returns a new address space of p, released with t, that
// maps code at CodeAddr (readable, writable and executable, so tests may
// also read it as data). It returns the code's pages too.
func newCodeSpace(t testing.TB, mf *pgalloc.MemoryFile, p platform.Platform, code []byte) (platform.AddressSpace, pgalloc.FileRange) {
	as, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Release)
	fr, err := mf.Allocate(uint64(hostarch.Addr(len(code)).MustRoundUp()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mf.MapInternal(fr)
	if err != nil {
		t.Fatal(err)
	}
	copy(m, code)
	if err := as.MapFile(CodeAddr, fr.Start, fr.Length(), hostarch.AnyAccess, false); err != nil {
		t.Fatal(err)
	}
	return as, fr
}

// workers are n application threads, each a goroutine on its own locked
// OS thread (as a task's) with its own Context.
type workers struct {
	// ctxs holds worker w's Context, nil if it could not be made; the
	// Contexts are released when their workers end.
	ctxs []platform.Context
	// results carries one error (nil for success) per worker.
	results chan error
	wg      sync.WaitGroup
}

// startWorkers starts n workers that each run work with registers that
// start at CodeAddr with the worker's number in RDI, and returns once each
// has its Context.
func startWorkers(p platform.Platform, n int, work func(w int, ctx platform.Context, ac *arch.Context64) error) *workers {
	ws := &workers{ctxs: make([]platform.Context, n), results: make(chan error, n)}
	var started sync.WaitGroup
	started.Add(n)
	for w := 0; w < n; w++ {
		ws.wg.Add(1)
		go func(w int) {
			defer ws.wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ctx, err := p.NewContext()
			if err != nil {
				started.Done()
				ws.results <- err
				return
			}
			ws.ctxs[w] = ctx
			started.Done()
			defer ctx.Release()
			ac := arch.New()
			ac.SetIP(CodeAddr)
			ac.Regs.Rdi = uint64(w)
			ws.results <- work(w, ctx, ac)
		}(w)
	}
	started.Wait()
	return ws
}

// wait reports each worker's failure on t and returns once all have ended
// (and released their Contexts).
func (ws *workers) wait(t testing.TB) {
	for range ws.ctxs {
		if err := <-ws.results; err != nil {
			t.Error(err)
		}
	}
	ws.wg.Wait()
}
