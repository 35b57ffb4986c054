package cache

import "syscall"

// madvise tells the kernel that a mapped shard is read once, in order, so
// that it reads ahead in large steps.
func madvise(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_SEQUENTIAL)
	}
}
