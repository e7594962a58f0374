package systrap

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A check whose deadline has passed by the time it polls (the Sentry
// thread was descheduled, or the poll was retried after EINTR) must still
// only check. poll(2) waits forever for a negative timeout, so a deadline
// more than a millisecond old once made Switch's liveness check on a
// running thread wait for the stub's exit: the Sentry stopped watching the
// thread's state word, and the thread's next trap was never answered.
func TestWaitExitedPastDeadlineOnlyChecks(t *testing.T) {
	e := factory.NewEnv(t, []byte{0xcc})
	as := e.AS.(*addressSpace)
	for _, late := range []time.Duration{0, 500 * time.Microsecond, 1500 * time.Microsecond, 50 * time.Millisecond, time.Hour} {
		done := make(chan bool, 1)
		go func() { done <- as.waitExitedUntil(time.Now().Add(-late)) }()
		select {
		case exited := <-done:
			if exited {
				t.Fatalf("deadline %v ago: live stub %d reported exited", late, as.pid)
			}
		case <-time.After(5 * time.Second):
			// Unblock the stuck poll so the test can clean up (not
			// as.kill, which would wait for the poll's lock).
			unix.Kill(as.pid, unix.SIGKILL)
			<-done
			t.Fatalf("deadline %v ago: check of a live stub still waiting after 5s", late)
		}
	}
	// And a stub that has exited is seen as exited, even past the deadline.
	as.kill()
	if !as.waitExited(memOpTimeout) {
		t.Fatalf("stub %d not seen to exit after SIGKILL", as.pid)
	}
	if !as.waitExitedUntil(time.Now().Add(-time.Second)) {
		t.Fatalf("exited stub %d reported alive by a check with a past deadline", as.pid)
	}
}

func TestPollMillis(t *testing.T) {
	for _, c := range []struct {
		left time.Duration
		want int
	}{
		{-time.Hour, 0}, {-1500 * time.Microsecond, 0}, {-time.Nanosecond, 0}, {0, 0},
		{time.Nanosecond, 1}, {time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {10 * time.Second, 10000},
	} {
		if got := pollMillis(c.left); got != c.want {
			t.Errorf("pollMillis(%v) = %d, want %d", c.left, got, c.want)
		}
	}
}
