package linux

// SyscallName returns the kernel's name for syscall number nr ("read"), or ""
// if amd64 has no syscall with that number.
func SyscallName(nr uintptr) string {
	if nr < uintptr(len(syscallNames)) {
		return syscallNames[nr]
	}
	return ""
}

// SyscallNumber returns the number of the syscall named name ("read") and
// whether there is one. It scans the table, so it is for setup code such as
// parsing filter specs, not for hot paths.
func SyscallNumber(name string) (uintptr, bool) {
	if name == "" {
		return 0, false
	}
	for nr, n := range syscallNames {
		if n == name {
			return uintptr(nr), true
		}
	}
	return 0, false
}
