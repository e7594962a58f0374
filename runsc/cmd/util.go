// Package cmd holds runsc's subcommands, one file each. Every command's
// Execute receives the parsed global *config.Config as its first extra
// argument and reports failure with a clear message and a non-zero exit.
package cmd

import (
	"fmt"
	"os"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	"github.com/google/subcommands"
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
			return c
		}
	}
	return config.Default()
}
