package blobsrc_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	_ "github.com/tlearn/tlearn/dataset/blobsrc"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// img returns a small seeded PNG or JPEG.
func img(t testing.TB, format string, w, h, seed int) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x*7 + seed*31), uint8(y*5 + seed), uint8((x + y) * seed), 255})
		}
	}
	var b bytes.Buffer
	var err error
	if format == "jpeg" {
		err = jpeg.Encode(&b, m, &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&b, m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// trickyTree writes a dataset folder that exercises every listing rule:
// hidden files and folders at the top and inside classes, loose files,
// non-images, nested folders whose names sort around the files' ("b",
// "b-c", "b.png"), upper-case extensions; with special, also symbolic
// links (to a file, to a folder, broken) and a FIFO, which only a folder
// (file://) can hold.
func trickyTree(t testing.TB, dir string, special bool) {
	t.Helper()
	files := map[string][]byte{
		".hidden.png":           img(t, "png", 9, 9, 1),
		".thumbs/a.png":         img(t, "png", 9, 9, 2),
		"README.txt":            []byte("read me"),
		"loose.png":             img(t, "png", 9, 9, 3),
		"b.png":                 img(t, "png", 9, 9, 4),
		"b/x.png":               img(t, "png", 11, 9, 5),
		"b/sub/y.jpg":           img(t, "jpeg", 17, 13, 6),
		"b/sub/.cache/z.png":    img(t, "png", 9, 9, 7),
		"b/.DS_Store":           []byte("junk"),
		"b/notes.txt":           []byte("notes"),
		"b/b-c.png":             img(t, "png", 12, 10, 8),
		"b/b.png":               img(t, "png", 13, 10, 9),
		"b/b/inner.png":         img(t, "png", 14, 10, 10),
		"b-c/z.jpg":             img(t, "jpeg", 16, 16, 11),
		"cat/x/one.png":         img(t, "png", 10, 12, 12),
		"cat/x.png":             img(t, "png", 10, 13, 13),
		"cat/x-y.png":           img(t, "png", 10, 14, 14),
		"cat/deep/er/img.PNG":   img(t, "png", 10, 15, 15),
		"cat/noext":             []byte("no extension"),
		"cat/.hid/deeper/q.png": img(t, "png", 10, 16, 16),
	}
	for p, b := range files {
		fixtures.WriteFile(t, filepath.Join(dir, filepath.FromSlash(p)), b)
	}
	if !special {
		return
	}
	for link, target := range map[string]string{"cat/link.png": "../b/x.png", "cat/broken.png": "../nowhere.png", "cat/linkdir": "../b"} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	fixtures.FIFO(t, filepath.Join(dir, "cat", "fifo.png"))
}

// fileURL is the file:// URL of the folder dir.
func fileURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// sameListing fails t unless got lists what want lists: classes, items
// (path, label, size, and with times their modification times) and
// skipped entries, in order.
func sameListing(t testing.TB, got, want *dataset.Source, times bool) {
	t.Helper()
	if !reflect.DeepEqual(got.Classes, want.Classes) {
		t.Errorf("classes %q, want %q", got.Classes, want.Classes)
	}
	if !reflect.DeepEqual(got.Skipped, want.Skipped) {
		t.Errorf("skipped\n%v\nwant\n%v", got.Skipped, want.Skipped)
	}
	if len(got.Items) != len(want.Items) {
		t.Fatalf("%d items, want %d:\n%v\nwant\n%v", len(got.Items), len(want.Items), got.Items, want.Items)
	}
	for i, g := range got.Items {
		w := want.Items[i]
		if g.Path != w.Path || g.Label != w.Label || g.Size != w.Size || (times && !g.ModTime.Equal(w.ModTime)) {
			t.Errorf("item %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestFileURLListsAsOpen(t *testing.T) {
	dir := t.TempDir()
	trickyTree(t, dir, true)
	want, err := dataset.Open(dir, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	u := fileURL(dir)
	got, err := dataset.OpenData(context.Background(), u, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	sameListing(t, got, want, true)
	if got.Dir != u || got.Listing().Data != u {
		t.Errorf("Dir %q, Listing().Data %q, want the URL %q", got.Dir, got.Listing().Data, u)
	}
	// The rules' cases all occur (a test of nothing would pass too).
	reasons := map[string]bool{}
	for _, s := range want.Skipped {
		reasons[s.Reason] = true
	}
	for _, r := range []string{"hidden", "not in a class folder", "not an image (extension .txt)", "not an image (extension none)",
		"broken symbolic link", "symbolic link to a folder (not followed)", "a named pipe (FIFO), not a regular file"} {
		if !reasons[r] {
			t.Errorf("no skipped entry says %q: %v", r, want.Skipped)
		}
	}
	if len(want.Classes) != 3 || len(want.Items) < 10 {
		t.Errorf("the tree lists %d classes and %d items", len(want.Classes), len(want.Items))
	}

	// Strict refuses the same first entry, naming the URL.
	_, werr := dataset.Open(dir, dataset.Settings{Strict: true})
	_, gerr := dataset.OpenData(context.Background(), u, dataset.Settings{Strict: true})
	if werr == nil || gerr == nil || strings.Replace(gerr.Error(), u, dir, 1) != werr.Error() {
		t.Errorf("strict: %v, want %v with the URL", gerr, werr)
	}
}

func TestFileURLReadsAsOpen(t *testing.T) {
	dir := t.TempDir()
	trickyTree(t, dir, false)
	local, err := dataset.Open(dir, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := dataset.OpenData(context.Background(), fileURL(dir), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := dataset.FromListing(context.Background(), src.Listing(), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	sameImages(t, local, src)
	sameImages(t, local, again)
	sameBatches(t, local, src)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if p := src.Path(0); p != fileURL(dir)+"/"+src.Items[0].Path {
		t.Errorf("Path(0) = %q", p)
	}
}

// sameImages fails t unless every item of got decodes to the pixels of the
// same item of want.
func sameImages(t testing.TB, want, got *dataset.Source) {
	t.Helper()
	if len(got.Items) != len(want.Items) {
		t.Fatalf("%d items, want %d", len(got.Items), len(want.Items))
	}
	for i := range want.Items {
		w, err := want.Decode(i)
		if err != nil {
			t.Fatal(err)
		}
		g, err := got.Decode(i)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s decodes otherwise than %s", got.Path(i), want.Path(i))
		}
	}
}

// sameBatches fails t unless a Loader over got yields the batches of one
// over want.
func sameBatches(t testing.TB, want, got *dataset.Source) {
	t.Helper()
	batches := func(src *dataset.Source) [][]float32 {
		l, err := dataset.NewLoader(src, nil, dataset.LoaderSettings{Size: 16, Batch: 3, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var out [][]float32
		for {
			dst := make([]float32, l.BatchLen())
			b, err := l.Next(context.Background(), dst)
			if err != nil {
				break
			}
			out = append(out, dst[:b.Count*l.ImageLen()])
		}
		return out
	}
	if w, g := batches(want), batches(got); len(w) == 0 || !reflect.DeepEqual(g, w) {
		t.Errorf("the loader's batches differ (%d and %d batches)", len(g), len(w))
	}
}

func TestFileURLErrors(t *testing.T) {
	root := t.TempDir()
	one := filepath.Join(root, "one")
	fixtures.WriteFile(t, filepath.Join(one, "cat", "a.png"), img(t, "png", 8, 8, 1))
	empty := filepath.Join(root, "empty")
	fixtures.WriteFile(t, filepath.Join(empty, "cat", "a.png"), img(t, "png", 8, 8, 1))
	fixtures.WriteFile(t, filepath.Join(empty, "dog", "notes.txt"), []byte("x"))
	loose := filepath.Join(root, "loose")
	fixtures.WriteFile(t, filepath.Join(loose, "a.png"), img(t, "png", 8, 8, 1))
	fixtures.WriteFile(t, filepath.Join(loose, "b.png"), img(t, "png", 8, 8, 2))
	bare := filepath.Join(root, "bare")
	fixtures.WriteFile(t, filepath.Join(bare, "notes.txt"), []byte("x"))
	incomplete := filepath.Join(root, "incomplete")
	trickyTree(t, incomplete, false)
	fixtures.WriteFile(t, filepath.Join(incomplete, dataset.MarkerFile), []byte(`{"state":"incomplete","made":"mnist x","command":"tlearn data mnist"}`))

	for _, tc := range []struct {
		desc, data string
		want       []string
	}{
		{"one class", fileURL(one), []string{fileURL(one), `only one class folder ("cat")`}},
		{"a class without images", fileURL(empty), []string{fileURL(empty) + "/dog has no images"}},
		{"loose images", fileURL(loose), []string{fileURL(loose), "has 2 images but no class folders"}},
		{"no class folders", fileURL(bare), []string{fileURL(bare), "has no class folders"}},
		{"a folder that does not exist", fileURL(filepath.Join(root, "gone")), []string{fileURL(filepath.Join(root, "gone")), "does not exist"}},
		{"an incomplete dataset", fileURL(incomplete), []string{fileURL(incomplete), "is incomplete", "mnist x"}},
		{"an unsupported scheme", "ftp://host/data", []string{"ftp://host/data", `unsupported URL scheme "ftp"`, "file://, gs://, s3://"}},
		{"credentials in the URL", "s3://key:secret@bucket/data", []string{"s3://bucket/data", "never in the URL"}},
		{"no bucket", "s3:///data", []string{"s3:///data", "no bucket name"}},
		{"a relative file:// URL", "file://images/cat", []string{"file://images/cat", "three slashes"}},
		{"gs:// without credentials", "gs://some-bucket/data", []string{"gs://some-bucket/data", "no Google credentials", "GOOGLE_APPLICATION_CREDENTIALS"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			// No Google credentials: a file that does not exist fails
			// the lookup before any network.
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(root, "no-such-credentials.json"))
			src, err := dataset.OpenData(context.Background(), tc.data, dataset.Settings{})
			if err == nil {
				src.Close()
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

// A file:// dataset of more objects than a page (1000) is listed whole.
func TestFileURLListsEveryPage(t *testing.T) {
	dir := t.TempDir()
	data := img(t, "png", 4, 4, 1)
	for c := range 2 {
		for i := range 510 {
			fixtures.WriteFile(t, filepath.Join(dir, fmt.Sprintf("c%d", c), fmt.Sprintf("%04d.png", i)), data)
		}
	}
	src, err := dataset.OpenData(context.Background(), fileURL(dir), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if len(src.Items) != 1020 || src.Items[1019].Path != "c1/0509.png" || src.Items[510].Path != "c1/0000.png" {
		t.Fatalf("%d items, the last %+v", len(src.Items), src.Items[len(src.Items)-1])
	}
}
