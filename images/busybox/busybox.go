// Package busybox builds the test image the e2e suite runs besides the
// host-root bundles: an OCI bundle whose rootfs holds only Debian's
// statically linked busybox (package busybox-static) and its applet links,
// and whose config.json is the one `runsc spec` writes.
package busybox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HostBinary is where Debian's busybox-static installs busybox.
const HostBinary = "/bin/busybox"

// ErrNoBusybox means the host lacks the static busybox the image is made of.
var ErrNoBusybox = errors.New("busybox: " + HostBinary + " (Debian package busybox-static) is not installed")

// Build writes a bundle into dir (which must exist and be empty): rootfs/
// with bin/busybox, a link for every applet, and empty /proc, /sys, /dev,
// /tmp and /etc mount points; and config.json from `runscBin spec`, run
// with args as the process.
func Build(dir, runscBin string, args ...string) error {
	if !isStatic(HostBinary) {
		return ErrNoBusybox
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return fmt.Errorf("busybox: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	if err := copyExecutable(HostBinary, filepath.Join(rootfs, "bin/busybox")); err != nil {
		return err
	}
	applets, err := exec.Command(HostBinary, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, rel := range strings.Fields(string(applets)) {
		link := filepath.Join(rootfs, rel)
		if rel == "bin/busybox" || !strings.Contains(rel, "/") || strings.Contains(rel, "..") {
			continue
		}
		target, err := filepath.Rel(filepath.Dir(link), filepath.Join(rootfs, "bin/busybox"))
		if err != nil {
			return fmt.Errorf("busybox: %w", err)
		}
		if err := os.Symlink(target, link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("busybox: linking %s: %w", rel, err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("busybox: %w", err)
		}
	}
	specArgs := append([]string{"spec", "--bundle", dir, "--"}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command(runscBin, specArgs...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("busybox: runsc spec: %w: %s", err, stderr.String())
	}
	return nil
}

// isStatic tells whether path is an executable with no ELF interpreter
// (a static binary needs nothing else in the rootfs).
func isStatic(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 4 || string(data[:4]) != "\x7fELF" {
		return false
	}
	return !bytes.Contains(data, []byte("/lib64/ld-linux")) && !bytes.Contains(data, []byte("/lib/ld-linux"))
}

func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("busybox: copying %s: %w", from, err)
	}
	return dst.Close()
}
