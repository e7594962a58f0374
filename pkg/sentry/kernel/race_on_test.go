//go:build race

package kernel_test

// raceEnabled: the ptrace platform's stubs do not start under the race
// detector (the forked child runs instrumented code), so the integration
// tests skip; the platform-less tests still run.
const raceEnabled = true
