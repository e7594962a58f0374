package kernel

import (
	"context"
	"os"
	"testing"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/kernel/testroot"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// CreateProcess (runsc exec, the container's init) honours the program's
// set-ID bits as execve does, except under no_new_privs or on a nosuid
// mount.
func TestCreateProcessHonoursSetIDBits(t *testing.T) {
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true to load")
	}
	const fileUID, fileGID = 1234, 5678
	const user, group = 1000, 1000
	for _, tc := range []struct {
		name       string
		noNewPrivs bool
		nosuid     bool
		mode       uint32
		wantEUID   auth.UID
		wantEGID   auth.GID
		wantDump   int32
	}{
		{name: "setuid+setgid", mode: unix.S_ISUID | unix.S_ISGID | 0o755, wantEUID: fileUID, wantEGID: fileGID, wantDump: 0},
		{name: "setgid without group exec", mode: unix.S_ISGID | 0o705, wantEUID: user, wantEGID: group, wantDump: 1},
		{name: "plain", mode: 0o755, wantEUID: user, wantEGID: group, wantDump: 1},
		{name: "no_new_privs", noNewPrivs: true, mode: unix.S_ISUID | unix.S_ISGID | 0o755, wantEUID: user, wantEGID: group, wantDump: 1},
		{name: "nosuid mount", nosuid: true, mode: unix.S_ISUID | unix.S_ISGID | 0o755, wantEUID: user, wantEGID: group, wantDump: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mf, err := pgalloc.New("setid-test")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mf.Close() })
			k, err := New(Config{MemoryFile: mf})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			root, err := testroot.NewRoot(ctx, k.VFS(), mf, "/bin/true")
			if err != nil {
				t.Fatal(err)
			}
			defer root.DecRef(ctx)
			rootCreds := auth.NewRoot()
			pop := &vfs.PathOperation{Root: root, Start: root, Path: "/bin/true", FollowFinalSymlink: true}
			if err := k.VFS().SetStatAt(ctx, rootCreds, pop, &vfs.SetStatOptions{
				Mask: unix.STATX_UID | unix.STATX_GID, UID: fileUID, GID: fileGID,
			}); err != nil {
				t.Fatal(err)
			}
			// After the chown, which clears set-ID bits.
			if err := k.VFS().SetStatAt(ctx, rootCreds, pop, &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: tc.mode}); err != nil {
				t.Fatal(err)
			}
			if tc.nosuid {
				if err := k.VFS().RemountAt(ctx, rootCreds, &vfs.PathOperation{Root: root, Start: root, Path: "/"}, false, unix.MS_NOSUID); err != nil {
					t.Fatal(err)
				}
			}
			creds := auth.NewUser(user, group, nil)
			tg, err := k.CreateProcess(ctx, CreateProcessArgs{
				Filename: "/bin/true", Argv: []string{"true"}, Root: root, Credentials: creds, NoNewPrivs: tc.noNewPrivs,
			})
			if err != nil {
				t.Fatal(err)
			}
			task := tg.Leader()
			c := task.Credentials()
			if c.RealUID != user || c.RealGID != group {
				t.Errorf("real IDs %d/%d, want %d/%d", c.RealUID, c.RealGID, user, group)
			}
			if c.EffectiveUID != tc.wantEUID || c.SavedUID != tc.wantEUID || c.FilesystemUID != tc.wantEUID {
				t.Errorf("euid/suid/fsuid %d/%d/%d, want %d", c.EffectiveUID, c.SavedUID, c.FilesystemUID, tc.wantEUID)
			}
			if c.EffectiveGID != tc.wantEGID || c.SavedGID != tc.wantEGID {
				t.Errorf("egid/sgid %d/%d, want %d", c.EffectiveGID, c.SavedGID, tc.wantEGID)
			}
			if got := task.NoNewPrivs(); got != tc.noNewPrivs {
				t.Errorf("no_new_privs %v, want %v", got, tc.noNewPrivs)
			}
			if got := tg.dumpable.Load(); got != tc.wantDump {
				t.Errorf("dumpable %d, want %d", got, tc.wantDump)
			}
			// The caller's credentials are not modified in place.
			if creds.EffectiveUID != user {
				t.Errorf("caller's credentials changed: euid %d", creds.EffectiveUID)
			}
		})
	}
}
