package cache

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRC32CCombine: the combined sum of two pieces is the sum of their
// concatenation, for empty, short, odd and long pieces.
func TestCRC32CCombine(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 3<<20+17)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for _, tc := range [][2]int{{0, 0}, {0, 5}, {5, 0}, {1, 1}, {7, 13}, {1000, 1 << 20}, {1 << 20, 2<<20 + 17}, {3 << 20, 17}} {
		a, b := buf[:tc[0]], buf[tc[0]:tc[0]+tc[1]]
		want := crc32.Checksum(buf[:tc[0]+tc[1]], castagnoli)
		got := crc32cCombine(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), int64(len(b)))
		if got != want {
			t.Errorf("combine of %d and %d bytes: %08x, want %08x", len(a), len(b), got, want)
		}
	}
}
