//go:build unix

package fetch

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockDownload takes an exclusive lock so that two fetches of the same
// archive cannot interleave their writes to one part file. The lock file
// stays: removing it would let a third process lock a different inode.
func lockDownload(name string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fetch: lock %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("fetch: another tlearn is downloading into the same place (lock %s held)", name)
		}
		return nil, fmt.Errorf("fetch: lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
