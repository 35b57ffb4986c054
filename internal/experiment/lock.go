package experiment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// lockOutput takes the one-writer lock of out (a *fsutil.LockedError
// naming the holder when another process writes it) and then removes what
// a killed earlier writer of out, or of the paths also that only out's
// writer writes, left behind. The caller defers Unlock.
func lockOutput(out string, p progress.Reporter, also ...string) (*fsutil.Lock, error) {
	// Every command here makes its output's missing parents; the lock
	// file goes in the nearest.
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	l, err := fsutil.LockOutput(out)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	removed, err := l.RemoveStale(also...)
	for _, r := range removed {
		progress.OrNop(p).Log("removed " + r + ", left by an interrupted earlier run")
	}
	if err != nil {
		l.Unlock()
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return l, nil
}

// LockOutput is lockOutput for an output that the CLI writes itself
// (models synth's file): the one-writer lock of out, taken after making
// out's missing parents, with what a killed earlier writer of out left
// removed and logged on p. The caller defers Unlock.
func LockOutput(out string, p progress.Reporter) (*fsutil.Lock, error) {
	return lockOutput(out, p)
}

// tidyFinished returns err, the refusal of a run directory out that
// exists, after clearing what its writer left beside it when it was killed
// after writing out and before exiting: its lock file, temporaries and the
// files or folders also (a fine-tune's checkpoint, an --auto search:
// useless once the run is written).
// Only a finished run (rundir.IsRun) is tidied, and only when no live
// writer holds its lock; any other err is returned as it is.
func tidyFinished(err error, out string, also ...string) error {
	if !errors.Is(err, rundir.ErrExists) || !rundir.IsRun(out) {
		return err
	}
	l, lerr := fsutil.LockOutput(out)
	if lerr != nil {
		return err
	}
	defer l.Unlock()
	// Best effort: the refusal is the answer either way.
	_, _ = l.RemoveStale()
	for _, a := range also {
		_ = os.RemoveAll(a)
	}
	return err
}
