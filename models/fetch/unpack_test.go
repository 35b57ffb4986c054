package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUnpack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc        string
		entries     []fetchEntry
		limits      unpackLimits
		wantFiles   []string
		wantSkipped []string
		wantErr     string
		unsafe      bool
	}{
		{desc: "files and folders", entries: []fetchEntry{
			{Name: "./", Type: tar.TypeDir},
			{Name: "./vgg16/", Type: tar.TypeDir},
			{Name: "./vgg16/vgg16.onnx", Body: []byte("model")},
			{Name: "vgg16/test_data_set_0/input_0.pb", Body: []byte("in")},
		}, wantFiles: []string{"vgg16/test_data_set_0/input_0.pb", "vgg16/vgg16.onnx"}},
		{desc: "links are skipped", entries: []fetchEntry{
			{Name: "a/model.onnx", Body: []byte("model")},
			{Name: "a/up", Type: tar.TypeSymlink, Linkname: "../../../etc/passwd"},
			{Name: "a/hard", Type: tar.TypeLink, Linkname: "/etc/passwd"},
			{Name: "a/fifo", Type: tar.TypeFifo},
		}, wantFiles: []string{"a/model.onnx"}, wantSkipped: []string{"a/up", "a/hard", "a/fifo"}},
		{desc: "dot-dot", entries: []fetchEntry{{Name: "a/../../evil", Body: []byte("x")}}, unsafe: true, wantErr: `climbs out`},
		{desc: "dot-dot folder", entries: []fetchEntry{{Name: "../", Type: tar.TypeDir}}, unsafe: true, wantErr: `climbs out`},
		{desc: "absolute", entries: []fetchEntry{{Name: "/tmp/evil", Body: []byte("x")}}, unsafe: true, wantErr: "absolute"},
		{desc: "backslash", entries: []fetchEntry{{Name: `..\evil`, Body: []byte("x")}}, unsafe: true, wantErr: "backslash"},
		{desc: "too many entries", entries: []fetchEntry{{Name: "a", Body: nil}, {Name: "b"}, {Name: "c"}},
			limits: unpackLimits{MaxFiles: 2}, unsafe: true, wantErr: "more than 2 entries"},
		{desc: "too many bytes", entries: []fetchEntry{{Name: "a", Body: make([]byte, 600)}, {Name: "b", Body: make([]byte, 600)}},
			limits: unpackLimits{MaxBytes: 1000}, unsafe: true, wantErr: "over 1000 bytes"},
		{desc: "file where a folder is", entries: []fetchEntry{{Name: "a", Body: []byte("x")}, {Name: "a/b", Body: []byte("y")}},
			wantErr: "fetch: unpack a/b"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			outer := t.TempDir()
			dir := filepath.Join(outer, "out")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			res, err := unpack(context.Background(), bytes.NewReader(fetchTarGz(t, tc.entries)), dir, tc.limits)
			checkInside(t, outer)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrUnsafeArchive) != tc.unsafe {
					t.Fatalf("err = %v, want %q (unsafe: %v)", err, tc.wantErr, tc.unsafe)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Files, tc.wantFiles) || !slices.Equal(res.Skipped, tc.wantSkipped) {
				t.Errorf("files %q skipped %q, want %q and %q", res.Files, res.Skipped, tc.wantFiles, tc.wantSkipped)
			}
			for _, f := range res.Files {
				st, err := os.Lstat(filepath.Join(dir, f))
				if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 {
					t.Errorf("%s: %v %v", f, st.Mode(), err)
				}
			}
		})
	}
	t.Run("not gzip", func(t *testing.T) {
		_, err := unpack(context.Background(), strings.NewReader("<html>rate limited</html>"), t.TempDir(), unpackLimits{})
		if err == nil || !strings.Contains(err.Error(), "not a gzip stream") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		b := fetchTarGz(t, []fetchEntry{{Name: "a", Body: bytes.Repeat([]byte("abc"), 10000)}})
		_, err := unpack(context.Background(), bytes.NewReader(b[:len(b)/2]), t.TempDir(), unpackLimits{})
		if err == nil {
			t.Error("no error for a truncated archive")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := unpack(ctx, bytes.NewReader(fetchTarGz(t, []fetchEntry{{Name: "a", Body: []byte("x")}})), t.TempDir(), unpackLimits{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// checkInside fails the test when outer holds anything but the folder
// "out", or when "out" holds anything but folders and regular files.
func checkInside(t testing.TB, outer string) {
	t.Helper()
	entries, err := os.ReadDir(outer)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "out" {
			t.Errorf("unpack wrote %s outside its folder", filepath.Join(outer, e.Name()))
		}
	}
	filepath.WalkDir(filepath.Join(outer, "out"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			t.Errorf("unpack made %s of type %v", p, d.Type())
		}
		return nil
	})
}

// FuzzUnpack feeds arbitrary bytes to the unpacker: it must not panic and
// must not write outside its folder. Seeds are archives made by fetchTarGz.
func FuzzUnpack(f *testing.F) {
	f.Add(fetchTarGz(f, []fetchEntry{{Name: "m/model.onnx", Body: []byte("model")}, {Name: "m/test_data_set_0/", Type: tar.TypeDir}}))
	f.Add(fetchTarGz(f, []fetchEntry{{Name: "../x", Body: []byte("x")}}))
	f.Add(fetchTarGz(f, []fetchEntry{{Name: "l", Type: tar.TypeSymlink, Linkname: "/"}, {Name: "l/x", Body: []byte("x")}}))
	f.Add(fetchTarGz(f, []fetchEntry{{Name: "a", Body: []byte("1")}, {Name: "a", Body: []byte("22")}}))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		outer := t.TempDir()
		dir := filepath.Join(outer, "out")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		unpack(context.Background(), bytes.NewReader(b), dir, unpackLimits{MaxFiles: 100, MaxBytes: 1 << 20})
		checkInside(t, outer)
	})
}
