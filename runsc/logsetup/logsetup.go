// Package logsetup points pkg/log where the global flags say: --log (or
// stderr) in --log-format, at debug level with --debug, and, with
// --debug-log, a per-process debug file named after the time, the
// subcommand and the pid, so the CLI, boot and gofer of one sandbox each
// leave their own file.
package logsetup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
)

// DebugLogPath expands a --debug-log value for one process. A value ending
// in "/" (or naming an existing directory) is a directory that receives
// runsc.log.%TIMESTAMP%.%COMMAND%.
func DebugLogPath(pattern, command string, now time.Time, pid int) string {
	if strings.HasSuffix(pattern, "/") {
		pattern += "runsc.log.%TIMESTAMP%.%COMMAND%"
	} else if st, err := os.Stat(pattern); err == nil && st.IsDir() {
		pattern = filepath.Join(pattern, "runsc.log.%TIMESTAMP%.%COMMAND%")
	}
	return strings.NewReplacer(
		"%TIMESTAMP%", now.Format("20060102-150405.000000"),
		"%COMMAND%", command,
		"%PID%", strconv.Itoa(pid),
	).Replace(pattern)
}

// sandboxCommands are the processes that share the container's stderr:
// their log must not land in the application's output unless asked for.
var sandboxCommands = map[string]bool{"boot": true, "gofer": true}

// Setup configures logging for one runsc process running subcommand
// command. The returned function closes the files it opened.
func Setup(conf *config.Config, command string) (func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	var w io.Writer = os.Stderr
	if sandboxCommands[command] && !conf.Debug {
		// Failures still reach stderr through the command's own message.
		w = io.Discard
	}
	if conf.LogFilename != "" {
		f, err := os.OpenFile(conf.LogFilename, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening --log file: %w", err)
		}
		closers = append(closers, f)
		w = f
	}
	format, err := log.ParseFormat(conf.LogFormat)
	if err != nil {
		closeAll()
		return nil, err
	}
	if conf.DebugLog != "" {
		p := DebugLogPath(conf.DebugLog, command, time.Now(), os.Getpid())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			closeAll()
			return nil, fmt.Errorf("creating --debug-log directory: %w", err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("opening --debug-log file: %w", err)
		}
		closers = append(closers, f)
		// One stream in one format: the debug log's, since --debug-log is
		// what a person reading along asked for.
		if format, err = log.ParseFormat(conf.DebugLogFormat); err != nil {
			closeAll()
			return nil, err
		}
		w = io.MultiWriter(w, f)
		log.SetLevel(log.Debug)
	}
	if conf.Debug {
		log.SetLevel(log.Debug)
	}
	log.SetTarget(w, format)
	return closeAll, nil
}
