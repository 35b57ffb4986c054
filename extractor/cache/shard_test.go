package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestShardRange: for many sizes, batches and shard counts, the shards'
// ranges tile the rows in order (their union is every row, none twice),
// every bound is a multiple of the batch but the last end, and the shards
// get batch counts that differ by at most one.
func TestShardRange(t *testing.T) {
	for total := 0; total <= 70; total++ {
		for _, batch := range []int{1, 2, 3, 8, 32} {
			for n := 1; n <= 12; n++ {
				next, most, least := 0, 0, total+1
				for i := range n {
					s, e := ShardRange(total, batch, i, n)
					if s != next || e < s {
						t.Fatalf("ShardRange(%d, %d, %d, %d) = [%d,%d), want it to start at %d", total, batch, i, n, s, e, next)
					}
					if s%batch != 0 || (e%batch != 0 && e != total) {
						t.Fatalf("ShardRange(%d, %d, %d, %d) = [%d,%d): not batch-aligned", total, batch, i, n, s, e)
					}
					b := (e - s + batch - 1) / batch
					most, least = max(most, b), min(least, b)
					next = e
				}
				if next != total {
					t.Fatalf("shards of (%d, %d, %d) end at %d, want %d", total, batch, n, next, total)
				}
				if most-least > 1 {
					t.Fatalf("shards of (%d, %d, %d) hold %d to %d batches", total, batch, n, least, most)
				}
			}
		}
	}
}

func TestParseShardName(t *testing.T) {
	for _, tc := range []struct {
		name string
		i, n int
		ok   bool
	}{
		{"00003-of-00016", 3, 16, true},
		{"00000-of-00001", 0, 1, true},
		{"123456-of-200000", 123456, 200000, true},
		{"00016-of-00016", 0, 0, false},
		{"3-of-16", 0, 0, false},
		{"00003-of-00016.tmp-1", 0, 0, false},
		{".00003-of-00016.lock", 0, 0, false},
		{"00000-of-00000", 0, 0, false},
		{"000003-of-00016", 0, 0, false},
	} {
		i, n, ok := ParseShardName(tc.name)
		if ok != tc.ok || (ok && (i != tc.i || n != tc.n)) {
			t.Errorf("ParseShardName(%q) = %d, %d, %v; want %d, %d, %v", tc.name, i, n, ok, tc.i, tc.n, tc.ok)
		}
		if ok && ShardName(i, n) != tc.name {
			t.Errorf("ShardName(%d, %d) = %q, want %q", i, n, ShardName(i, n), tc.name)
		}
	}
}

// writeWhole writes the complete cache of m (rowValues) in dir in batches.
func writeWhole(t *testing.T, dir string, m *Manifest, batch int) {
	t.Helper()
	w, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, m.Pending(), batch)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeShards writes the n shards of whole (rows [start,end) each, values
// of their rows in whole) under dir, as extract --shard does.
func writeShards(t *testing.T, dir string, whole *Manifest, batch, n int) []Shard {
	t.Helper()
	var shards []Shard
	for i := range n {
		start, end := ShardRange(whole.N, batch, i, n)
		m := *whole
		m.Items = slices.Clone(whole.Items[start:end])
		m.N = end - start
		m.ChunkSize = ChunkSize(m.N, batch)
		m.Shard = &ShardRef{Index: i, Count: n, Start: start, End: end, Total: whole.N, Batch: batch, Listing: "l1",
			Ran: RanOn{ORT: "1.22.0", Provider: "cpu", CPUFeatures: []string{"avx2"}, Host: fmt.Sprint("node", i)}}
		d := filepath.Join(dir, ShardName(i, n))
		w, err := Create(d, &m)
		if err != nil {
			t.Fatal(err)
		}
		for s := 0; s < m.N; s += batch {
			k := min(batch, m.N-s)
			f, l, mp := rowValues(whole, start+s, k)
			if err := w.Write(s, f, l, mp); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		sm, err := ReadManifest(d)
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, Shard{Dir: d, Manifest: sm})
	}
	return shards
}

// TestMergeMatchesWhole: the merge of the shards of a cache is that cache,
// array bytes and chunk checksums, with maps and with views; shards that
// got no rows are merged too.
func TestMergeMatchesWhole(t *testing.T) {
	for _, tc := range []struct {
		desc            string
		n, batch, count int
		maps            []int
		views           int
		piece           int64 // mergePiece, when not the default
	}{
		{"features", 1000, 8, 7, nil, 0, 0},
		{"maps", 97, 4, 5, []int{3, 2, 2}, 0, 0},
		{"views", 50, 2, 4, []int{2, 1, 1}, 3, 0},
		{"more shards than batches", 9, 4, 6, nil, 0, 0},
		{"pieces that split rows and chunks", 1000, 8, 7, []int{3, 2, 2}, 0, 28},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.piece > 0 {
				old := mergePiece
				mergePiece = tc.piece
				defer func() { mergePiece = old }()
			}
			dir := t.TempDir()
			whole := testManifest(tc.n, 5, ChunkSize(tc.n, tc.batch), tc.maps)
			if tc.views > 0 {
				whole.Views, whole.Augment = tc.views, &AugmentRef{Spec: "flip", Seed: 1}
			}
			writeWhole(t, filepath.Join(dir, "whole"), whole, tc.batch)
			shards := writeShards(t, filepath.Join(dir, "shards"), whole, tc.batch, tc.count)
			m, err := Merged(shards)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "merged")
			if err := Merge(context.Background(), out, m, shards); err != nil {
				t.Fatal(err)
			}
			want, err := ReadManifest(filepath.Join(dir, "whole"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadManifest(out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Shard != nil || got.N != want.N || got.ChunkSize != want.ChunkSize || !slices.EqualFunc(got.Done, want.Done, sameRange) {
				t.Errorf("merged manifest: N %d, chunk %d, shard %v, done %v; want N %d, chunk %d, done %v",
					got.N, got.ChunkSize, got.Shard, got.Done, want.N, want.ChunkSize, want.Done)
			}
			for _, a := range want.Arrays() {
				wb, _ := os.ReadFile(filepath.Join(dir, "whole", a.File))
				gb, err := os.ReadFile(filepath.Join(out, a.File))
				if err != nil || !bytes.Equal(gb, wb) {
					t.Errorf("%s: merged differs from the whole cache's (%v)", a.File, err)
				}
			}
			c, err := Open(out)
			if err != nil {
				t.Fatalf("the merged cache does not open: %v", err)
			}
			c.Close()
		})
	}
}

func sameRange(a, b Range) bool {
	return a.Start == b.Start && a.End == b.End && fmt.Sprint(a.Checksums) == fmt.Sprint(b.Checksums)
}

// TestMergeStopsAtDamage: a shard whose bytes changed after extraction
// stops the merge with ErrCorrupt naming the file, and no manifest is
// written.
func TestMergeStopsAtDamage(t *testing.T) {
	dir := t.TempDir()
	whole := testManifest(40, 4, ChunkSize(40, 4), nil)
	shards := writeShards(t, dir, whole, 4, 3)
	p := filepath.Join(shards[1].Dir, FeaturesFile)
	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 0x40
	os.WriteFile(p, b, 0o644)
	m, err := Merged(shards)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "merged")
	err = Merge(context.Background(), out, m, shards)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Fatalf("merge of a damaged shard: %v, want ErrCorrupt naming %s", err, p)
	}
	if _, err := os.Stat(filepath.Join(out, ManifestFile)); err == nil {
		t.Error("a failed merge wrote a manifest")
	}
}

// TestMergedRefuses: shards that cannot make one cache are refused,
// naming them.
func TestMergedRefuses(t *testing.T) {
	whole := testManifest(40, 4, ChunkSize(40, 4), nil)
	base := writeShards(t, t.TempDir(), whole, 4, 4)
	edit := func(i int, f func(m *Manifest)) func([]Shard) []Shard {
		return func(s []Shard) []Shard {
			m := *s[i].Manifest
			sh := *m.Shard
			m.Shard = &sh
			f(&m)
			s[i].Manifest = &m
			return s
		}
	}
	for _, tc := range []struct {
		desc  string
		edit  func([]Shard) []Shard
		wants []string
	}{
		{"missing", func(s []Shard) []Shard { return slices.Delete(s, 2, 3) }, []string{"3 shards of 4"}},
		{"out of order", func(s []Shard) []Shard { s[1], s[2] = s[2], s[1]; return s }, []string{"says it is shard 2 of 4, want 1 of 4"}},
		{"incomplete", edit(3, func(m *Manifest) { m.Done = m.Done[:0] }), []string{ShardName(3, 4), "unfinished"}},
		{"another model", edit(1, func(m *Manifest) { m.Model.ExtractorSHA256 = "def" }), []string{ShardName(0, 4), ShardName(1, 4), "model"}},
		{"another preprocessing", edit(1, func(m *Manifest) { m.Fingerprint = strings.Repeat("1", 64) }), []string{"preprocessing"}},
		{"another size", edit(2, func(m *Manifest) { m.Size = 64 }), []string{"size 32 vs 64"}},
		{"other classes", edit(2, func(m *Manifest) { m.Classes = []string{"cat", "cow"} }), []string{"classes"}},
		{"other views", edit(2, func(m *Manifest) { m.Views, m.Augment = 2, &AugmentRef{Spec: "flip", Seed: 1} }), []string{"views"}},
		{"another listing", edit(3, func(m *Manifest) { m.Shard.Listing = "l2" }), []string{"listing"}},
		{"another batch", edit(3, func(m *Manifest) { m.Shard.Batch = 8 }), []string{"batch"}},
		{"gap", edit(2, func(m *Manifest) { m.Shard.Start += 4 }), []string{"in no shard", ShardName(2, 4)}},
		{"overlap", edit(2, func(m *Manifest) { m.Shard.Start -= 4 }), []string{"overlaps", ShardName(2, 4)}},
		{"short", edit(3, func(m *Manifest) { m.Shard.End -= 4 }), []string{"in no shard"}},
		{"not a shard", edit(1, func(m *Manifest) { m.Shard = nil }), []string{"not a shard"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Merged(tc.edit(slices.Clone(base)))
			if !errors.Is(err, ErrShards) {
				t.Fatalf("Merged: %v, want ErrShards", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestRanDiff: shards that ran on other ONNX Runtime versions, providers
// or CPU features are named; other hosts alone are not a difference.
func TestRanDiff(t *testing.T) {
	s := writeShards(t, t.TempDir(), testManifest(24, 2, 8, nil), 2, 3)
	if d := RanDiff(s); d != "" {
		t.Errorf("RanDiff of shards on three hosts with one setup = %q, want none", d)
	}
	s[2].Manifest.Shard.Ran.CPUFeatures = []string{"avx2", "avx512f"}
	s[1].Manifest.Shard.Ran.ORT = "1.20.1"
	d := RanDiff(s)
	for _, w := range []string{"ONNX Runtime 1.22.0 (shards 0,2) vs 1.20.1 (shards 1)", "CPU features avx2 (shards 0,1) vs avx2,avx512f (shards 2)"} {
		if !strings.Contains(d, w) {
			t.Errorf("RanDiff = %q, want it to say %q", d, w)
		}
	}
}

// TestEmptyShardIsACache: a shard that got no rows is a complete cache that
// opens with no rows; a cache without a shard record still needs rows.
func TestEmptyShardIsACache(t *testing.T) {
	dir := t.TempDir()
	m := testManifest(0, 4, 8, []int{2, 1, 1})
	m.Shard = &ShardRef{Index: 5, Count: 6, Start: 12, End: 12, Total: 12, Batch: 4, Listing: "l"}
	w, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	c, err := Open(dir)
	if err != nil {
		t.Fatalf("an empty shard does not open: %v", err)
	}
	if c.Len() != 0 || !c.Manifest.Complete() {
		t.Errorf("empty shard: %d rows, complete %v", c.Len(), c.Manifest.Complete())
	}
	c.Close()
	m.Shard = nil
	if _, err := Create(t.TempDir(), m); err == nil {
		t.Error("a cache of no rows without a shard record was created")
	}
}
