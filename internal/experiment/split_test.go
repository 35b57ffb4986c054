package experiment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/dataset"
)

func TestSplitData(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	fixtures.ClassImages(t, data, "ant", 5, 1)
	fixtures.ClassImages(t, data, "bee", 8, 2)
	src, err := dataset.Open(data, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "split")
	s := SplitSettings{Out: out, Val: 0.25, Seed: 3}
	res, err := SplitData(context.Background(), src, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Train, []int{4, 6}) || !slices.Equal(res.Val, []int{1, 2}) || res.Linked+res.Copied != 13 {
		t.Errorf("result %+v, want train [4 6], val [1 2] and 13 files", res)
	}
	_, val, err := dataset.Split(src, s.Val, s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range val {
		if _, err := os.Stat(filepath.Join(out, "val", filepath.FromSlash(src.Items[i].Path))); err != nil {
			t.Errorf("dataset.Split's validation image %s is not in val/: %v", src.Items[i].Path, err)
		}
	}

	if _, err := SplitData(context.Background(), src, s, nil); !errors.Is(err, dataset.ErrNotEmpty) {
		t.Errorf("into the same folder: %v, want dataset.ErrNotEmpty", err)
	}
	s.Overwrite = true
	if _, err := SplitData(context.Background(), src, s, nil); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	s.Out = filepath.Join(data, "split")
	if _, err := SplitData(context.Background(), src, s, nil); !errors.Is(err, ErrSettings) {
		t.Errorf("into the dataset: %v, want ErrSettings", err)
	}
	if _, err := os.Stat(s.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused split made %s: %v", s.Out, err)
	}
}
