package benchmarks

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

//go:embed workloads/microbench.c
var microbenchSource []byte

// MicroNames are the operations microbench.c implements.
var MicroNames = []string{
	"getpid", "read_devzero_4k", "open_close", "stat", "tmpfs_write_4k",
	"touch_fresh_page", "fork_exit_wait", "exec_true", "pipe_pingpong",
	"clock_gettime", "tcp_pingpong", "tcp_bulk_64k",
}

// Inputs are the files the workloads need, prepared once in a work
// directory on the root filesystem so that every runtime sees them at the
// same path (the runc and runsc root filesystems are the host's root).
type Inputs struct {
	Dir        string
	Microbench string // static binary built from workloads/microbench.c
	SmallC     string // a small C file for the gcc workload
	BigFile    string // 100 MiB for the sequential read
}

// Prepare builds and writes the inputs under dir.
func Prepare(dir string) (*Inputs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := sameDeviceAsRoot(dir); err != nil {
		return nil, err
	}
	in := &Inputs{
		Dir:        dir,
		Microbench: filepath.Join(dir, "microbench"),
		SmallC:     filepath.Join(dir, "small.c"),
		BigFile:    filepath.Join(dir, "100MiB"),
	}
	src := filepath.Join(dir, "microbench.c")
	if err := os.WriteFile(src, microbenchSource, 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command("gcc", "-O2", "-static", "-o", in.Microbench, src).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building microbench: %v\n%s", err, out)
	}
	small := "#include <stdio.h>\nstatic int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\nint main(void) { printf(\"%d\\n\", fib(20)); return 0; }\n"
	if err := os.WriteFile(in.SmallC, []byte(small), 0o644); err != nil {
		return nil, err
	}
	if st, err := os.Stat(in.BigFile); err != nil || st.Size() != 100<<20 {
		f, err := os.Create(in.BigFile)
		if err != nil {
			return nil, err
		}
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i * 7)
		}
		for i := 0; i < 100; i++ {
			if _, err := f.Write(chunk); err != nil {
				f.Close()
				return nil, err
			}
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func sameDeviceAsRoot(dir string) error {
	var a, b syscall.Stat_t
	if err := syscall.Stat("/", &a); err != nil {
		return err
	}
	if err := syscall.Stat(dir, &b); err != nil {
		return err
	}
	if a.Dev != b.Dev {
		return fmt.Errorf("work directory %s is not on the root filesystem, so containers whose root is the host's root would not see it; pick another with -workdir", dir)
	}
	return nil
}

// Workloads returns the full list, in the order the report shows them.
func (in *Inputs) Workloads() []Workload {
	var ws []Workload
	for _, n := range MicroNames {
		ws = append(ws, Workload{Name: n, Kind: Micro, Args: []string{in.Microbench, n}})
	}
	return append(ws,
		Workload{Name: "start_true", Kind: Macro, Args: []string{"/bin/true"}},
		Workload{Name: "start_true_bundle", Kind: Macro, Args: []string{"/bin/true"}, Bundle: true},
		Workload{Name: "python3_pass", Kind: Macro, Args: []string{"/usr/bin/python3", "-c", "pass"}},
		Workload{Name: "gcc_small", Kind: Macro, Args: []string{"/usr/bin/gcc", "-O1", "-o", "/dev/null", in.SmallC}},
		Workload{Name: "tar_usr_include", Kind: Macro, Args: []string{"/bin/sh", "-c", "tar cf - /usr/include | wc -c"}},
		Workload{Name: "read_100MiB", Kind: Macro, Args: []string{"/bin/dd", "if=" + in.BigFile, "of=/dev/null", "bs=1M", "status=none"}},
		Workload{Name: "idle_memory", Kind: Memory, Args: []string{"/bin/sleep", "600"}},
	)
}
