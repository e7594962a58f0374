package specutils

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultSpecValidates(t *testing.T) {
	spec := Default(nil, "")
	if err := Validate(spec); err != nil {
		t.Fatalf("default spec invalid: %v", err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data)
	if err != nil {
		t.Fatalf("decoding the default spec: %v", err)
	}
	if back.Process.Args[0] != "sh" || back.Root.Path != "rootfs" || back.Version != specs.Version {
		t.Fatalf("unexpected default spec: %+v", back)
	}
}

func TestLoadFromBundle(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("Load of a bundle without config.json: %v", err)
	}
	data, _ := json.Marshal(Default([]string{"/bin/echo", "hi"}, "/tmp"))
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(spec.Process.Args, " ") != "/bin/echo hi" || spec.Process.Cwd != "/tmp" {
		t.Fatalf("process = %+v", spec.Process)
	}
}

func TestRejectsBadSpecs(t *testing.T) {
	cases := map[string]func(s *specs.Spec){
		"ociVersion is required":      func(s *specs.Spec) { s.Version = "" },
		"SemVer":                      func(s *specs.Spec) { s.Version = "1.0" },
		"only major version 1":        func(s *specs.Spec) { s.Version = "2.0.0" },
		"root.path":                   func(s *specs.Spec) { s.Root = nil },
		"process.args":                func(s *specs.Spec) { s.Process.Args = nil },
		"process.cwd":                 func(s *specs.Spec) { s.Process.Cwd = "relative" },
		"NAME=value":                  func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "JUNK") },
		"unknown type \"RLIMIT_FOO\"": func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_FOO" },
		"exceeds hard limit": func(s *specs.Spec) {
			s.Process.Rlimits[0].Soft = s.Process.Rlimits[0].Hard + 1
		},
		"unknown capability": func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_FLY"} },
		"mounts[0].destination": func(s *specs.Spec) {
			s.Mounts[0].Destination = ""
		},
		"type is required": func(s *specs.Spec) { s.Mounts[0].Type = "" },
		"unknown type \"space\"": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "space"})
		},
		"given twice": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		},
		"no uts namespace": func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] },
		"given together": func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		},
	}
	for want, mutate := range cases {
		s := Default(nil, "")
		mutate(s)
		err := Validate(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mutation %q: got error %v", want, err)
		}
	}
	// A bind mount needs no type.
	s := Default(nil, "")
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "/srv", Options: []string{"rbind", "ro"}})
	if err := Validate(s); err != nil {
		t.Errorf("typeless bind mount rejected: %v", err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"ociVersion":"1.0.0","root":{"path":"r"}} {}`, `{"ociVersion": 5}`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) accepted", in)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(Default(nil, ""))
	f.Add(good)
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"cwd":"/","args":["x"],"rlimits":[{"type":"RLIMIT_CPU"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode(data) // must not panic
	})
}

func TestGoferMounts(t *testing.T) {
	s := Default(nil, "")
	s.Root = &specs.Root{Path: "rootfs"}
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Source: "/srv/data", Type: "bind", Options: []string{"ro"}},
		specs.Mount{Destination: "/cfg", Source: "conf", Options: []string{"rbind"}})
	got := GoferMounts(s, "/bundles/b1", false)
	want := []GoferMount{
		{Destination: "/", HostPath: "/bundles/b1/rootfs"},
		{Destination: "/data", HostPath: "/srv/data", ReadOnly: true},
		{Destination: "/cfg", HostPath: "/bundles/b1/conf"},
	}
	if len(got) != len(want) {
		t.Fatalf("GoferMounts = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mount %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !GoferMounts(s, "/b", true)[0].ReadOnly {
		t.Error("with overlay the root must be served read-only")
	}
}
