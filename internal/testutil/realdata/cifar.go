package realdata

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	pathpkg "path"
	"path/filepath"
	"strings"
	"testing"
)

// Part is one folder that UnpackCIFAR fills: the next N images of each
// class go into Dir/<class>/.
type Part struct {
	Dir string
	N   int
}

// UnpackCIFAR writes the JPEGs of the archive's class folders (the shared
// cifar10-train-jpeg.tar.gz: train/<class>/NNNN.jpg) into parts, class by
// class in archive order: the first parts[0].N images of each class into
// parts[0].Dir, the next parts[1].N into parts[1].Dir, and so on.
func UnpackCIFAR(tb testing.TB, archive string, parts ...Part) {
	tb.Helper()
	f, err := os.Open(archive)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", archive, err)
	}
	tr := tar.NewReader(gz)
	count := map[string]int{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			tb.Fatalf("%s: %v", archive, err)
		}
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(h.Name, ".jpg") {
			continue
		}
		class := pathpkg.Base(pathpkg.Dir(h.Name))
		k := count[class]
		count[class]++
		dir := ""
		for _, p := range parts {
			if k < p.N {
				dir = p.Dir
				break
			}
			k -= p.N
		}
		if dir == "" {
			continue
		}
		out := filepath.Join(dir, class, pathpkg.Base(h.Name))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			tb.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}
