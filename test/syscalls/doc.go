// Package syscalls holds the syscall conformance suite: gtest programs in
// linux/ (one per syscall family) that run natively and under runsc. The
// go test in this directory builds them, runs every test case natively and
// on each runsc platform, prints the result table and enforces
// EXPECTED_FAILURES; see README.md.
package syscalls
