package sandbox

import (
	"encoding/json"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// child describes one re-execution of runsc as a sandbox process.
type child struct {
	subcommand string
	// args follow the subcommand; "--spec-fd=3" is added.
	args []string
	// files become descriptors 4, 5, … in the child (3 is the spec).
	files      []*os.File
	stdio      [3]*os.File
	cloneflags uintptr
	// joins are existing namespaces the child starts in.
	joins []nsJoin
	// detach makes a process that outlives the runsc that started it
	// (runsc create): a session of its own, no PDEATHSIG.
	detach bool
}

// fdArg names, for the child, the descriptor files[i] will have.
func fdArg(i int) string { return strconv.Itoa(4 + i) }

// startChild starts runscBin as c with conf's flags, feeding it spec on
// descriptor 3. Unless c.detach, the child is killed if the thread that
// started it dies (PDEATHSIG): such processes never outlive the runsc that
// made them.
func startChild(runscBin string, conf *config.Config, spec *specs.Spec, c child) (*exec.Cmd, error) {
	specData, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append(conf.ToFlags(), c.subcommand, "--spec-fd=3")
	cmd := exec.Command(runscBin, append(args, c.args...)...)
	cmd.Args[0] = "runsc-" + c.subcommand
	cmd.ExtraFiles = append([]*os.File{specR}, c.files...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdio[0], c.stdio[1], c.stdio[2]
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: c.cloneflags, Pdeathsig: syscall.SIGKILL}
	if conf.Rootless {
		useRootlessUserNS(cmd.SysProcAttr) // userns.go
	}
	if c.detach {
		cmd.SysProcAttr.Pdeathsig = 0
		cmd.SysProcAttr.Setsid = true
	} else if c.stdio[0] != nil && isPty(c.stdio[0]) {
		// A pty runsc relays (`runsc do` on a terminal): the user's
		// terminal signals (window changes) must not reach the
		// Sentry's stubs; runsc passes them on to the Sentry itself.
		cmd.SysProcAttr.Setpgid = true
	}
	err = inNamespaces(c.joins, cmd.Start)
	specR.Close()
	if err != nil {
		specW.Close()
		return nil, fmt.Errorf("starting runsc %s: %w", c.subcommand, err)
	}
	// The spec may exceed a pipe's buffer: write it while the child reads.
	go func() {
		specW.Write(specData)
		specW.Close()
	}()
	return cmd, nil
}

func isPty(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
