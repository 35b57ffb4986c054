package ortlibtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/internal/ortlib"
)

// Init initializes ORT for a test or benchmark, failing it with the install
// hint when the library is missing (`make test` runs `make setup`).
func Init(tb testing.TB) {
	tb.Helper()
	if _, err := ortlib.Init(""); err != nil {
		tb.Fatalf("%v", err)
	}
}

// GPULib is the GPU-capable library of `make setup-gpu`
// (.ort-gpu/lib/libonnxruntime.so.1 in the checkout above the working
// directory). It skips the test, saying so, when that is absent: `make
// test` installs it first.
func GPULib(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, ".ort-gpu", "lib", ortlib.LibName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	tb.Skipf("no .ort-gpu/lib/%s above %s: run `make setup-gpu` (make test does) for the GPU-capable library's tests", ortlib.LibName, wd)
	return ""
}
