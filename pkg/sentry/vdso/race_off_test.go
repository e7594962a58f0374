//go:build !race

package vdso_test

const raceEnabled = false
