package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchCache writes a complete cache of n rows of dim features (and maps
// of shape maps, nil for none) in chunks of 32 rows, the chunk the
// extractor picks for 10,000 images in batches of 8.
func benchCache(b *testing.B, n, dim int, maps []int) string {
	b.Helper()
	dir := b.TempDir()
	m := testManifest(n, dim, 32, maps)
	w, err := Create(dir, m)
	if err != nil {
		b.Fatal(err)
	}
	mapLen := 0
	if maps != nil {
		mapLen = maps[0] * maps[1] * maps[2]
	}
	r := rand.New(rand.NewPCG(1, 2))
	f := make([]float32, 32*dim)
	mp := make([]float32, 32*mapLen)
	l := make([]int32, 32)
	for s := 0; s < n; s += 32 {
		k := min(32, n-s)
		for i := range f {
			f[i] = float32(r.NormFloat64())
		}
		for i := range mp {
			mp[i] = float32(r.Float64())
		}
		for i := range k {
			l[i] = int32(m.Items[s+i].Label)
		}
		var mk []float32
		if maps != nil {
			mk = mp[:k*mapLen]
		}
		if err := w.Write(s, f[:k*dim], l[:k], mk); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}

// touch reads one value of every page of the cache's arrays, as a reader
// that goes through every row does: without the checksums, this is where
// the pages are read.
func touch(c *Cache) (sum float32) {
	for i := 0; i < len(c.Features); i += 1024 {
		sum += c.Features[i]
	}
	for i := 0; i < len(c.Maps); i += 2048 {
		sum += float32(c.Maps[i])
	}
	return sum
}

// BenchmarkOpen opens a cache and touches every page of its arrays, with
// and without checking every chunk's CRC-32C: the cost of the checksums to
// a reader. The files are in the page cache (written just before), so the
// figure is the checksums' CPU time, not the disk's.
func BenchmarkOpen(b *testing.B) {
	for _, tc := range []struct {
		name   string
		n, dim int
		maps   []int
	}{
		{"features/N=10000/D=512", 10000, 512, nil},
		{"features/N=10000/D=1280", 10000, 1280, nil},
		{"maps/N=1000/512x14x14", 1000, 512, []int{512, 14, 14}},
	} {
		dir := benchCache(b, tc.n, tc.dim, tc.maps)
		for _, check := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/crc=%v", tc.name, check), func(b *testing.B) {
				var bytes int64
				for b.Loop() {
					c, err := open(dir, true, check)
					if err != nil {
						b.Fatal(err)
					}
					touch(c)
					bytes = int64(len(c.Features))*4 + int64(len(c.Maps))*2
					c.Close()
				}
				b.SetBytes(bytes)
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/open")
			})
		}
	}
}
