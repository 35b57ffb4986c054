//go:build !linux

package cache

import "os"

// preallocate sizes f; without Linux's fallocate the file is sparse and a
// full disk shows up as a write error of a later chunk.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }
