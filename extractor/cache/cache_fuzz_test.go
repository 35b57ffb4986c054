package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// cacheFiles are the files of a cache that FuzzOpen replaces, by the
// first byte of its input.
var cacheFiles = []string{ManifestFile, FeaturesFile, LabelsFile, MapsFile}

// FuzzOpen writes a small cache with the package's writer, replaces one
// of its files with outside bytes and opens it: an accepted cache has the
// rows its manifest promises and verifies.
func FuzzOpen(f *testing.F) {
	tmpl := f.TempDir()
	m := testManifest(4, 2, 2, []int{1, 2, 2})
	w, err := Create(tmpl, m)
	if err != nil {
		f.Fatal(err)
	}
	for s := 0; s < m.N; s += m.ChunkSize {
		fv, l, mp := rowValues(w.Manifest(), s, m.ChunkSize)
		if err := w.Write(s, fv, l, mp); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	if c, err := Open(tmpl); err != nil {
		f.Fatal(err)
	} else if err := c.Close(); err != nil {
		f.Fatal(err)
	}
	files := map[string][]byte{}
	for i, name := range cacheFiles {
		b, err := os.ReadFile(filepath.Join(tmpl, name))
		if err != nil {
			f.Fatal(err)
		}
		files[name] = b
		f.Add(uint8(i), b)
		f.Add(uint8(i), b[:len(b)-1])
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		dir := t.TempDir()
		replaced := cacheFiles[int(which)%len(cacheFiles)]
		for name, valid := range files {
			if name == replaced {
				valid = b
			}
			if err := os.WriteFile(filepath.Join(dir, name), valid, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Open(dir)
		if err != nil {
			return
		}
		defer c.Close()
		n, dim := c.Manifest.N, c.Manifest.FeatureDim*c.Views()
		if c.Len() != n || len(c.Features) != n*dim || len(c.Labels) != n {
			t.Fatalf("%d rows: %d features of dim %d, %d labels", n, len(c.Features), dim, len(c.Labels))
		}
		if c.Maps != nil && len(c.Maps) != n*c.Views()*c.MapLen() {
			t.Fatalf("%d rows: %d map values of %d each", n, len(c.Maps), c.MapLen())
		}
		for i := range n {
			if len(c.Feature(i)) != dim {
				t.Fatalf("row %d: %d features", i, len(c.Feature(i)))
			}
		}
		if err := c.Verify(context.Background()); err != nil {
			t.Fatalf("an opened cache does not verify: %v", err)
		}
	})
}
