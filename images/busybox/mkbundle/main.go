// Command mkbundle writes the busybox test bundle into a directory:
//
//	go run ./images/busybox/mkbundle [-runsc bin/runsc] DIR [-- COMMAND [ARG...]]
//
// DIR gets rootfs/ (Debian's static busybox and its applet links) and the
// config.json `runsc spec` writes (with a terminal, as runc's default).
package main

import (
	"flag"
	"fmt"
	"os"

	"carapace.dev/carapace/images/busybox"
)

func main() {
	runsc := flag.String("runsc", "bin/runsc", "the runsc binary whose `spec` writes config.json")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle [-runsc BIN] DIR [-- COMMAND [ARG...]]")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := flag.Args()[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if err := busybox.Build(dir, *runsc, args...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
