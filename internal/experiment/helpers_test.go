package experiment

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"
)

// cachePair writes DIR/train and DIR/val.
func cachePair(t *testing.T, dir string, classes []string) (train, val string) {
	t.Helper()
	train, val = filepath.Join(dir, "train"), filepath.Join(dir, "val")
	fixtures.FeatureCache(t, train, 60, 12, classes, "aaaa", 1)
	fixtures.FeatureCache(t, val, 30, 12, classes, "aaaa", 2)
	return train, val
}

// splitMapsCaches extracts cs's training images, split 3:1, with maps at
// 32×32, into a temporary folder; it returns the folder and the train and
// val caches.
func splitMapsCaches(t *testing.T, cs CompareSettings) (root, train, val string) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, "cache")
	if _, err := Extract(context.Background(), ExtractSettings{Model: cs.Model, Data: cs.TrainData, Cache: dir, Val: 0.25, Size: 32, Maps: true, Runtime: cs.Runtime}, nil); err != nil {
		t.Fatal(err)
	}
	return root, filepath.Join(dir, "train"), filepath.Join(dir, "val")
}
