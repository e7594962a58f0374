package mm

import (
	"context"
	"testing"
)

// countedExe is an Executable that counts its references.
type countedExe struct{ refs int }

func (e *countedExe) IncRef()                    { e.refs++ }
func (e *countedExe) DecRef(ctx context.Context) { e.refs-- }

// The executable reference is shared with a forked copy (each holds one)
// and dropped when replaced or when the last user goes.
func TestExecutableFollowsUsers(t *testing.T) {
	m, _ := newTestMM(t)
	ctx := context.Background()
	if m.ExecutableRef() != nil {
		t.Fatal("a new address space has an executable")
	}
	e := &countedExe{refs: 1}
	m.SetExecutable(ctx, e)
	got := m.ExecutableRef()
	if got != e || e.refs != 2 {
		t.Fatalf("ExecutableRef = %v with %d refs, want the set one with 2", got, e.refs)
	}
	got.DecRef(ctx)
	c, err := m.Fork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.refs != 2 {
		t.Fatalf("after fork %d refs, want 2", e.refs)
	}
	c.IncUsers()
	c.DecUsers(ctx)
	if e.refs != 2 {
		t.Fatalf("a remaining user lost the reference: %d", e.refs)
	}
	c.DecUsers(ctx)
	if e.refs != 1 {
		t.Fatalf("after the child's last user %d refs, want 1", e.refs)
	}
	e2 := &countedExe{refs: 1}
	m.SetExecutable(ctx, e2)
	if e.refs != 0 || e2.refs != 1 {
		t.Fatalf("replacing: old %d refs (want 0), new %d (want 1)", e.refs, e2.refs)
	}
	m.IncUsers()
	m.DecUsers(ctx)
	m.SetExecutable(ctx, nil)
	if e2.refs != 0 {
		t.Fatalf("cleared executable keeps %d refs", e2.refs)
	}
}
