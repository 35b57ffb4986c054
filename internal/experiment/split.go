package experiment

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// SplitSettings say where SplitData writes a dataset's split and how the
// split is drawn.
type SplitSettings struct {
	// Out receives Out/train/<class>/ and Out/val/<class>/. It must lie
	// outside the dataset's folder.
	Out string
	// Val, between 0 and 1, is the fraction of every class that goes to
	// validation; Seed draws the images (dataset.Split).
	Val  float64
	Seed uint64
	// Overwrite removes Out/train and Out/val first, from a folder that
	// tlearn's data commands made (dataset.PrepareOutput). Without it a
	// non-empty Out is an error wrapping dataset.ErrNotEmpty.
	Overwrite bool
	// Command, when set, is recorded in Out's marker as the command line
	// that would finish the split if this one were interrupted.
	Command string
}

// SplitResult is what SplitData wrote.
type SplitResult struct {
	// Train and Val are the images per class, in the source's class order.
	Train, Val []int
	// Linked and Copied count the files hard-linked and copied.
	Linked, Copied int
	// Restarted says that Out was an incomplete split of the same source
	// and settings, which this one replaced (dataset.PrepareOutput).
	Restarted bool
}

// SplitData writes the seeded, stratified split of src (dataset.Split)
// into training and validation class folders: hard links where the file
// system allows, copies otherwise. The files are one phase on p (nil:
// silent). It writes the same split that Extract makes with the same
// fraction and seed, as folders.
func SplitData(ctx context.Context, src *dataset.Source, s SplitSettings, p progress.Reporter) (*SplitResult, error) {
	p = progress.OrNop(p)
	if fsutil.Within(s.Out, src.Dir) {
		// Listing the dataset again would take train and val for classes.
		return nil, fmt.Errorf("%w: the output %s is inside the dataset %s", ErrSettings, s.Out, src.Dir)
	}
	train, val, err := dataset.Split(src, s.Val, s.Seed)
	if err != nil {
		return nil, err
	}
	// The marker's temporary: a kill before its first rename leaves it alone
	// in s.Out, which no rerun could restart otherwise.
	lock, err := lockOutput(s.Out, p, filepath.Join(s.Out, dataset.MarkerFile))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	dir := src.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	origin := dataset.Origin{Made: fmt.Sprintf("split of %s, validation fraction %v, seed %d", dir, s.Val, s.Seed), Command: s.Command}
	restarted, err := dataset.PrepareOutput(src.Dir, s.Out, s.Overwrite, origin, "train", "val")
	if err != nil {
		return nil, err
	}
	res := &SplitResult{Train: make([]int, len(src.Classes)), Val: make([]int, len(src.Classes)), Restarted: restarted}
	p.Start("linking split", len(src.Items), 0)
	defer p.Finish()
	for _, part := range []struct {
		name   string
		idx    []int
		counts []int
	}{{"train", train, res.Train}, {"val", val, res.Val}} {
		linked, copied, err := dataset.CopyItems(ctx, src, part.idx, filepath.Join(s.Out, part.name), p)
		res.Linked, res.Copied = res.Linked+linked, res.Copied+copied
		if err != nil {
			return nil, err
		}
		for _, i := range part.idx {
			part.counts[src.Items[i].Label]++
		}
	}
	if err := dataset.FinishOutput(s.Out); err != nil {
		return nil, err
	}
	return res, nil
}
