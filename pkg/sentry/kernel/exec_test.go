package kernel

import (
	"context"
	"errors"
	"os"
	"testing"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/kernel/testroot"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// A process that cannot be created (here: its program is not ELF) still
// releases the descriptor table it was given, so the caller's stdio is
// not held forever.
func TestCreateProcessFailureReleasesFiles(t *testing.T) {
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true to load")
	}
	mf, err := pgalloc.New("exec-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	k, err := New(Config{MemoryFile: mf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root, err := testroot.NewRoot(ctx, k.VFS(), mf, "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	creds := auth.NewRoot()
	pop := &vfs.PathOperation{Root: root, Start: root, Path: "/not-elf"}
	f, err := k.VFS().OpenAt(ctx, creds, pop, &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	text := []byte("plain text, not a program\n")
	src, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: text}, 0, int64(len(text)), usermem.IOOpts{})
	if _, err := f.Write(ctx, src, vfs.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	released := false
	f.OnRelease(func(context.Context) { released = true })
	fdt := NewFDTable()
	if _, err := fdt.NewFD(0, 1024, f, FDFlags{}); err != nil {
		t.Fatal(err)
	}
	f.DecRef(ctx)

	_, err = k.CreateProcess(ctx, CreateProcessArgs{Filename: "/not-elf", Argv: []string{"x"}, Root: root, FDTable: fdt})
	if !errors.Is(err, unix.ENOEXEC) {
		t.Fatalf("CreateProcess of a text file: %v, want ENOEXEC", err)
	}
	if !released {
		t.Fatal("the failed process kept its descriptor table's files")
	}
}

// ps (Processes) and /proc read a task's name and image while the task
// renames itself (PR_SET_NAME) or execs: the race detector checks that
// those reads are synchronized.
func TestNameAndImageReadsWhileChanging(t *testing.T) {
	task := newSignalTask(t)
	k := task.Kernel()
	img := task.Image()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			task.SetName([]string{"one", "two"}[i%2])
			task.image.Store(img)
		}
	}()
	for i := 0; i < 200; i++ {
		for _, p := range k.Processes() {
			if p.Name != "one" && p.Name != "two" && p.Name != "true" {
				t.Errorf("process %d has name %q", p.PID, p.Name)
			}
		}
		if task.ImageSnapshot() != img {
			t.Error("image changed")
		}
	}
	close(stop)
	<-done
}
