package cache

import (
	"fmt"
	"regexp"
	"strconv"
)

// ShardsDir is the folder of a cache folder that holds the shards of a
// sharded extraction, one ordinary cache (or train/val pair) per shard,
// named by ShardName; merging them writes the cache folder's own cache.
const ShardsDir = "shards"

// PlanFile is the listing of a dataset that `extract --plan` writes into
// a cache folder, which the shards read instead of listing the data again.
const PlanFile = "plan.json"

// ShardRef says which part of a sharded extraction a cache holds: rows
// [Start, End) of the Total rows of the listing's part (all images, or
// one side of a --val split), cut at multiples of Batch so that the
// shard's batches are those of a single run. A cache without a ShardRef
// is an ordinary one; a merge writes none.
type ShardRef struct {
	Index int `json:"index"`
	Count int `json:"count"`
	Start int `json:"start"`
	End   int `json:"end"`
	Total int `json:"total"`
	Batch int `json:"batch"`
	// Listing is the hex sha256 of the whole dataset's listing: shards
	// of one extraction agree on it.
	Listing string `json:"listing_sha256"`
	Ran     RanOn  `json:"ran_on"`
}

// RanOn records where a shard was computed: features computed by other
// ONNX Runtime versions, execution providers or CPU instruction sets may
// differ in their last bits.
type RanOn struct {
	ORT         string   `json:"onnxruntime"`
	Provider    string   `json:"provider"`
	CPUFeatures []string `json:"cpu_features"`
	Host        string   `json:"host"`
	Tlearn      string   `json:"tlearn"`
}

// ShardName is the folder name of shard i of n inside ShardsDir: five
// digits each, so that the names sort in index order.
func ShardName(i, n int) string { return fmt.Sprintf("%05d-of-%05d", i, n) }

var shardName = regexp.MustCompile(`^([0-9]{5,})-of-([0-9]{5,})$`)

// ParseShardName reads the index and count of a ShardName; ok is false for
// any other name.
func ParseShardName(name string) (i, n int, ok bool) {
	m := shardName.FindStringSubmatch(name)
	if m == nil {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(m[1])
	n, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || n <= 0 || i >= n || ShardName(i, n) != name {
		return 0, 0, false
	}
	return i, n, true
}

// ShardRange is rows [start, end) of shard i of n over total rows in
// batches of batch: the batches are dealt out in contiguous runs whose
// sizes differ by at most one, so both bounds are multiples of batch (but
// for the last end, total). Shards beyond the number of batches get an
// empty range. It panics on arguments that are out of range (a
// programming error: callers check what the user gave).
func ShardRange(total, batch, i, n int) (start, end int) {
	if total < 0 || batch < 1 || n < 1 || i < 0 || i >= n {
		panic(fmt.Sprintf("cache: ShardRange(%d, %d, %d, %d)", total, batch, i, n))
	}
	batches := (total + batch - 1) / batch
	lo, hi := i*batches/n, (i+1)*batches/n
	return min(lo*batch, total), min(hi*batch, total)
}

// minChunkBatches is the smallest chunk, in batches: a kill loses at most
// this much work, and a chunk's manifest rewrite and fsync cost little next
// to it.
const minChunkBatches = 4

// maxChunks bounds the manifest rewrites (one per chunk, each O(N)) on
// large datasets.
const maxChunks = 500

// ChunkSize is the rows per chunk of a cache of n rows computed in batches
// of b: a multiple of b, so that batches never straddle chunks. A merge
// gives the merged cache the chunks that a single run would have.
func ChunkSize(n, b int) int {
	batches := max(minChunkBatches, ((n+maxChunks-1)/maxChunks+b-1)/b)
	return batches * b
}

// validateShard checks a shard's record against its manifest.
func (m *Manifest) validateShard() error {
	s := m.Shard
	switch {
	case s.Count < 1 || s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard %d of %d", s.Index, s.Count)
	case s.Batch < 1:
		return fmt.Errorf("shard batch %d", s.Batch)
	case s.Start < 0 || s.Start > s.End || s.End > s.Total:
		return fmt.Errorf("shard rows [%d,%d) of %d", s.Start, s.End, s.Total)
	case s.End-s.Start != m.N+len(m.Skipped):
		return fmt.Errorf("shard rows [%d,%d) but %d items and %d left out", s.Start, s.End, m.N, len(m.Skipped))
	}
	return nil
}
