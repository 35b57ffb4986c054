package experiment

import (
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
