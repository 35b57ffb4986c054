//go:build unix

package fsutil

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes an exclusive flock on f without waiting; false means
// another open file holds it.
func tryLock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		}
		return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
}

// heldElsewhere reports whether another open file holds the exclusive
// flock of f, by trying a shared one without waiting (and dropping it).
func heldElsewhere(f *os.File) bool {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		switch {
		case err == nil:
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			return false
		case errors.Is(err, unix.EINTR):
			continue
		}
		return errors.Is(err, unix.EWOULDBLOCK)
	}
}
