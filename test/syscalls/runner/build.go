// Package runner builds the C++ syscall conformance tests in
// test/syscalls/linux, runs every test case natively and under runsc on each
// requested platform, judges the results against EXPECTED_FAILURES and
// renders the test case × platform table.
//
// It is used by the go test in test/syscalls (what `make test` runs) and by
// the command in test/syscalls/runner/cmd/syscalls.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// CXXFlags are the compile flags for every test object. They are part of
// the build hash, so changing them rebuilds everything.
var CXXFlags = []string{"-O1", "-std=c++17", "-pthread", "-Wall",
	"-Wno-stringop-overflow", "-Wno-stringop-overread", "-Wno-unused-result"}

// LinkFlags link a self-contained static binary that runs from any rootfs.
var LinkFlags = []string{"-static", "-pthread"}

// LinkLibs are the gtest/gmock archives (Debian libgtest-dev, libgmock-dev).
var LinkLibs = []string{"-lgmock", "-lgtest_main", "-lgtest"}

// Binary is one built test binary, named after its source file.
type Binary struct {
	Name string // e.g. "read_write"
	Path string // absolute path of the executable
}

// FindRepoRoot walks up from dir to the directory holding go.mod.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// CheckToolchain reports why the suite cannot be built on this host, or nil.
func CheckToolchain() error {
	cxx := compiler()
	if _, err := exec.LookPath(cxx); err != nil {
		return fmt.Errorf("C++ compiler %q not found (apt-get install g++): %w", cxx, err)
	}
	for _, lib := range []string{"libgtest.a", "libgmock.a", "libgtest_main.a"} {
		out, err := exec.Command(cxx, "-print-file-name="+lib).Output()
		p := strings.TrimSpace(string(out))
		if err != nil || !filepath.IsAbs(p) {
			return fmt.Errorf("%s not found (apt-get install libgtest-dev libgmock-dev)", lib)
		}
	}
	return nil
}

func compiler() string {
	if c := os.Getenv("CXX"); c != "" {
		return c
	}
	return "g++"
}

var (
	compilerVersionOnce sync.Once
	compilerVersionText string
)

// compilerVersion identifies the toolchain in build hashes, so upgrading
// g++ rebuilds everything.
func compilerVersion() string {
	compilerVersionOnce.Do(func() {
		out, _ := exec.Command(compiler(), "--version").Output()
		compilerVersionText = string(out)
	})
	return compilerVersionText
}

// Sources lists the test sources (one binary per .cc file), sorted.
func Sources(srcDir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(srcDir, "*.cc"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	return m, nil
}

// buildHash covers everything that determines a binary: its source, every
// shared header, the compiler and the flags.
func buildHash(src string, headers []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%q\x00%q\x00%q\x00", compiler(), compilerVersion(), CXXFlags, LinkFlags, LinkLibs)
	for _, f := range append([]string{src}, headers...) {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Build compiles and links every source in srcDir whose build hash changed
// into buildDir, running up to jobs compilers at once. Unchanged binaries
// are reused. Only binaries whose names match keep (nil keeps all) are
// built. Compiler diagnostics go to log.
func Build(ctx context.Context, srcDir, buildDir string, jobs int, keep func(string) bool, log io.Writer) ([]Binary, error) {
	srcs, err := Sources(srcDir)
	if err != nil {
		return nil, err
	}
	headers, err := filepath.Glob(filepath.Join(srcDir, "*.h"))
	if err != nil {
		return nil, err
	}
	sort.Strings(headers)
	if err := os.MkdirAll(buildDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating build dir: %w", err)
	}
	if jobs < 1 {
		jobs = 1
	}
	// Serialise concurrent builds (go test and the command at once).
	lock, err := os.OpenFile(filepath.Join(buildDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening build lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking build dir: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	// Precompiling the shared header (gtest's headers dominate compile
	// time) roughly halves the cost of every source.
	pch, err := buildPCH(ctx, headers, buildDir)
	if err != nil {
		fmt.Fprintf(log, "precompiled header unavailable, compiling without it: %v\n", err)
		pch = ""
	}
	var (
		mu       sync.Mutex
		bins     []Binary
		failures []string
		wg       sync.WaitGroup
		sem      = make(chan struct{}, jobs)
	)
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".cc")
		if keep != nil && !keep(name) {
			continue
		}
		wg.Add(1)
		go func(src, name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			bin, err := buildOne(ctx, src, name, headers, buildDir, pch)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, name)
				fmt.Fprintf(log, "build %s: %v\n", name, err)
				return
			}
			bins = append(bins, bin)
		}(src, name)
	}
	wg.Wait()
	sort.Slice(bins, func(i, j int) bool { return bins[i].Name < bins[j].Name })
	if len(failures) > 0 {
		sort.Strings(failures)
		return bins, fmt.Errorf("failed to build %s", strings.Join(failures, ", "))
	}
	return bins, nil
}

// pchHeader is the shared header that is precompiled.
const pchHeader = "test_util.h"

// buildPCH precompiles srcDir's test_util.h into buildDir/pch and returns
// the path to pass to -include, or "" if there is no such header.
func buildPCH(ctx context.Context, headers []string, buildDir string) (string, error) {
	var src string
	for _, h := range headers {
		if filepath.Base(h) == pchHeader {
			src = h
		}
	}
	if src == "" {
		return "", nil
	}
	dir, err := filepath.Abs(filepath.Join(buildDir, "pch"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	hdr := filepath.Join(dir, pchHeader)
	gch := hdr + ".gch"
	hash, err := buildHash(src, nil)
	if err != nil {
		return "", err
	}
	stamp := gch + ".hash"
	if old, err := os.ReadFile(stamp); err == nil && string(old) == hash {
		if _, err := os.Stat(gch); err == nil {
			return hdr, nil
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(hdr, b, 0o644); err != nil {
		return "", err
	}
	args := append(append([]string{}, CXXFlags...), "-x", "c++-header", "-o", gch+".tmp", hdr)
	if msg, err := exec.CommandContext(ctx, compiler(), args...).CombinedOutput(); err != nil {
		os.Remove(gch + ".tmp")
		return "", fmt.Errorf("%s %s: %w\n%s", compiler(), strings.Join(args, " "), err, msg)
	}
	if err := os.Rename(gch+".tmp", gch); err != nil {
		return "", err
	}
	return hdr, os.WriteFile(stamp, []byte(hash), 0o644)
}

func buildOne(ctx context.Context, src, name string, headers []string, buildDir, pch string) (Binary, error) {
	out, err := filepath.Abs(filepath.Join(buildDir, name))
	if err != nil {
		return Binary{}, err
	}
	bin := Binary{Name: name, Path: out}
	hash, err := buildHash(src, headers)
	if err != nil {
		return bin, fmt.Errorf("hashing sources: %w", err)
	}
	stamp := out + ".hash"
	if old, err := os.ReadFile(stamp); err == nil && string(old) == hash {
		if _, err := os.Stat(out); err == nil {
			return bin, nil
		}
	}
	// Compile and link in one step into a temporary name, then rename, so an
	// interrupted build never leaves a binary that matches a stale stamp.
	tmp := out + ".tmp"
	args := append([]string{}, CXXFlags...)
	args = append(args, LinkFlags...)
	if pch != "" {
		args = append(args, "-include", pch)
	}
	args = append(args, "-I", filepath.Dir(src), "-o", tmp, src)
	args = append(args, LinkLibs...)
	cmd := exec.CommandContext(ctx, compiler(), args...)
	msg, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return bin, fmt.Errorf("%s %s: %w\n%s", compiler(), strings.Join(args, " "), err, filterLinkerNoise(msg))
	}
	if err := os.Rename(tmp, out); err != nil {
		return bin, err
	}
	if err := os.WriteFile(stamp, []byte(hash), 0o644); err != nil {
		return bin, err
	}
	return bin, nil
}

// filterLinkerNoise drops glibc's static-linking warnings about NSS
// functions that gtest references but the tests never call.
func filterLinkerNoise(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "in statically linked applications requires at runtime") ||
			strings.Contains(l, "in function `testing::internal::StreamingListener") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}
