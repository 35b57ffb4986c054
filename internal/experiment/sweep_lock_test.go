package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// TestSweepReusedRunLockFile checks that a sweep killed after renaming a
// run into place and before unlocking it (which leaves the run's lock
// file, its flock gone with the process) leaves no stray file once it is
// run again: the rerun reuses the run and removes the lock file.
func TestSweepReusedRunLockFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	axes, err := ParseSweep([]string{"lr=1e-3"})
	if err != nil {
		t.Fatal(err)
	}
	s := SweepSettings{Train: train, Val: val, Out: filepath.Join(root, "sweep"), Base: head.Settings{Hidden: 4, Epochs: 1}, Axes: axes}
	res, err := Sweep(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	lock := fsutil.LockPath(res.Runs[0].Dir)
	if err := os.WriteFile(lock, []byte("99999\ntlearn train --sweep lr=1e-3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = Sweep(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Runs[0].Reused {
		t.Errorf("the rerun trained %s again", res.Runs[0].Name)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after the rerun: %v, want it removed", lock, err)
	}
}
