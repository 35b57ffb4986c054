package dataset

import (
	"slices"
	"testing"
)

// walkOrder sorts keys as filepath.WalkDir meets the files of the same
// tree (the order Open lists skipped files in), not in byte order.
func TestWalkOrder(t *testing.T) {
	keys := []string{"b.png", "b-c", "b/x.png", "b/a/z.png", "b/a.png", "a", "b/", "c/.h/q", "c/.h"}
	want := []string{"a", "b/", "b/a/z.png", "b/a.png", "b/x.png", "b-c", "b.png", "c/.h", "c/.h/q"}
	objs := make([]Object, len(keys))
	for i, k := range keys {
		objs[i].Key = k
	}
	walkOrder(objs)
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
	}
	if !slices.Equal(got, want) {
		t.Errorf("walk order %q, want %q", got, want)
	}
}

func TestObjectPaths(t *testing.T) {
	for _, tc := range []struct{ data, rel, want string }{
		{"s3://b/p", "cat/1.jpg", "s3://b/p/cat/1.jpg"},
		{"s3://b/p/?endpoint=http://h:1&region=r", "cat/1.jpg", "s3://b/p/cat/1.jpg"},
		{"s3://b", "cat/1.jpg", "s3://b/cat/1.jpg"},
	} {
		if got := objectPath(tc.data, tc.rel); got != tc.want {
			t.Errorf("objectPath(%q, %q) = %q, want %q", tc.data, tc.rel, got, tc.want)
		}
	}
}
