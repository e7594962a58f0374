package systrap

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/platformtest"
)

const helperEnv = "CARAPACE_SYSTRAP_TEST_SENTRY"

// TestHelperSentry is not a test: TestStubsDieWithSentry runs it as a
// stand-in Sentry that creates a stub and reports it and the zygote.
func TestHelperSentry(t *testing.T) {
	factory.ServeHelperSentry(t, helperEnv, func(p platform.Platform) []int { return []int{p.(*Platform).zygotePID} })
}

// A Sentry killed outright takes its zygote and stubs with it.
func TestStubsDieWithSentry(t *testing.T) {
	factory.CheckStubsDieWithSentry(t, helperEnv, "TestHelperSentry")
}

// A stub holds nothing of the Sentry's: the memory file and its two pipe
// ends, and only the stub region and the application's mappings.
func TestStubHoldsOnlyItsOwn(t *testing.T) {
	e := factory.NewEnv(t, []byte{0xcc})
	platformtest.CheckStubHoldsOnly(t, e.AS.(*addressSpace).pid, map[string]int{"memfd": 1, "pipe": 2}, func(lo, hi uint64) bool {
		return lo >= uint64(stub.base) && hi <= uint64(stub.base)+regionSize
	})
}
