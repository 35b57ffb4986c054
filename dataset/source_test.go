package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

func TestOpenOrdersLikeKeras(t *testing.T) {
	t.Parallel()
	// Created out of order; classes must come out in byte order of their
	// names (Python's sorted(): "B" < "a", "dog10" < "dog2").
	dir := makeDataset(t, map[string]int{
		"dog2/b.png":       4,
		"dog2/a.png":       4,
		"dog10/z.jpg.png":  4,
		"a/sub/x.png":      4,
		"a/sub.png":        4,
		"a/c.png":          4,
		"B/only.png":       4,
		"dog10/Upper.png":  4,
		"dog10/lower.png":  4,
		"dog10/deep/1.png": 4,
	})
	fixtures.WriteFile(t, filepath.Join(dir, "a", "notes.txt"), []byte("not an image"))
	fixtures.WriteFile(t, filepath.Join(dir, "a", ".DS_Store"), []byte{0})
	fixtures.WriteFile(t, filepath.Join(dir, "a", ".hidden", "x.png"), encode(t, "png", testImage(2, 2, 0)))
	fixtures.WriteFile(t, filepath.Join(dir, ".git", "x.png"), []byte{0})
	fixtures.WriteFile(t, filepath.Join(dir, "README.md"), []byte("hello"))

	src, err := Open(dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"B", "a", "dog10", "dog2"}; !reflect.DeepEqual(src.Classes, want) {
		t.Errorf("classes %v, want %v", src.Classes, want)
	}
	var got []string
	for _, it := range src.Items {
		got = append(got, it.Path+"="+src.Classes[it.Label])
	}
	want := []string{
		"B/only.png=B",
		"a/c.png=a", "a/sub.png=a", "a/sub/x.png=a",
		"dog10/Upper.png=dog10", "dog10/deep/1.png=dog10", "dog10/lower.png=dog10", "dog10/z.jpg.png=dog10",
		"dog2/a.png=dog2", "dog2/b.png=dog2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("items\n got %v\nwant %v", got, want)
	}
	var skipped []string
	for _, s := range src.Skipped {
		skipped = append(skipped, s.Path)
	}
	if want := []string{".git", "README.md", "a/.DS_Store", "a/.hidden", "a/notes.txt"}; !reflect.DeepEqual(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
	fi, err := os.Stat(filepath.Join(dir, "B", "only.png"))
	if err != nil {
		t.Fatal(err)
	}
	if it := src.Items[0]; it.Size != fi.Size() || !it.ModTime.Equal(fi.ModTime()) {
		t.Errorf("item %+v, want size %d modtime %v", it, fi.Size(), fi.ModTime())
	}
	if p := src.Path(0); p != filepath.Join(dir, "B", "only.png") {
		t.Errorf("Path(0) = %s", p)
	}
	if c := src.ClassCounts(); !reflect.DeepEqual(c, []int{1, 3, 4, 2}) {
		t.Errorf("class counts %v", c)
	}

	_, err = Open(dir, Settings{Strict: true})
	if err == nil || !strings.Contains(err.Error(), ".git") || !strings.Contains(err.Error(), "4 more") {
		t.Errorf("strict: got %v, want an error naming .git and 4 more", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file.txt")
	fixtures.WriteFile(t, file, []byte("x"))
	loose := filepath.Join(tmp, "loose")
	fixtures.WriteFile(t, filepath.Join(loose, "a.png"), encode(t, "png", testImage(2, 2, 0)))
	one := filepath.Join(tmp, "one")
	fixtures.WriteFile(t, filepath.Join(one, "cat", "a.png"), encode(t, "png", testImage(2, 2, 0)))
	empty := filepath.Join(tmp, "empty")
	fixtures.WriteFile(t, filepath.Join(empty, "cat", "a.png"), encode(t, "png", testImage(2, 2, 0)))
	fixtures.WriteFile(t, filepath.Join(empty, "dog", "readme.txt"), []byte("x"))
	none := filepath.Join(tmp, "none")
	if err := os.Mkdir(none, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, dir string
		want      []string
	}{
		{"missing", filepath.Join(tmp, "nope"), []string{"nope", "does not exist"}},
		{"file", file, []string{file, "is a file"}},
		{"no class folders", none, []string{none, "no class folders"}},
		{"images but no class folders", loose, []string{loose, "1 images but no class folders"}},
		{"one class", one, []string{one, `only one class folder ("cat")`}},
		{"empty class", empty, []string{filepath.Join(empty, "dog"), "has no images"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Open(tc.dir, Settings{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "dataset: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestOpenFiles(t *testing.T) {
	t.Parallel()
	dir := makeDataset(t, map[string]int{"photos/b.png": 3, "photos/a/c.png": 3, "single.jpg": 3})
	fixtures.WriteFile(t, filepath.Join(dir, "photos", "x.txt"), []byte("x"))
	src, err := OpenFiles([]string{filepath.Join(dir, "single.jpg"), filepath.Join(dir, "photos")}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, it := range src.Items {
		if it.Label != -1 {
			t.Errorf("item %d label %d, want -1", i, it.Label)
		}
		got = append(got, src.Path(i))
	}
	want := []string{filepath.Join(dir, "single.jpg"), filepath.Join(dir, "photos", "a", "c.png"), filepath.Join(dir, "photos", "b.png")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths %v, want %v", got, want)
	}
	if len(src.Skipped) != 1 || src.Skipped[0].Path != filepath.ToSlash(filepath.Join(dir, "photos", "x.txt")) {
		t.Errorf("skipped %+v", src.Skipped)
	}
	if _, err := src.Decode(0); err != nil {
		t.Errorf("decode: %v", err)
	}
	if _, err := OpenFiles([]string{filepath.Join(dir, "nope")}, Settings{}); err == nil || !strings.Contains(err.Error(), "nope does not exist") {
		t.Errorf("missing path: %v", err)
	}
}

func TestOpenFollowsSymlinkedFolders(t *testing.T) {
	t.Parallel()
	// Keras lists symlinked class folders; WalkDir does not descend into a
	// symlinked root, so these used to fail with "has no images".
	real := makeDataset(t, map[string]int{"cat/a.png": 4, "cat/sub/b.png": 4, "dog/c.png": 4})
	dir := t.TempDir()
	for _, c := range []string{"cat", "dog"} {
		if err := os.Symlink(filepath.Join(real, c), filepath.Join(dir, c)); err != nil {
			t.Skipf("no symbolic links here: %v", err)
		}
	}
	t.Run("Open", func(t *testing.T) {
		src, err := Open(dir, Settings{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range src.Items {
			got = append(got, it.Path)
		}
		if want := []string{"cat/a.png", "cat/sub/b.png", "dog/c.png"}; !reflect.DeepEqual(got, want) {
			t.Errorf("items %v, want %v", got, want)
		}
		if _, err := src.Decode(1); err != nil {
			t.Error(err)
		}
	})
	t.Run("OpenFiles", func(t *testing.T) {
		link := filepath.Join(dir, "cat")
		src, err := OpenFiles([]string{link}, Settings{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range src.Items {
			got = append(got, it.Path)
		}
		want := []string{filepath.ToSlash(filepath.Join(link, "a.png")), filepath.ToSlash(filepath.Join(link, "sub", "b.png"))}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("items %v, want %v", got, want)
		}
	})
}

// TestFIFORefused checks that a named pipe among the images is refused up
// front, naming it, where reading it would block until a writer comes.
func TestFIFORefused(t *testing.T) {
	t.Parallel()
	dir := makeDataset(t, map[string]int{"cat/1.png": 1, "dog/1.png": 2})
	fifo := fixtures.FIFO(t, filepath.Join(dir, "cat", "2.png"))
	unblock := func() { fixtures.UnblockFIFO(fifo) }
	t.Run("OpenFiles", func(t *testing.T) {
		var err error
		fixtures.Within(t, 20*time.Second, unblock, func() { _, err = OpenFiles([]string{fifo}, Settings{}) })
		if !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("err = %v, want one naming %s as a FIFO", err, fifo)
		}
	})
	t.Run("DecodeFile", func(t *testing.T) {
		var err error
		fixtures.Within(t, 20*time.Second, unblock, func() { _, err = DecodeFile(fifo, 0) })
		var de *DecodeError
		if !errors.As(err, &de) || de.Path != fifo || !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("err = %v, want a *DecodeError for %s saying it is a FIFO", err, fifo)
		}
	})
	t.Run("Open lists it as skipped", func(t *testing.T) {
		var src *Source
		var err error
		fixtures.Within(t, 20*time.Second, unblock, func() { src, err = Open(dir, Settings{}) })
		if err != nil {
			t.Fatal(err)
		}
		if len(src.Skipped) != 1 || src.Skipped[0].Path != "cat/2.png" || !strings.Contains(src.Skipped[0].Reason, "FIFO") {
			t.Fatalf("skipped %+v, want cat/2.png as a FIFO", src.Skipped)
		}
		_, err = Open(dir, Settings{Strict: true})
		if err == nil || !strings.Contains(err.Error(), "cat/2.png") || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("strict: err = %v, want one naming cat/2.png as a FIFO", err)
		}
	})
}
