//go:build unix

package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockOutputNamesHost: on a shared file system the holder may run on
// another machine, so the error names its host beside its pid and command.
func TestLockOutputNamesHost(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "shard")
	holder := startLockHolder(t, out)
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	_, err = LockOutput(out)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second writer: %v, want a *LockedError", err)
	}
	if le.Host != host || le.PID != holder.Process.Pid || !strings.Contains(le.Command, "TestLockHelperProcess") {
		t.Errorf("holder %d %q on %q, want %d TestLockHelperProcess on %q", le.PID, le.Command, le.Host, holder.Process.Pid, host)
	}
	if !strings.Contains(err.Error(), "on host "+host) {
		t.Errorf("error %q does not name host %s", err, host)
	}
	if w := Writer(out); w == nil || w.Host != host {
		t.Errorf("Writer: %+v, want the holder on host %s", w, host)
	}
}

// TestReadHolderOldFormat: a lock file written by a tlearn older than
// sharded caching (pid and command line, no host) still names its holder.
func TestReadHolderOldFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, text, cmd, host string
	}{
		{"old", "123\ntlearn extract --cache c\n", "tlearn extract --cache c", ""},
		{"new", "123\ntlearn extract --cache c\nnode7\n", "tlearn extract --cache c", "node7"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), ".c.lock")
			if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pid, cmd, host := readHolder(f)
			if pid != 123 || cmd != tc.cmd || host != tc.host {
				t.Errorf("readHolder = %d %q %q, want 123 %q %q", pid, cmd, host, tc.cmd, tc.host)
			}
		})
	}
}
