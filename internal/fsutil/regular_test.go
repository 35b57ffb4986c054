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
