package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Brk implements brk(2): it returns the new break, or the old one on
// failure, never an error.
func Brk(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.MemoryManager().Brk(t, args[0].Pointer())), nil
}

const knownProt = linux.PROT_READ | linux.PROT_WRITE | linux.PROT_EXEC | linux.PROT_SEM

// Mmap implements mmap(2): anonymous memory, or a file whose
// ConfigureMMap provides the pages (ENODEV if it cannot be mapped).
func Mmap(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr := args[0].Pointer()
	length := args[1].Uint64()
	prot := args[2].Int()
	flags := args[3].Int()
	off := args[5].Uint64()
	if prot&^knownProt != 0 {
		return 0, unix.EINVAL
	}
	var private bool
	switch flags & linux.MAP_TYPE {
	case linux.MAP_PRIVATE:
		private = true
	case linux.MAP_SHARED, linux.MAP_SHARED_VALIDATE:
	default:
		return 0, unix.EINVAL
	}
	if length == 0 || off%hostarch.PageSize != 0 {
		return 0, unix.EINVAL
	}
	if _, ok := hostarch.PageRoundUp(length); !ok {
		return 0, unix.ENOMEM
	}
	fixed := flags&(linux.MAP_FIXED|linux.MAP_FIXED_NOREPLACE) != 0
	if fixed && !addr.IsPageAligned() {
		return 0, unix.EINVAL
	}
	if flags&linux.MAP_HUGETLB != 0 {
		return 0, unix.EINVAL
	}
	opts := memmap.MMapOpts{
		Length: length, Offset: off, Addr: addr.RoundDown(), Fixed: fixed,
		Unmap:     flags&linux.MAP_FIXED != 0 && flags&linux.MAP_FIXED_NOREPLACE == 0,
		NoReplace: flags&linux.MAP_FIXED_NOREPLACE != 0, Map32Bit: flags&linux.MAP_32BIT != 0,
		Private: private, GrowsDown: flags&linux.MAP_GROWSDOWN != 0,
		Precommit: flags&linux.MAP_POPULATE != 0,
		Perms:     hostarch.AccessTypeFromProt(int(prot)), MaxPerms: hostarch.AnyAccess,
	}
	// personality(2) READ_IMPLIES_EXEC: readable means executable too,
	// except for a file on a noexec mount.
	readImpliesExec := prot&linux.PROT_READ != 0 && t.Personality()&kernel.ReadImpliesExec != 0
	if readImpliesExec && flags&linux.MAP_ANONYMOUS != 0 {
		opts.Perms.Execute = true
	}
	if flags&linux.MAP_ANONYMOUS == 0 {
		f, _, ok := t.FDTable().Get(args[4].Int())
		if !ok {
			return 0, unix.EBADF
		}
		defer f.DecRef(t)
		// mmap(2): the file must be open for reading; a shared mapping
		// may be writable only through a file open for writing (and not
		// append-only).
		if !f.IsReadable() {
			return 0, unix.EACCES
		}
		if !private {
			if !f.IsWritable() || f.StatusFlags()&linux.O_APPEND != 0 {
				if opts.Perms.Write {
					return 0, unix.EACCES
				}
				opts.MaxPerms.Write = false
			}
		}
		opts.MappingIdentity = f
		opts.Hint = mappingName(t, f)
		if readImpliesExec && f.CheckExecMount() == nil {
			opts.Perms.Execute = true
		}
		if err := f.ConfigureMMap(t, &opts); err != nil {
			return 0, err
		}
		if opts.Mappable == nil {
			return 0, unix.ENODEV
		}
	} else {
		opts.Offset = 0
	}
	a, err := t.MemoryManager().MMap(t, opts)
	return uintptr(a), err
}

// mappingName is the path /proc/[pid]/maps shows for a mapping of f: its
// path from the task's root, " (deleted)" once unlinked.
func mappingName(t *kernel.Task, f *vfs.FileDescription) string {
	root := t.FSContext().Root()
	defer root.DecRef(t)
	name, err := t.Kernel().VFS().PathnameWithDeleted(t, root, f.VirtualDentry())
	if err != nil {
		return ""
	}
	return name
}

// Munmap implements munmap(2).
func Munmap(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, t.MemoryManager().MUnmap(t, args[0].Pointer(), args[1].Uint64())
}

// Mprotect implements mprotect(2).
func Mprotect(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	prot := args[2].Int()
	if prot&^(knownProt|linux.PROT_GROWSDOWN|linux.PROT_GROWSUP) != 0 {
		return 0, unix.EINVAL
	}
	if prot&linux.PROT_GROWSDOWN != 0 && prot&linux.PROT_GROWSUP != 0 {
		return 0, unix.EINVAL
	}
	if prot&linux.PROT_GROWSUP != 0 {
		return 0, unix.EINVAL // no grows-up mappings on amd64
	}
	return 0, t.MemoryManager().MProtectWith(t, args[0].Pointer(), args[1].Uint64(),
		hostarch.AccessTypeFromProt(int(prot&knownProt)), prot&linux.PROT_GROWSDOWN != 0,
		prot&linux.PROT_READ != 0 && t.Personality()&kernel.ReadImpliesExec != 0)
}

// Mremap implements mremap(2), MREMAP_DONTUNMAP included (Linux 5.13's
// rules: any mapping, sizes equal, with MREMAP_MAYMOVE).
func Mremap(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	flags := args[3].Int()
	if flags&^(linux.MREMAP_MAYMOVE|linux.MREMAP_FIXED|linux.MREMAP_DONTUNMAP) != 0 {
		return 0, unix.EINVAL
	}
	a, err := t.MemoryManager().MRemap(t, args[0].Pointer(), args[1].Uint64(), args[2].Uint64(), mm.MRemapOpts{
		MayMove: flags&linux.MREMAP_MAYMOVE != 0, Fixed: flags&linux.MREMAP_FIXED != 0, NewAddr: args[4].Pointer(),
		DontUnmap: flags&linux.MREMAP_DONTUNMAP != 0,
	})
	return uintptr(a), err
}

// PkeyAlloc implements pkey_alloc(2) as Linux does on a CPU without
// protection keys (the sandbox offers none): EINVAL.
func PkeyAlloc(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, unix.EINVAL
}

// PkeyFree implements pkey_free(2): no key was ever allocated.
func PkeyFree(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, unix.EINVAL
}

// PkeyMprotect implements pkey_mprotect(2): key -1 is mprotect(2); no
// other key exists.
func PkeyMprotect(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[3].Int() != -1 {
		return 0, unix.EINVAL
	}
	return Mprotect(t, args)
}

// Madvise implements madvise(2).
func Madvise(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, t.MemoryManager().MAdvise(t, args[0].Pointer(), args[1].Uint64(), int(args[2].Int()))
}

// Msync implements msync(2): memory-file pages are the file's pages, so
// there is nothing to write back; the arguments are checked.
func Msync(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	flags := args[2].Int()
	if flags&^(linux.MS_ASYNC|linux.MS_INVALIDATE|linux.MS_SYNC) != 0 ||
		flags&(linux.MS_ASYNC|linux.MS_SYNC) == linux.MS_ASYNC|linux.MS_SYNC {
		return 0, unix.EINVAL
	}
	return 0, t.MemoryManager().CheckMapped(args[0].Pointer(), args[1].Uint64())
}

// Mincore implements mincore(2).
func Mincore(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	vec, err := t.MemoryManager().Residency(args[0].Pointer(), args[1].Uint64())
	if err != nil {
		return 0, err
	}
	if _, err := t.CopyOut(args[2].Pointer(), vec); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Mlock implements mlock(2), munlock(2) and mlock2(2): the Sentry never
// swaps, so locking only checks that the range is mapped.
func Mlock(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr := args[0].Pointer()
	return 0, t.MemoryManager().CheckMapped(addr.RoundDown(), args[1].Uint64()+addr.PageOffset())
}

// Mlockall implements mlockall(2) and munlockall(2).
func Mlockall(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if flags := args[0].Int(); flags&^(linux.MCL_CURRENT|linux.MCL_FUTURE|linux.MCL_ONFAULT) != 0 {
		return 0, unix.EINVAL
	}
	return 0, nil
}
