// Package linux is the Linux amd64 ABI as the Sentry presents it to
// applications: syscall numbers, errnos, signal numbers, flags and constants,
// and struct layouts with their little-endian encodings. It holds numbers and
// layouts only, no behaviour; every value matches the kernel's uapi headers
// (the tests check them against the host's C headers with gcc).
//
// Names keep the kernel's spelling (O_CLOEXEC, SYS_READ, CLONE_VM) so that a
// reader can grep the man pages for them. Errnos are golang.org/x/sys/unix
// Errno values throughout the project; this package re-exports them and adds
// the kernel-internal restart errnos.
//
// Structs mirror the C layout field for field, with explicit padding fields,
// so unsafe.Sizeof equals the C sizeof. Each has SizeBytes, MarshalBytes and
// UnmarshalBytes that encode to and decode from a caller-supplied buffer
// without reflection or allocation.
package linux

//go:generate go run carapace.dev/carapace/tools/gensyscalls -out sysno_amd64.go
