//go:build unix

package fsutil

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lockHelperEnv makes the test binary a helper process that locks the
// output named by the variable, says "locked" and waits to be killed.
const lockHelperEnv = "TLEARN_FSUTIL_LOCK_HELPER"

func TestLockHelperProcess(t *testing.T) {
	out := os.Getenv(lockHelperEnv)
	if out == "" {
		t.Skip("only a helper of TestLockOutputOtherProcess")
	}
	if _, err := LockOutput(out); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	// Not select{}: with no timer or other goroutine the runtime calls that
	// a deadlock and exits, dropping the lock before the test looks at it.
	for {
		time.Sleep(time.Hour)
	}
}

// startLockHolder starts a process that holds the lock of out until it is
// killed with SIGKILL (by the test's cleanup, if not before).
func startLockHolder(t *testing.T, out string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	return cmd
}

func TestLockOutputOtherProcess(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "run")
	holder := startLockHolder(t, out)

	_, err := LockOutput(out)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want a *LockedError", err)
	}
	if le.PID != holder.Process.Pid || !strings.Contains(le.Command, "TestLockHelperProcess") || le.Path != out {
		t.Errorf("holder pid %d %q of %s, want pid %d running TestLockHelperProcess of %s", le.PID, le.Command, le.Path, holder.Process.Pid, out)
	}
	for _, want := range []string{out, "being written", "pid " + strconv.Itoa(holder.Process.Pid), "TestLockHelperProcess"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// A holder killed with SIGKILL cannot unlock: the kernel drops its lock.
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	l, err := LockOutput(out)
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Unlock()
	if _, err := os.Stat(LockPath(out)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after Unlock: %v, want it removed", err)
	}
}

func TestLockOutputSameProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "cache")
	l, err := LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockOutput(out); !errors.Is(err, ErrLocked) {
		t.Errorf("second lock in one process: %v, want ErrLocked", err)
	}
	other, err := LockOutput(filepath.Join(dir, "cache2"))
	if err != nil {
		t.Errorf("another output: %v", err)
	}
	other.Unlock()
	l.Unlock()
	l.Unlock() // repeatable
	l, err = LockOutput(out)
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	l.Unlock()
	assertOnly(t, dir)
}

func TestRemoveStale(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	stale := []string{".run.partial-123", ".run.partial-123.old", ".run.tmp-9", ".ck.tmp-4"}
	keep := []string{"run", ".run2.partial-1", ".other.tmp-1", ".ru.tmp-1", "x.partial-1"}
	for _, name := range append(append([]string{}, stale...), keep...) {
		if strings.Contains(name, "partial") || name == "run" {
			if err := os.MkdirAll(filepath.Join(dir, name, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (*Lock)(nil).RemoveStale(); err == nil {
		t.Error("RemoveStale without the lock: no error")
	}
	l, err := LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	removed, err := l.RemoveStale(filepath.Join(dir, "ck"))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(stale) {
		t.Errorf("removed %q, want the %d of %q", removed, len(stale), stale)
	}
	assertOnly(t, dir, append(keep, ".run.lock")...)
}

func TestLockOutputMissingFolder(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "missing")
	out := filepath.Join(dir, "preds.csv")
	_, err := LockOutput(out)
	if err == nil || !strings.Contains(err.Error(), "lock "+out+": folder "+dir) || strings.Contains(err.Error(), ".lock") {
		t.Errorf("lock in a missing folder: %v, want an error naming %s and its folder, not the lock file", err, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing folder was made: %v", err)
	}
}
