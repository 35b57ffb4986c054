package experiment

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

func TestCacheDirs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	classes := []string{"cat", "dog"}
	single := filepath.Join(root, "single")
	fixtures.FeatureCache(t, single, 4, 3, classes, "aaaa", 1)
	pair := filepath.Join(root, "pair")
	cachePair(t, pair, classes)
	half := filepath.Join(root, "half")
	fixtures.FeatureCache(t, filepath.Join(half, "val"), 4, 3, classes, "aaaa", 1)
	for _, tc := range []struct {
		desc, dir string
		want      []string
	}{
		{"one cache", single, []string{single}},
		{"a train/val pair", pair, []string{filepath.Join(pair, "train"), filepath.Join(pair, "val")}},
		{"half a pair", half, []string{filepath.Join(half, "val")}},
		{"no cache", root, []string{root}},
		{"missing", filepath.Join(root, "nope"), []string{filepath.Join(root, "nope")}},
	} {
		if got := CacheDirs(tc.dir); !slices.Equal(got, tc.want) {
			t.Errorf("%s: CacheDirs = %q, want %q", tc.desc, got, tc.want)
		}
	}
}
