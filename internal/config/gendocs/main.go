// Command gendocs writes docs/configuration.md from the declarations of
// internal/config: go generate ./internal/config.
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/orderflow/orderflow/internal/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs <docs/configuration.md>")
		os.Exit(2)
	}
	var b bytes.Buffer
	if err := config.Markdown(&b); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	// #nosec G306 G703 -- go generate's own argument, a document everyone reads.
	if err := os.WriteFile(os.Args[1], b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
