package logsetup

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
)

func TestDebugLogPath(t *testing.T) {
	now := time.Date(2026, 11, 23, 19, 5, 6, 7000, time.UTC)
	if got := DebugLogPath("/tmp/logs/", "boot", now, 42); got != "/tmp/logs/runsc.log.20261123-190506.000007.boot" {
		t.Errorf("directory form = %q", got)
	}
	if got := DebugLogPath("/x/%COMMAND%-%PID%.log", "gofer", now, 42); got != "/x/gofer-42.log" {
		t.Errorf("pattern form = %q", got)
	}
	dir := t.TempDir()
	if got := DebugLogPath(dir, "do", now, 1); !strings.HasPrefix(got, dir+"/runsc.log.") {
		t.Errorf("existing directory without slash = %q", got)
	}
}

func TestSetupWritesEachProcessFile(t *testing.T) {
	dir := t.TempDir()
	conf := config.Default()
	conf.DebugLog = dir + "/"
	conf.LogFilename = filepath.Join(dir, "main.log")
	done, err := Setup(conf, "spec")
	if err != nil {
		t.Fatal(err)
	}
	log.Debugf("hello from the test")
	done()
	log.SetTarget(os.Stderr, log.Text)
	log.SetLevel(log.Info)
	matches, _ := filepath.Glob(filepath.Join(dir, "runsc.log.*.spec"))
	if len(matches) != 1 {
		t.Fatalf("debug log files = %v", matches)
	}
	for _, p := range []string{matches[0], conf.LogFilename} {
		data, _ := os.ReadFile(p)
		if !strings.Contains(string(data), "hello from the test") {
			t.Errorf("%s = %q", p, data)
		}
	}
}

func TestSandboxProcessesKeepStderrClean(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done, err := Setup(config.Default(), "boot")
	os.Stderr = saved
	if err != nil {
		t.Fatal(err)
	}
	log.Warningf("unimplemented syscall")
	done()
	w.Close()
	data, _ := io.ReadAll(r)
	log.SetTarget(os.Stderr, log.Text)
	if len(data) != 0 {
		t.Fatalf("boot logged to the container's stderr: %q", data)
	}
}
