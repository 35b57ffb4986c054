package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
)

// openListing lists the dataset of an extraction, or for a shard reads
// the listing of the cache folder's plan when there is one: the shards of
// a million-object bucket then list it once, not once each. A plan of
// another dataset or split is refused, naming both.
func openListing(ctx context.Context, s ExtractSettings) (*dataset.Source, error) {
	ds := dataset.Settings{Strict: s.Strict}
	if s.Shard == nil {
		return dataset.OpenData(ctx, s.Data, ds)
	}
	pl, err := ReadPlan(s.Cache)
	if errors.Is(err, os.ErrNotExist) {
		return dataset.OpenData(ctx, s.Data, ds)
	}
	if err != nil {
		return nil, err
	}
	data := s.Data
	if !dataset.IsURL(data) {
		if data, err = filepath.Abs(data); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
	}
	if why := pl.differs(data, s.Val, s.Seed); why != "" {
		return nil, fmt.Errorf("%w: %s was written for %s; give the same dataset and split, or write the plan again",
			ErrPlanMismatch, filepath.Join(s.Cache, cache.PlanFile), why)
	}
	return dataset.FromListing(ctx, pl.Listing, ds)
}

// shardParts cuts each part of an extraction (n items in all) to shard
// sh's run of its batches.
func shardParts(parts []extractPart, n, batch int, sh Shard, listing, version string) []extractPart {
	out := make([]extractPart, len(parts))
	for k, part := range parts {
		idx := part.idx
		if idx == nil {
			idx = make([]int, n)
			for i := range idx {
				idx[i] = i
			}
		}
		start, end := cache.ShardRange(len(idx), batch, sh.Index, sh.Count)
		part.idx = idx[start:end:end]
		part.shard = &cache.ShardRef{Index: sh.Index, Count: sh.Count, Start: start, End: end, Total: len(idx),
			Batch: batch, Listing: listing, Ran: cache.RanOn{Tlearn: version}}
		out[k] = part
	}
	return out
}
