package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadRefusesFIFO(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "x.png")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct {
		desc string
		fn   func() error
	}{
		{"ReadFile", func() error { _, err := ReadFile(p); return err }},
		{"Open", func() error {
			f, err := Open(p)
			if err == nil {
				f.Close()
			}
			return err
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tc.fn() }()
			select {
			case err := <-done:
				var nr *NotRegularError
				if !errors.As(err, &nr) || !errors.Is(err, ErrNotRegular) {
					t.Fatalf("err = %v, want a *NotRegularError", err)
				}
				if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "FIFO") {
					t.Errorf("error %q should name %s and say it is a FIFO", err, p)
				}
			case <-time.After(10 * time.Second):
				// Unblock the reader so the test binary can finish.
				if w, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
					w.Close()
				}
				t.Fatal("reading a FIFO blocked instead of being refused")
			}
		})
	}
}

func TestReadAllowsRegularAndFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	if err := os.WriteFile(p, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p); err != nil || string(b) != "a" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if err := CheckReadable(dir); err != nil {
		t.Errorf("CheckReadable(folder) = %v, want nil", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
	}
}

func TestCheckCreatable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, path, want string
	}{
		{"new path", filepath.Join(dir, "run"), ""},
		{"missing parents", filepath.Join(dir, "a", "b", "run"), ""},
		{"existing path", file, ""},
		{"parent is a file", filepath.Join(file, "run"), "cannot create " + filepath.Join(file, "run") + ": " + file + " is a regular file, not a folder"},
		{"ancestor is a file", filepath.Join(file, "a", "run"), file + " is a regular file, not a folder"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := CheckCreatable(tc.path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUnwritable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrUnwritable and %q", err, tc.want)
			}
		})
	}
	assertOnly(t, dir, "file")
}

// TestCheckCreatableReadOnly needs permissions that hold: as root (CI) a
// read-only folder is writable all the same, and the test is skipped.
func TestCheckCreatableReadOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o755) })
	if f, err := os.CreateTemp(ro, "probe"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Skip("a read-only folder is writable here (running as root?): permissions cannot be tested")
	}
	err := CheckCreatable(filepath.Join(ro, "run"))
	if !errors.Is(err, ErrUnwritable) || !strings.Contains(err.Error(), "folder "+ro+" is not writable") || strings.Contains(err.Error(), "probe") {
		t.Fatalf("err = %v, want ErrUnwritable naming %s and no probe file", err, ro)
	}
}

// TestWriteErrorsNameFinalPath checks that a failed atomic write names the
// final path, not the temporary one.
func TestWriteErrorsNameFinalPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), ".tmp-") {
		t.Fatalf("err = %v, want one naming %s and no temporary", err, path)
	}
	assertOnly(t, dir, "out")
}
