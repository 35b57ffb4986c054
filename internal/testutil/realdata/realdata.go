package realdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvShared names the environment variable that points at the shared
// folder, for checkouts that do not sit next to it (git worktrees).
const EnvShared = "TLEARN_SHARED"

// Dir returns the shared folder: $TLEARN_SHARED, else ../shared relative
// to the module's root folder (the first folder above the working
// directory that holds go.mod; a test runs in its package's folder).
func Dir() (string, error) {
	if d := os.Getenv(EnvShared); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("realdata: no go.mod above " + wd)
		}
	}
}

// Path returns the file or folder elem... of the shared folder, failing tb
// with a message that names the missing path when it is absent.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	p, err := path(elem...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func path(elem ...string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("realdata: %s is missing (%w); the realdata tests need the shared folder of real models and data: set $%s or put it at ../shared next to the checkout", p, err, EnvShared)
	}
	return p, nil
}
