package ortlibtest

import (
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
