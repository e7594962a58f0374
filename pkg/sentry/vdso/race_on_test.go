//go:build race

package vdso_test

// raceEnabled: the ptrace platform's stubs do not start under the race
// detector, so the sandbox test skips.
const raceEnabled = true
