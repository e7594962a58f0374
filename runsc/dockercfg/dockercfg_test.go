package dockercfg

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return m
}

func TestRoundTripKeepsOtherKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.json")
	orig := `{"log-driver":"json-file","insecure-registries":["a:5000"],"runtimes":{"other":{"path":"/usr/bin/other"}},"nested":{"x":[1,2,{"y":null}]}}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := Add(path, "runsc", Runtime{Path: "/usr/local/bin/runsc", RuntimeArgs: []string{"--platform=ptrace"}})
	if err != nil || !changed {
		t.Fatalf("Add = %v, %v", changed, err)
	}
	got := readJSON(t, path)
	rt := got["runtimes"].(map[string]any)
	if rt["runsc"].(map[string]any)["path"] != "/usr/local/bin/runsc" || rt["other"] == nil {
		t.Fatalf("runtimes = %v", rt)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", st.Mode().Perm())
	}
	after := readJSON(t, path)
	changed, err = Add(path, "runsc", Runtime{Path: "/usr/local/bin/runsc", RuntimeArgs: []string{"--platform=ptrace"}})
	if err != nil || changed {
		t.Fatalf("second Add = %v, %v; want no change", changed, err)
	}
	if !reflect.DeepEqual(after, readJSON(t, path)) {
		t.Fatal("idempotent Add modified the file")
	}
	if err := Remove(path, "runsc"); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(orig), &want)
	if got := readJSON(t, path); !reflect.DeepEqual(got, want) {
		t.Fatalf("install+uninstall changed the file:\n got %v\nwant %v", got, want)
	}
	if err := Remove(path, "runsc"); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("second Remove = %v, want ErrNotInstalled", err)
	}
}

func TestCreatesMissingFileAndDropsEmptyRuntimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "docker", "daemon.json")
	if err := Remove(path, "runsc"); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Remove from a missing file = %v", err)
	}
	if _, err := Add(path, "runsc", Runtime{Path: "/bin/runsc"}); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, "runsc"); err != nil {
		t.Fatal(err)
	}
	if got := readJSON(t, path); len(got) != 0 {
		t.Fatalf("file after removing the only runtime = %v, want {}", got)
	}
}

func TestRefusesInvalidFiles(t *testing.T) {
	for _, bad := range []string{"{", "[1,2]", "null", `"str"`, `{"runtimes":[1]}`, `{"runtimes":"x"}`} {
		path := filepath.Join(t.TempDir(), "daemon.json")
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Add(path, "runsc", Runtime{Path: "/bin/runsc"})
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%q: Add = %v, want a refusal", bad, err)
		}
		if data, _ := os.ReadFile(path); string(data) != bad {
			t.Errorf("%q: the invalid file was modified to %q", bad, data)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("%q: temporary files left behind: %v", bad, entries)
		}
	}
}
