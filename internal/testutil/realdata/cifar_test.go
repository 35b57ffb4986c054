package realdata

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// UnpackCIFAR puts each class's images into the parts in archive order and
// leaves the rest and the non-JPEG entries out.
func TestUnpackCIFAR(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(root, "a.tar.gz")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(name string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(name)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, class := range []string{"cat", "dog"} {
		for i := range 5 {
			add(fmt.Sprintf("train/%s/%04d.jpg", class, i))
		}
		add("train/" + class + "/notes.txt")
	}
	for _, c := range []interface{ Close() error }{tw, gz, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	UnpackCIFAR(t, archive, Part{Dir: a, N: 2}, Part{Dir: b, N: 2})
	for dir, want := range map[string][]string{
		filepath.Join(a, "cat"): {"0000.jpg", "0001.jpg"}, filepath.Join(b, "cat"): {"0002.jpg", "0003.jpg"},
		filepath.Join(a, "dog"): {"0000.jpg", "0001.jpg"}, filepath.Join(b, "dog"): {"0002.jpg", "0003.jpg"},
	} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", dir, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(b, "dog", "0003.jpg")); err != nil || string(b) != "train/dog/0003.jpg" {
		t.Errorf("dog/0003.jpg holds %q (%v)", b, err)
	}
}
