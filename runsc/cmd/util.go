// Package cmd holds runsc's subcommands, one file each. Every command's
// Execute receives the parsed global *config.Config as its first extra
// argument and reports failure with a clear message and a non-zero exit.
package cmd

import (
	"fmt"
	"io"
	"os"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Failure prints the error for the person at the terminal, records it in
// the log (where containerd looks for it when --log is set), and returns
// the exit status for a failed command.
func Failure(format string, args ...any) subcommands.ExitStatus {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "runsc: %s\n", msg)
	log.Warningf("%s", msg)
	return subcommands.ExitFailure
}

// usageError reports wrong arguments: a message and exit status 2.
func usageError(format string, args ...any) subcommands.ExitStatus {
	fmt.Fprintf(os.Stderr, "runsc: %s\n", fmt.Sprintf(format, args...))
	return subcommands.ExitUsageError
}

// configFrom extracts the global config every command is given.
func configFrom(args []any) *config.Config {
	if len(args) > 0 {
		if c, ok := args[0].(*config.Config); ok {
			rootlessDefaults(c, os.Args[1:]) // container.go
			return c
		}
	}
	return config.Default()
}

// readSpecFD reads and validates the spec runsc hands a sandbox process
// on descriptor fd, which it closes.
func readSpecFD(fd int) (*specs.Spec, error) {
	f := os.NewFile(uintptr(fd), "spec")
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	return specutils.Decode(data)
}

// socketsFromFDs wraps inherited socket descriptors, taking ownership.
func socketsFromFDs(fds []int) ([]*unet.Socket, error) {
	socks := make([]*unet.Socket, 0, len(fds))
	for _, fd := range fds {
		s, err := unet.NewSocket(fd)
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, err
		}
		socks = append(socks, s)
	}
	return socks, nil
}
