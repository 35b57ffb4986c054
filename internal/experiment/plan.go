package experiment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// planFormat is the format of plan.json that this tlearn writes and reads.
const planFormat = 1

// Plan is a dataset's listing and the split of a sharded extraction,
// written once into the cache folder (WritePlan) so that the shards read
// it instead of each listing the data again.
type Plan struct {
	Format  int             `json:"format"`
	Listing dataset.Listing `json:"listing"`
	// Val and Seed are the validation split every shard takes (Val 0: no
	// split).
	Val  float64 `json:"val,omitempty"`
	Seed uint64  `json:"seed"`
}

// PlanSettings say which dataset to list into which cache folder's plan.
type PlanSettings struct {
	Data   string // a folder, or a URL of a bucket prefix
	Cache  string
	Val    float64
	Seed   uint64
	Strict bool // fail on hidden or non-image files in Data
	Force  bool // replace a plan of another listing or split
}

// ErrPlanMismatch is wrapped by the errors about a plan.json that does not
// match what is asked: another dataset, listing or split.
var ErrPlanMismatch = errors.New("experiment: the plan does not match")

// WritePlan lists s.Data once and writes its listing with the split into
// s.Cache/plan.json, atomically; the split is checked now (every class
// large enough). A plan that is there with the same listing and split is
// left as it is (unchanged true); one of another is refused, wrapping
// ErrPlanMismatch, unless s.Force.
func WritePlan(ctx context.Context, s PlanSettings, p progress.Reporter) (pl *Plan, unchanged bool, err error) {
	p = progress.OrNop(p)
	if s.Val != 0 && !(s.Val > 0 && s.Val < 1) {
		return nil, false, fmt.Errorf("%w: validation fraction %v, want between 0 and 1", ErrSettings, s.Val)
	}
	data := s.Data
	if !dataset.IsURL(data) {
		if data, err = filepath.Abs(data); err != nil {
			return nil, false, fmt.Errorf("experiment: %w", err)
		}
	}
	if err := fsutil.CheckOutput(s.Cache, localData(data)); err != nil {
		return nil, false, fmt.Errorf("experiment: %w", err)
	}
	lock, err := lockOutput(s.Cache, p, filepath.Join(s.Cache, cache.PlanFile))
	if err != nil {
		return nil, false, err
	}
	defer lock.Unlock()
	src, err := dataset.OpenData(ctx, data, dataset.Settings{Strict: s.Strict})
	if err != nil {
		return nil, false, err
	}
	defer src.Close()
	logListingSkips(p, src)
	if s.Val > 0 {
		if _, _, err := dataset.Split(src, s.Val, s.Seed); err != nil {
			return nil, false, err
		}
	}
	pl = &Plan{Format: planFormat, Listing: src.Listing(), Val: s.Val, Seed: s.Seed}
	pl.Listing.Data = data
	path := filepath.Join(s.Cache, cache.PlanFile)
	old, err := ReadPlan(s.Cache)
	switch {
	case err == nil:
		why := old.differs(pl.Listing.Data, pl.Val, pl.Seed)
		if why == "" && !sameListing(old.Listing, pl.Listing) {
			why = "another listing of " + data + " (files added, removed or changed since)"
		}
		if why == "" {
			return old, true, nil
		}
		if !s.Force {
			return nil, false, fmt.Errorf("%w: %s was written for %s", ErrPlanMismatch, path, why)
		}
	case !errors.Is(err, os.ErrNotExist) && !s.Force:
		return nil, false, err
	}
	if err := os.MkdirAll(s.Cache, 0o755); err != nil {
		return nil, false, fmt.Errorf("experiment: %w", err)
	}
	b, err := json.MarshalIndent(pl, "", " ")
	if err != nil {
		return nil, false, fmt.Errorf("experiment: encode %s: %w", path, err)
	}
	if err := fsutil.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return nil, false, fmt.Errorf("experiment: %w", err)
	}
	return pl, false, nil
}

// ReadPlan reads dir/plan.json; a missing one is an error wrapping
// os.ErrNotExist.
func ReadPlan(dir string) (*Plan, error) {
	path := filepath.Join(dir, cache.PlanFile)
	b, err := fsutil.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	var pl Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pl); err != nil {
		return nil, fmt.Errorf("experiment: %s: malformed plan: %w", path, err)
	}
	if pl.Format != planFormat {
		return nil, fmt.Errorf("experiment: %s: format %d, this tlearn reads %d", path, pl.Format, planFormat)
	}
	if pl.Listing.Data == "" || len(pl.Listing.Items) == 0 {
		return nil, fmt.Errorf("experiment: %s: a plan without a dataset or images", path)
	}
	return &pl, nil
}

// differs says how the plan differs from the dataset data (absolute, or a
// URL) and the split val/seed, or "".
func (pl *Plan) differs(data string, val float64, seed uint64) string {
	switch {
	case pl.Listing.Data != data:
		return fmt.Sprintf("the dataset %s (not %s)", pl.Listing.Data, data)
	case pl.Val != val:
		return fmt.Sprintf("a validation fraction of %g (not %g)", pl.Val, val)
	case pl.Val > 0 && pl.Seed != seed:
		return fmt.Sprintf("the split seed %d (not %d)", pl.Seed, seed)
	}
	return ""
}

// sameListing reports whether two listings name the same classes and
// files (paths, labels, sizes, modification times).
func sameListing(a, b dataset.Listing) bool {
	return slices.Equal(a.Classes, b.Classes) && slices.EqualFunc(a.Items, b.Items, func(x, y dataset.Item) bool {
		return x.Path == y.Path && x.Label == y.Label && x.Size == y.Size && x.ModTime.Equal(y.ModTime)
	})
}

// listingSHA256 is the hash of a dataset's listing (classes and files)
// that every shard records: shards that listed the data differently (a
// file added between two shards' starts) disagree on it.
func listingSHA256(src *dataset.Source) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(src.Classes)
	for _, it := range src.Items {
		_ = enc.Encode([]any{it.Path, it.Label, it.Size, it.ModTime.UTC().Format("2006-01-02T15:04:05.999999999Z")})
	}
	return hex.EncodeToString(h.Sum(nil))
}
