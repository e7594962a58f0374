// Command gensyscalls writes pkg/abi/linux/sysno_amd64.go from the host's
// kernel header <asm/unistd_64.h>: the syscall number constants, the
// number-to-name table and the highest number.
//
//	go run ./tools/gensyscalls -out pkg/abi/linux/sysno_amd64.go
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"carapace.dev/carapace/tools/gensyscalls/gen"
)

func main() {
	header := flag.String("header", gen.DefaultHeader, "path of the kernel's asm/unistd_64.h")
	out := flag.String("out", "sysno_amd64.go", "file to write; - for stdout")
	flag.Parse()
	if err := run(*header, *out); err != nil {
		fmt.Fprintf(os.Stderr, "gensyscalls: %v\n", err)
		os.Exit(1)
	}
}

func run(header, out string) error {
	in, err := os.ReadFile(header)
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	src, err := gen.Generate(bytes.NewReader(in))
	if err != nil {
		return fmt.Errorf("%s: %w", header, err)
	}
	if out == "-" {
		_, err = os.Stdout.Write(src)
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
