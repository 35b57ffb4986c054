package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// ShardStatus is what CheckShards found of one shard.
type ShardStatus int

const (
	ShardComplete   ShardStatus = iota // every part finished (and, when verified, sound)
	ShardMissing                       // no folder, or no manifest in it yet
	ShardIncomplete                    // extraction not finished: its command resumes it
	ShardWriting                       // a live process holds its lock
	ShardBad                           // unreadable, or a chunk fails its checksum
	ShardMismatch                      // made with other settings or data than the others, or not the shard its name says
)

func (s ShardStatus) String() string {
	return [...]string{"complete", "missing", "incomplete", "being written", "bad checksum", "mismatch"}[s]
}

// ShardState is one shard of a sharded cache, as CheckShards found it.
type ShardState struct {
	Index  int
	Dir    string
	Status ShardStatus
	// Done and Total count its rows (over train and val): finished and in
	// all; 0 of 0 for a missing shard.
	Done, Total int
	// Err says what is wrong (nil for a complete shard).
	Err error
}

// ShardReport is the state of every shard of a sharded cache.
type ShardReport struct {
	Dir    string
	Count  int
	Parts  []string // "" for one cache, or "train" and "val"
	Shards []ShardState
	// Example is the manifest of the first complete shard (its first
	// part), else of the first shard with a manifest: the settings that
	// the missing shards' commands repeat; nil when no shard has one.
	Example *cache.Manifest
	// Plan is the cache folder's plan.json, nil without one.
	Plan *Plan
}

// Redo lists the shards that are not complete, in index order.
func (r *ShardReport) Redo() []ShardState {
	var s []ShardState
	for _, sh := range r.Shards {
		if sh.Status != ShardComplete {
			s = append(s, sh)
		}
	}
	return s
}

// ErrNoShards is wrapped by the error about a cache folder without shards.
var ErrNoShards = errors.New("experiment: no shards")

// CheckShards reports the state of every shard of the sharded cache dir
// (dir/shards/IIIII-of-NNNNN) without changing anything; verify also
// checks every finished chunk against its checksum (reading every shard).
// Temporary files of killed tasks and lock files are ignored; shard
// folders that disagree on the count are an error naming them.
func CheckShards(ctx context.Context, dir string, verify bool) (*ShardReport, error) {
	sd := filepath.Join(dir, cache.ShardsDir)
	entries, err := os.ReadDir(sd)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	counts := map[int][]string{}
	var countOrder []int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a lock file, or a killed task's temporary
		}
		_, n, ok := cache.ParseShardName(e.Name())
		if !ok || !e.IsDir() {
			return nil, fmt.Errorf("experiment: %s is not a shard folder (want IIIII-of-NNNNN)", filepath.Join(sd, e.Name()))
		}
		if _, seen := counts[n]; !seen {
			countOrder = append(countOrder, n)
		}
		counts[n] = append(counts[n], e.Name())
	}
	switch len(countOrder) {
	case 0:
		return nil, fmt.Errorf("%w in %s: run extract with a shard first", ErrNoShards, sd)
	case 1:
	default:
		var sets []string
		for _, n := range countOrder {
			sets = append(sets, fmt.Sprintf("%d of %d (%s)", len(counts[n]), n, strings.Join(counts[n][:min(3, len(counts[n]))], ", ")))
		}
		return nil, fmt.Errorf("%w: %s holds shards of different counts: %s; remove the folders of the count not in use",
			cache.ErrShards, sd, strings.Join(sets, ", "))
	}
	r := &ShardReport{Dir: dir, Count: countOrder[0]}
	if pl, err := ReadPlan(dir); err == nil {
		r.Plan = pl
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	r.Parts = []string{""}
	if r.split(sd, counts[r.Count]) {
		r.Parts = []string{"train", "val"}
	}
	// The first complete shard is the reference of the mismatch checks.
	ref := make([]*cache.Manifest, len(r.Parts))
	for i := range r.Count {
		st := r.check(ctx, i, verify, ref)
		r.Shards = append(r.Shards, st)
	}
	if ref[0] != nil {
		r.Example = ref[0] // a complete shard's settings, rather than a mismatching one's
	}
	return r, nil
}

// split reports whether the shards are train/val pairs: as the plan says,
// else as the first shard with a manifest has it.
func (r *ShardReport) split(sd string, names []string) bool {
	if r.Plan != nil {
		return r.Plan.Val > 0
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(sd, n, "train", cache.ManifestFile)); err == nil {
			return true
		}
		if _, err := os.Stat(filepath.Join(sd, n, cache.ManifestFile)); err == nil {
			return false
		}
	}
	return false
}

// check finds the state of shard i; ref holds each part's first complete
// shard's manifest, which later shards are compared with.
func (r *ShardReport) check(ctx context.Context, i int, verify bool, ref []*cache.Manifest) ShardState {
	st := ShardState{Index: i, Dir: ShardDir(r.Dir, Shard{Index: i, Count: r.Count})}
	if _, err := os.Stat(st.Dir); err != nil {
		st.Status, st.Err = ShardMissing, fmt.Errorf("%s: not started", st.Dir)
		return st
	}
	if le := fsutil.Writer(st.Dir); le != nil {
		st.Status, st.Err = ShardWriting, le
		return st
	}
	ms := make([]*cache.Manifest, len(r.Parts))
	for k, part := range r.Parts {
		d := filepath.Join(st.Dir, part)
		m, err := cache.ReadManifest(d)
		switch {
		case errors.Is(err, cache.ErrNotCache):
			st.Status, st.Err = ShardMissing, fmt.Errorf("%s: started, but no cache yet (killed before its first manifest)", d)
			return st
		case err != nil:
			st.Status, st.Err = ShardBad, err
			return st
		}
		if r.Example == nil {
			r.Example = m
		}
		ms[k] = m
		st.Done += m.DoneRows()
		st.Total += m.N
	}
	for k, m := range ms {
		d := filepath.Join(st.Dir, r.Parts[k])
		if err := r.expect(d, i, m); err != nil {
			st.Status, st.Err = ShardMismatch, err
			return st
		}
		if ref[k] != nil {
			if why := cache.ShardDiff(ref[k], m); why != "" {
				st.Status, st.Err = ShardMismatch, fmt.Errorf("%s was made differently from shard %d: %s", d, ref[k].Shard.Index, why)
				return st
			}
		}
	}
	for k, m := range ms {
		if !m.Complete() {
			st.Status, st.Err = ShardIncomplete, fmt.Errorf("%s: %d of %d rows done", filepath.Join(st.Dir, r.Parts[k]), m.DoneRows(), m.N)
			return st
		}
	}
	if verify {
		for k := range ms {
			if err := cache.Verify(ctx, filepath.Join(st.Dir, r.Parts[k])); err != nil {
				if ctx.Err() != nil {
					st.Status, st.Err = ShardBad, ctx.Err()
				} else {
					st.Status, st.Err = ShardBad, err
				}
				return st
			}
		}
	}
	for k, m := range ms {
		if ref[k] == nil {
			ref[k] = m
		}
	}
	return st
}

// expect checks that the cache d of shard folder i is that shard, with
// the rows that its index takes of its part.
func (r *ShardReport) expect(d string, i int, m *cache.Manifest) error {
	sh := m.Shard
	if sh == nil {
		return fmt.Errorf("%s is not a shard (its manifest has no shard record)", d)
	}
	if sh.Index != i || sh.Count != r.Count {
		return fmt.Errorf("%s says it is shard %d of %d", d, sh.Index, sh.Count)
	}
	if start, end := cache.ShardRange(sh.Total, sh.Batch, i, r.Count); sh.Start != start || sh.End != end {
		return fmt.Errorf("%s holds rows [%d,%d), shard %d of %d takes [%d,%d) of %d", d, sh.Start, sh.End, i, r.Count, start, end, sh.Total)
	}
	return nil
}

// MergeResult is one cache that MergeShards wrote (or found up to date).
type MergeResult struct {
	Dir      string
	N        int
	Shards   int
	UpToDate bool
	Elapsed  time.Duration
}

// MergeShards writes the cache (or the train/val pair) of the sharded
// cache folder dir from its shards: the arrays that a single extraction
// with the same settings writes, byte for byte, and its manifest but for
// the times. It refuses, wrapping cache.ErrShards and naming them, while a
// shard is missing, unfinished, damaged, being written (the holder's pid,
// host and command) or made differently from the others. It holds dir's
// lock and every shard's while it works, so no shard task can start
// meanwhile; it is resumable (a killed merge leaves no manifest, and the
// same call redoes the part it was in; a part already merged is only
// checked) and keeps the shards. It warns on p when the shards ran on
// other ONNX Runtime versions, providers or CPU features.
func MergeShards(ctx context.Context, dir string, p progress.Reporter) ([]*MergeResult, error) {
	p = progress.OrNop(p)
	lock, err := lockOutput(dir, p, cacheFiles(dir)...)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	r, err := CheckShards(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	for _, st := range r.Shards {
		sl, err := fsutil.LockOutput(st.Dir)
		var le *fsutil.LockedError
		if errors.As(err, &le) {
			st.Status, st.Err = ShardWriting, le
		} else if err != nil && st.Status != ShardMissing {
			return nil, fmt.Errorf("experiment: %w", err)
		}
		if sl != nil {
			defer sl.Unlock()
		}
		if st.Status != ShardComplete {
			var names []string
			for _, s := range r.Redo() {
				names = append(names, fmt.Sprintf("%d (%s)", s.Index, s.Status))
			}
			return nil, fmt.Errorf("%w: %s: %v; shards not ready: %s", cache.ErrShards, dir, st.Err, strings.Join(names, ", "))
		}
	}
	if err := checkCacheLayout(dir, len(r.Parts) == 2); err != nil {
		return nil, err
	}
	var results []*MergeResult
	for _, part := range r.Parts {
		res, err := mergePart(ctx, r, part, p)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// mergePart merges one part (all of a cache, or train or val) of r.
func mergePart(ctx context.Context, r *ShardReport, part string, p progress.Reporter) (*MergeResult, error) {
	t0 := time.Now()
	out := filepath.Join(r.Dir, part)
	shards := make([]cache.Shard, r.Count)
	for i, st := range r.Shards {
		d := filepath.Join(st.Dir, part)
		m, err := cache.ReadManifest(d)
		if err != nil {
			return nil, err
		}
		shards[i] = cache.Shard{Dir: d, Manifest: m}
	}
	m, err := cache.Merged(shards)
	if err != nil {
		return nil, err
	}
	if why := cache.RanDiff(shards); why != "" {
		p.Log(fmt.Sprintf("warning: the shards of %s ran on different %s: their features may differ in the last bits", out, why))
	}
	res := &MergeResult{Dir: out, N: m.N, Shards: r.Count}
	old, err := cache.ReadManifest(out)
	switch {
	case err == nil && sameMerge(old, m):
		if err := cache.Verify(ctx, out); err != nil {
			return nil, fmt.Errorf("experiment: %s is merged but damaged: %w", out, err)
		}
		res.UpToDate, res.Elapsed = true, time.Since(t0)
		return res, nil
	case err == nil:
		return nil, fmt.Errorf("%w: %s already holds a cache that is not the merge of these shards (another model, settings or listing); move it away to merge into it",
			cache.ErrShards, out)
	case !errors.Is(err, cache.ErrNotCache):
		return nil, err
	}
	p.Log(fmt.Sprintf("merging %d shards into %s: %d images", r.Count, out, m.N))
	if err := cache.Merge(ctx, out, m, shards); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(t0)
	return res, nil
}

// sameMerge reports whether the cache old is the merge m of the shards
// (whose checksums are not computed yet): equal but for the times and
// the finished chunks.
func sameMerge(old, m *cache.Manifest) bool {
	if !old.Complete() || old.Shard != nil {
		return false
	}
	a, b := *old, *m
	a.Done, b.Done = nil, nil
	a.Created, a.Updated, b.Created, b.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	ja, err1 := json.Marshal(&a)
	jb, err2 := json.Marshal(&b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
