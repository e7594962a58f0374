package linux

import (
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
)

// Personality implements personality(2). The result is the previous
// value; it never fails, as on Linux, where the return value of a query
// (0xffffffff) would be indistinguishable from an error anyway.
func Personality(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.SetPersonality(args[0].Uint())), nil
}
