//go:build unix

package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriter: Writer names the live writer of an output (another process
// holding its lock), and nothing for an output with no lock file, with
// the lock file of a killed writer, or after its writer unlocked; the
// test does not get in the way of a writer that locks next.
func TestWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, other := filepath.Join(dir, "cache"), filepath.Join(dir, "other")
	if le := Writer(out, other); le != nil {
		t.Fatalf("no lock file: %v, want nil", le)
	}
	holder := startLockHolder(t, out)
	le := Writer(other, filepath.Join(out, "train"), out)
	if le == nil || le.PID != holder.Process.Pid || le.Path != out {
		t.Fatalf("Writer while pid %d holds %s: %v", holder.Process.Pid, out, le)
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	if _, err := os.Stat(LockPath(out)); err != nil {
		t.Fatalf("the killed writer's lock file: %v, want it left", err)
	}
	if le := Writer(out); le != nil {
		t.Errorf("after the writer was killed: %v, want nil", le)
	}
	l, err := LockOutput(out)
	if err != nil {
		t.Fatalf("a writer after Writer: %v", err)
	}
	l.Unlock()
	if le := Writer(out); le != nil {
		t.Errorf("after Unlock: %v, want nil", le)
	}
}
