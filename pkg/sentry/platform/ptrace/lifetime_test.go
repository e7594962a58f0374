package ptrace

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/platform/platformtest"
)

const helperEnv = "CARAPACE_PTRACE_TEST_SENTRY"

// TestHelperSentry is not a test: TestStubsDieWithSentry runs it as a
// stand-in Sentry that creates a stub.
func TestHelperSentry(t *testing.T) { factory.ServeHelperSentry(t, helperEnv, nil) }

// A Sentry killed outright takes its stubs with it.
func TestStubsDieWithSentry(t *testing.T) {
	factory.CheckStubsDieWithSentry(t, helperEnv, "TestHelperSentry")
}

// A stub holds nothing of the Sentry's: the memory file only, and only
// the stub region and the application's mappings.
func TestStubHoldsOnlyTheMemoryFile(t *testing.T) {
	e := newEnv(t, insInt3)
	platformtest.CheckStubHoldsOnly(t, e.AS.(*addressSpace).pid, map[string]int{"memfd": 1}, func(lo, hi uint64) bool {
		return lo >= uint64(stub.base) && hi <= uint64(stub.end)
	})
}
