package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/loader"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// fsOpener opens executables through the VFS from a filesystem context,
// with execve's checks: a regular file, executable by the caller.
type fsOpener struct {
	vfs   *vfs.VirtualFilesystem
	creds *auth.Credentials
	fs    *FSContext
}

// OpenExecutable implements loader.Opener.
func (o *fsOpener) OpenExecutable(ctx context.Context, p string) (loader.File, error) {
	root := o.fs.Root()
	defer root.DecRef(ctx)
	start := o.fs.WorkingDirectory()
	defer start.DecRef(ctx)
	return OpenExecutable(ctx, o.vfs, o.creds, &vfs.PathOperation{
		Root: root, Start: start, Path: p, FollowFinalSymlink: true,
	})
}

// OpenExecutable opens the file pop names for execution, as execve(2)
// checks it: EACCES unless it is a regular file its opener may execute.
func OpenExecutable(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, pop *vfs.PathOperation) (loader.File, error) {
	fd, err := v.OpenAt(ctx, creds, pop, &vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		return nil, err
	}
	if err := CheckExecutable(ctx, creds, fd); err != nil {
		fd.DecRef(ctx)
		return nil, err
	}
	return newExecFile(ctx, v, pop.Root, fd), nil
}

// CheckExecutable checks that fd may be executed by creds: a regular
// file with an execute bit that applies (root needs any execute bit).
func CheckExecutable(ctx context.Context, creds *auth.Credentials, fd *vfs.FileDescription) error {
	st, err := fd.Stat(ctx, vfs.StatOptions{Mask: unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_UID | unix.STATX_GID})
	if err != nil {
		return err
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
		return unix.EACCES
	}
	if err := fd.CheckExecMount(); err != nil {
		return err
	}
	return vfs.GenericCheckPermissions(creds, vfs.MayExec, uint32(st.Mode), auth.UID(st.Uid), auth.GID(st.Gid))
}

// execFile is a VFS file as the loader reads it. name is its path from
// the opener's root, for the mappings /proc/[pid]/maps lists.
type execFile struct {
	*vfs.FileDescription
	name string
}

func newExecFile(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, fd *vfs.FileDescription) *execFile {
	name, err := v.PathnameWithDeleted(ctx, root, fd.VirtualDentry())
	if err != nil {
		name = ""
	}
	return &execFile{FileDescription: fd, name: name}
}

// MappingName implements loader.NamedFile.
func (f *execFile) MappingName() string { return f.name }

// ConfigureMMap implements loader.File. The file description itself is
// the mappings' identity, lent here (each mapping takes its own
// reference): left unset, the filesystem would add one for the caller,
// which the loader never drops, and the executable's mount stayed busy.
func (f *execFile) ConfigureMMap(ctx context.Context, opts *memmap.MMapOpts) error {
	if opts.MappingIdentity == nil {
		opts.MappingIdentity = f.FileDescription
	}
	return f.FileDescription.ConfigureMMap(ctx, opts)
}

// Executable implements loader.ExecutableFile: the file's dentry, with a
// reference, becomes the address space's exe_file.
func (f *execFile) Executable() mm.Executable {
	vd := f.VirtualDentry()
	vd.IncRef()
	return vd
}

// ReadAt implements loader.File.
func (f *execFile) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	seq, err := usermem.BytesSequence(&usermem.BytesIO{Bytes: p}, 0, int64(len(p)), usermem.IOOpts{})
	if err != nil {
		return 0, err
	}
	var done int
	for done < len(p) {
		n, err := f.PRead(ctx, seq, off+int64(done), vfs.ReadOptions{})
		done += int(n)
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
		seq = seq.DropFirst(n)
	}
	return done, nil
}

// Exec replaces the task's program as execve(2) does, opening filename
// from the task's root and working directory. On success the caller must
// not touch the old registers (ErrNoSyscallReturn); on failure the old
// image is intact and the error is returned.
func (t *Task) Exec(ctx context.Context, filename string, argv, envv []string) error {
	return t.ExecFile(ctx, filename, nil, vfs.VirtualDentry{}, argv, envv)
}

// ExecFile is execveat(2): fd, when not nil, is the program already
// opened (AT_EMPTY_PATH; the caller keeps its reference); otherwise
// filename is resolved from dirfd (the cwd when not Ok).
func (t *Task) ExecFile(ctx context.Context, filename string, fd *vfs.FileDescription, dirfd vfs.VirtualDentry, argv, envv []string) error {
	k := t.k
	// Interpreters (ELF and "#!") are found from the cwd whatever dirfd is.
	opener := &fsOpener{vfs: k.vfs, creds: t.Credentials(), fs: t.fsContext}
	var file loader.File
	switch {
	case fd != nil:
		if err := CheckExecutable(ctx, t.Credentials(), fd); err != nil {
			return err
		}
		root := t.fsContext.Root()
		file = newExecFile(ctx, k.vfs, root, fd)
		root.DecRef(ctx)
	case dirfd.Ok():
		root := t.fsContext.Root()
		f, err := OpenExecutable(ctx, k.vfs, t.Credentials(), &vfs.PathOperation{
			Root: root, Start: dirfd, Path: filename, FollowFinalSymlink: true,
		})
		root.DecRef(ctx)
		if err != nil {
			return err
		}
		defer f.(*execFile).DecRef(ctx)
		file = f
	default:
		f, err := opener.OpenExecutable(ctx, filename)
		if err != nil {
			return err
		}
		defer f.(*execFile).DecRef(ctx)
		file = f
	}
	oldCreds := t.Credentials()
	creds, secure := t.execCredentials(ctx, opener, file)
	minAddr, maxAddr := t.mm.Layout().MinAddr, t.mm.Layout().MaxAddr
	newMM := mm.New(k.mf, mm.Layout{MinAddr: minAddr, MaxAddr: maxAddr})
	t.tg.applyMemoryLimits(newMM)
	res, err := loader.Load(t, loader.Args{
		MM: newMM, Opener: opener, File: file, Filename: filename, Argv: argv, Envv: envv, Creds: creds, Secure: secure,
		NoRandomize: t.Personality()&AddrNoRandomize != 0, VDSO: k.vdso,
	})
	if err != nil {
		newMM.DecUsers(t)
		return err
	}
	if k.platform != nil {
		as, err := k.platform.NewAddressSpace()
		if err != nil {
			newMM.DecUsers(t)
			return fmt.Errorf("execve: new address space: %w", err)
		}
		newMM.SetAddressSpace(as)
	}

	// Past the point of no return: become the only thread.
	t.killOtherThreads()

	t.exitRobustList()
	t.personalityForExec()
	old := t.mm
	t.mm = newMM
	t.as = newMM.AddressSpace()
	old.DecUsers(t)
	t.image.Store(res)
	t.SetName(path.Base(res.Filename))

	// Files: unshare, then close the close-on-exec ones.
	fdt := t.fdTable.Fork()
	t.fdTable.DecRef(t)
	fdt.closeOnExec(t)
	t.fdTable = fdt

	tg := t.tg
	tg.signalMu.Lock()
	tg.handlers.Store(tg.handlers.Load().ResetForExec())
	t.altStack = arch.SignalStack{Flags: arch.SignalStackDisable}
	tg.signalMu.Unlock()

	tg.deleteAllTimers()
	t.SetCredentials(creds)
	// A program that runs with other IDs than its user's, or with more
	// capabilities than before, is not dumpable, and its parent's death
	// signal no longer applies (execve(2), prctl(2) PR_SET_DUMPABLE).
	if secure || credsElevated(oldCreds, creds) {
		tg.dumpable.Store(0)
		t.parentDeathSignal.Store(0)
	} else {
		tg.dumpable.Store(1)
	}
	t.clearChildTID = 0
	t.robustList = 0
	t.restartBlock = nil
	if t.vforkDone != nil {
		close(t.vforkDone)
		t.vforkDone = nil
	}
	ac := arch.New()
	ac.SetIP(res.Entry)
	ac.SetStack(res.Stack.SP)
	*t.ac = *ac
	return nil
}

// killOtherThreads ends every other task of the group and waits for them
// (the de_thread step of execve).
func (t *Task) killOtherThreads() {
	tg := t.tg
	tg.signalMu.Lock()
	var others []*Task
	for _, o := range tg.tasks {
		if o != t {
			others = append(others, o)
		}
	}
	for _, o := range others {
		o.killed.Store(true)
		o.interrupt()
	}
	tg.signalMu.Unlock()
	for _, o := range others {
		if o.started.Load() {
			<-o.done
		}
	}
}

// execCredentials works out the credentials the program file (what
// execve names) runs with, and whether the exec is secure (AT_SECURE).
func (t *Task) execCredentials(ctx context.Context, opener loader.Opener, file loader.File) (*auth.Credentials, bool) {
	return t.Credentials().ForExecOf(execSetID(ctx, opener, file, t.noNewPrivs), t.noNewPrivs)
}

// execSetID returns the set-ID bits that executing file grants. A
// script's interpreter, not the script, lends its set-ID bits, as on
// Linux; they count for nothing on a nosuid mount or under no_new_privs.
// Errors resolving scripts are left for the loader to report.
func execSetID(ctx context.Context, opener loader.Opener, file loader.File, noNewPrivs bool) auth.ExecFile {
	var xf auth.ExecFile
	if noNewPrivs {
		return xf
	}
	final := file
	for depth := 0; depth < maxScriptDepth; depth++ {
		hdr := make([]byte, 256)
		n, err := final.ReadAt(ctx, hdr, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			break
		}
		if n < 2 || hdr[0] != '#' || hdr[1] != '!' {
			break
		}
		interp, _, err := loader.ParseShebang(hdr[:n])
		if err != nil {
			break
		}
		f, err := opener.OpenExecutable(ctx, interp)
		if err != nil {
			break
		}
		defer f.(*execFile).DecRef(ctx)
		final = f
	}
	if f, ok := final.(*execFile); ok && f.SetIDAllowed() {
		st, err := f.Stat(ctx, vfs.StatOptions{Mask: unix.STATX_MODE | unix.STATX_UID | unix.STATX_GID})
		if err == nil {
			mode := uint32(st.Mode)
			if mode&unix.S_ISUID != 0 {
				xf.SetUID, xf.UID = true, auth.UID(st.Uid)
			}
			// Set-group-ID without group execute marks mandatory locking.
			if mode&unix.S_ISGID != 0 && mode&unix.S_IXGRP != 0 {
				xf.SetGID, xf.GID = true, auth.GID(st.Gid)
			}
		}
	}
	return xf
}

// maxScriptDepth bounds the "#!" chain execCredentials follows (the
// loader's own limit is lower and reports ELOOP).
const maxScriptDepth = 5

// credsElevated reports whether execve changed the effective or
// filesystem IDs or gave capabilities the process did not have, which
// makes it non-dumpable as Linux's commit_creds does.
func credsElevated(old, n *auth.Credentials) bool {
	return old.EffectiveUID != n.EffectiveUID || old.EffectiveGID != n.EffectiveGID ||
		old.FilesystemUID != n.FilesystemUID || old.FilesystemGID != n.FilesystemGID ||
		n.PermittedCaps&^old.PermittedCaps != 0
}
