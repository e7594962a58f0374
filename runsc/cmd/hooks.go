package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	"carapace.dev/carapace/runsc/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs OCI hooks on the host, as runc runs them: each gets the
// container's state JSON on stdin, its own args and env, and fails the
// operation if it exits non-zero or outlives its timeout.
func runHooks(kind string, hooks []specs.Hook, st *container.State) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := json.Marshal(st.OCIState())
	if err != nil {
		return err
	}
	for _, h := range hooks {
		ctx := context.Background()
		cancel := func() {}
		if h.Timeout != nil && *h.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		}
		cmd := exec.CommandContext(ctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(state)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("%s hook %s: %w: %s", kind, h.Path, err, bytes.TrimSpace(out))
		}
	}
	return nil
}
