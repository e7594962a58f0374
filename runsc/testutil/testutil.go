// Package testutil helps tests that drive the real runsc binary.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildRunsc builds runsc as the Makefile does (static, no cgo) into dir
// and returns its path.
func BuildRunsc(dir string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(self), "..") // the runsc main package
	bin := filepath.Join(dir, "runsc")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = pkg
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building runsc: %v\n%s", err, out)
	}
	return bin, nil
}
