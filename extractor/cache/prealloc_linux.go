package cache

import (
	"errors"
	"os"
	"syscall"
)

// preallocate reserves size bytes for f, so that a full disk is reported
// when the cache is created rather than hours into an extraction. File
// systems without fallocate get a sparse file instead.
func preallocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil || !(errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS)) {
		return err
	}
	return f.Truncate(size)
}
