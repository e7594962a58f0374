// Package dockercfg edits Docker's daemon.json to add or remove a runtime
// entry for runsc. It changes only runtimes.<name>: every other key, and
// every other runtime, is kept as it was. A file that is not a JSON object
// is refused, never overwritten, and the new file replaces the old one
// atomically (write beside it, fsync, rename), keeping its permissions.
package dockercfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"carapace.dev/carapace/runsc/atomicfile"
)

// DefaultPath is where dockerd reads its configuration.
const DefaultPath = "/etc/docker/daemon.json"

// Runtime is one entry of daemon.json's "runtimes" object.
type Runtime struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs,omitempty"`
}

// ErrNotInstalled is returned by Remove when there is no such runtime.
var ErrNotInstalled = errors.New("runtime not found")

// Add sets runtimes.<name> in the file at path to rt, creating the file
// (and its directory) if it does not exist. It returns whether the file
// changed; adding an identical entry again changes nothing.
func Add(path, name string, rt Runtime) (bool, error) {
	return edit(path, true, func(runtimes map[string]json.RawMessage) error {
		entry, err := json.Marshal(rt)
		if err != nil {
			return err
		}
		runtimes[name] = entry
		return nil
	})
}

// Remove deletes runtimes.<name> from the file at path; it returns
// ErrNotInstalled (wrapped) if the entry or the file is absent.
func Remove(path, name string) error {
	_, err := edit(path, false, func(runtimes map[string]json.RawMessage) error {
		if _, ok := runtimes[name]; !ok {
			return fmt.Errorf("%w: %q in %s", ErrNotInstalled, name, path)
		}
		delete(runtimes, name)
		return nil
	})
	return err
}

// edit loads path, lets change modify its runtimes, and writes the result
// if it differs from what was there.
func edit(path string, createIfMissing bool, change func(map[string]json.RawMessage) error) (bool, error) {
	old, mode, err := read(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !createIfMissing {
			return false, fmt.Errorf("%w: %s does not exist", ErrNotInstalled, path)
		}
		old, mode = nil, 0o644
	} else if err != nil {
		return false, err
	}
	top := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &top); err != nil {
			return false, fmt.Errorf("%s is not a valid JSON object, refusing to modify it: %w", path, err)
		}
		if top == nil {
			return false, fmt.Errorf("%s holds null, not a JSON object, refusing to modify it", path)
		}
	}
	runtimes := map[string]json.RawMessage{}
	if raw, ok := top["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil || runtimes == nil {
			return false, fmt.Errorf("%s: \"runtimes\" is not a JSON object, refusing to modify it", path)
		}
	}
	if err := change(runtimes); err != nil {
		return false, err
	}
	if len(runtimes) == 0 {
		delete(top, "runtimes")
	} else {
		raw, err := json.Marshal(runtimes)
		if err != nil {
			return false, err
		}
		top["runtimes"] = raw
	}
	var out bytes.Buffer
	enc, err := json.Marshal(top)
	if err != nil {
		return false, err
	}
	if err := json.Indent(&out, enc, "", "    "); err != nil {
		return false, err
	}
	out.WriteByte('\n')
	if bytes.Equal(out.Bytes(), old) {
		return false, nil
	}
	if err := atomicfile.Write(path, out.Bytes(), mode); err != nil {
		return false, err
	}
	return true, nil
}

func read(path string) ([]byte, fs.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	return data, st.Mode().Perm(), nil
}
