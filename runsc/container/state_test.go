package container

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "my-container_1.2+x", "0123456789abcdef"} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "a b", "x\x00", string(make([]byte, 1025))} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
}

func TestLifecycleOfARecord(t *testing.T) {
	s := Store{Root: filepath.Join(t.TempDir(), "runsc")}
	self, err := ProcessStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	st := &State{ID: "c1", Status: Created, Bundle: "/b", SentryPid: os.Getpid(), SentryStart: self, Created: time.Now()}
	unlock, err := s.Create(st)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := s.Create(&State{ID: "c1"}); !errors.Is(err, ErrExist) {
		t.Fatalf("duplicate Create = %v, want ErrExist", err)
	}
	if err := s.Update("c1", func(st *State) error { st.Status = Running; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("c1")
	if err != nil || got.Status != Running || got.OCIState().Pid != os.Getpid() {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("c1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Load after Remove = %v", err)
	}
	if _, err := s.Lock("c1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Lock after Remove = %v", err)
	}
}

func TestDeadSentryMeansStopped(t *testing.T) {
	s := Store{Root: t.TempDir()}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start, err := ProcessStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	unlock, err := s.Create(&State{ID: "gone", Status: Running, SentryPid: pid, SentryStart: start})
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	got, err := s.Load("gone")
	if err != nil || got.Status != Stopped || got.OCIState().Pid != 0 {
		t.Fatalf("Load of a container whose sentry exited = %+v, %v", got, err)
	}
	// The same pid with another start time is someone else.
	if Alive(os.Getpid(), 1) {
		t.Error("Alive ignored the start time")
	}
}

func TestLockSerializes(t *testing.T) {
	s := Store{Root: t.TempDir()}
	unlock, err := s.Create(&State{ID: "c", Status: Created})
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update("c", func(*State) error {
				mu.Lock()
				inside++
				n := inside
				mu.Unlock()
				if n != 1 {
					t.Errorf("%d updaters inside the lock at once", n)
				}
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				inside--
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestCorruptRecordIsAnError(t *testing.T) {
	s := Store{Root: t.TempDir()}
	unlock, err := s.Create(&State{ID: "c", Status: Created})
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := os.WriteFile(filepath.Join(s.StateDir("c"), "state.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("c"); err == nil || errors.Is(err, ErrNotExist) {
		t.Fatalf("Load of a corrupt record = %v", err)
	}
	if _, err := s.List(); err == nil {
		t.Fatal("List hid a corrupt record")
	}
}
