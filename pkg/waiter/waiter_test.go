package waiter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestNotifyRespectsMask(t *testing.T) {
	var q Queue
	in, inCh := NewChannelEntry(EventIn)
	out, outCh := NewChannelEntry(EventOut)
	q.EventRegister(in)
	q.EventRegister(out)
	if got := q.Events(); got != EventIn|EventOut {
		t.Fatalf("Events = %#x, want %#x", got, EventIn|EventOut)
	}
	q.Notify(EventIn)
	select {
	case <-inCh:
	default:
		t.Fatal("EventIn entry not notified")
	}
	select {
	case <-outCh:
		t.Fatal("EventOut entry notified for EventIn")
	default:
	}
	// Hang-up reaches everyone.
	q.Notify(EventHUp)
	for i, ch := range []<-chan struct{}{inCh, outCh} {
		select {
		case <-ch:
		default:
			t.Fatalf("entry %d missed EventHUp", i)
		}
	}
	q.EventUnregister(in)
	q.EventUnregister(in) // idempotent
	q.Notify(EventIn)
	select {
	case <-inCh:
		t.Fatal("unregistered entry notified")
	default:
	}
	q.EventUnregister(out)
	if !q.IsEmpty() || q.Events() != 0 {
		t.Fatal("queue not empty after unregistering everything")
	}
}

func TestUnregisterMiddleKeepsOrder(t *testing.T) {
	var q Queue
	var got []int
	var es [3]*Entry
	for i := range es {
		es[i] = &Entry{Mask: EventIn, Listener: FunctionListener(func(EventMask) { got = append(got, i) })}
		q.EventRegister(es[i])
	}
	q.EventUnregister(es[1])
	q.Notify(EventIn)
	if len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Fatalf("notified %v, want [0 2]", got)
	}
}

func TestBitValuesMatchPoll(t *testing.T) {
	for _, c := range []struct {
		m    EventMask
		want uint32
	}{{EventIn, 1}, {EventPri, 2}, {EventOut, 4}, {EventErr, 8}, {EventHUp, 0x10}, {EventNVal, 0x20}, {EventRdNorm, 0x40}, {EventRdHUp, 0x2000}} {
		if c.m.ToLinux() != c.want {
			t.Errorf("%#x != %#x", c.m, c.want)
		}
	}
}

type countingBlocker struct{ n int }

func (c *countingBlocker) Block(ch <-chan struct{}) error { c.n++; <-ch; return nil }

func TestBlockerFromContext(t *testing.T) {
	ctx := context.Background()
	ch := make(chan struct{})
	close(ch)
	if err := BlockerFromContext(ctx).Block(ch); err != nil {
		t.Fatalf("default blocker: %v", err)
	}
	cb := &countingBlocker{}
	if err := BlockerFromContext(ContextWithBlocker(ctx, cb)).Block(ch); err != nil || cb.n != 1 {
		t.Fatalf("context blocker not used: err=%v n=%d", err, cb.n)
	}
	cctx, cancel := context.WithCancel(ctx)
	errIntr := errors.New("interrupted")
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := (ContextBlocker{Ctx: cctx, Err: errIntr}).Block(make(chan struct{})); err != errIntr {
		t.Fatalf("ContextBlocker = %v, want %v", err, errIntr)
	}
}

func TestConcurrentRegisterNotify(t *testing.T) {
	var q Queue
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				e, ch := NewChannelEntry(EventIn)
				q.EventRegister(e)
				q.Notify(EventIn)
				<-ch // our own notification must arrive
				q.EventUnregister(e)
			}
		}()
	}
	wg.Wait()
	if !q.IsEmpty() {
		t.Fatal("entries left behind")
	}
}
