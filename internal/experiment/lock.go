package experiment

import (
	"fmt"
	"os"
	"path/filepath"

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
