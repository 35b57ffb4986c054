package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckOutput(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(filepath.Join(data, "cat"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, out string
		inputs    []string
		want      string // "" for no error
	}{
		{"elsewhere", filepath.Join(root, "out"), []string{data}, ""},
		{"sibling with a common prefix", data + "2", []string{data}, ""},
		{"empty input ignored", data, []string{""}, ""},
		{"the input", data, []string{data}, "is the input"},
		{"inside the input", filepath.Join(data, "cat", "1.jpg"), []string{data}, "lies inside the input " + data},
		{"holds the input", root, []string{"", data}, "the output " + root + " holds the input " + data},
		{"inside through a link", filepath.Join(link, "cat", "new.txt"), []string{data}, "lies inside the input"},
		{"the input through a link", link, []string{data}, "the output " + link + " is the input " + data},
		{"relative path", filepath.Join(data, "x", "..", "cat"), []string{data}, "lies inside"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := CheckOutput(tc.out, tc.inputs...)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrOverlap) || !errors.As(err, new(*OverlapError)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want an *OverlapError containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckReplace(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("ours/marker")
	for _, f := range []string{"a/1.jpg", "b/2.jpg", "c.txt", "d.txt", "e.txt"} {
		mk("theirs/" + f)
	}
	file := mk("file")
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	isOurs := func(dir string) bool { _, err := os.Stat(filepath.Join(dir, "marker")); return err == nil }
	for _, tc := range []struct {
		desc, dir string
		want      string // "" for no error
	}{
		{"missing", filepath.Join(root, "missing"), ""},
		{"empty", filepath.Join(root, "empty"), ""},
		{"marked", filepath.Join(root, "ours"), ""},
		{"other content", filepath.Join(root, "theirs"), filepath.Join(root, "theirs") + " is not a tlearn thing (it holds a/, b/, c.txt and 2 more)"},
		{"a file", file, file + " is a file, not a tlearn thing"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := CheckReplace(tc.dir, "thing", isOurs)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrForeign containing %q", err, tc.want)
			}
		})
	}
}
