package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/models"
)

// shardFixture is a prepared tiny VGG16 and a dataset of 3 classes (5, 6
// and 7 images: 18 in all).
type shardFixture struct{ model, data string }

func newShardFixture(t *testing.T) shardFixture {
	t.Helper()
	ortlibtest.Init(t)
	root := t.TempDir()
	f := shardFixture{model: filepath.Join(root, "model"), data: filepath.Join(root, "data")}
	if _, err := models.WriteTinyPrepared(f.model, 1); err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{"cat", "dog", "owl"} {
		fixtures.ClassImages(t, f.data, c, 5+i, uint64(10+i))
	}
	return f
}

// extractArgs is an extract command of f into dir with the settings more.
func (f shardFixture) extractArgs(dir string, more ...string) []string {
	return append([]string{"extract", "--model", f.model, "--data", f.data, "--cache", dir, "--size", exportSize,
		"--device", "cpu", "--threads", "1"}, more...)
}

// shardAll runs every shard of n into dir.
func (f shardFixture) shardAll(t *testing.T, dir string, n int, more ...string) {
	t.Helper()
	for i := range n {
		mustTlearn(t, f.extractArgs(dir, append(slices.Clone(more), "--shard", fmt.Sprintf("%d/%d", i, n))...)...)
	}
}

// cacheParts are the cache folders of a cache folder: itself, or train
// and val.
func cacheParts(dir string) []string {
	if _, err := os.Stat(filepath.Join(dir, "train")); err == nil {
		return []string{filepath.Join(dir, "train"), filepath.Join(dir, "val")}
	}
	return []string{dir}
}

// sameCache fails unless the caches (or train/val pairs) in got and want
// hold byte-identical arrays and manifests equal but for their times.
func sameCache(t *testing.T, got, want string) {
	t.Helper()
	gp, wp := cacheParts(got), cacheParts(want)
	if len(gp) != len(wp) {
		t.Fatalf("%s has %d caches, %s %d", got, len(gp), want, len(wp))
	}
	for k := range gp {
		for _, name := range []string{cache.FeaturesFile, cache.LabelsFile, cache.MapsFile} {
			a, errA := os.ReadFile(filepath.Join(gp[k], name))
			b, errB := os.ReadFile(filepath.Join(wp[k], name))
			if (errA == nil) != (errB == nil) {
				t.Errorf("%s: %s in the merge: %v, in the single run: %v", name, gp[k], errA, errB)
				continue
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s of %s differs from the single run's (%d and %d bytes)", name, gp[k], len(a), len(b))
			}
		}
		a := maskJSON(mustRead(t, filepath.Join(gp[k], cache.ManifestFile)))
		b := maskJSON(mustRead(t, filepath.Join(wp[k], cache.ManifestFile)))
		if !bytes.Equal(a, b) {
			t.Errorf("manifest of %s differs from the single run's%s", gp[k], firstDiff(string(b), string(a)))
		}
		// maskJSON hides "done": compare the checksums themselves.
		ma, err := cache.ReadManifest(gp[k])
		if err != nil {
			t.Fatal(err)
		}
		mb, err := cache.ReadManifest(wp[k])
		if err != nil {
			t.Fatal(err)
		}
		ja, _ := json.Marshal(ma.Done)
		jb, _ := json.Marshal(mb.Done)
		if !bytes.Equal(ja, jb) {
			t.Errorf("chunks of %s: %s, the single run's %s", gp[k], ja, jb)
		}
		c, err := cache.Open(gp[k])
		if err != nil {
			t.Errorf("the merged cache does not open: %v", err)
		}
		c.Close()
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShardMergeMatchesSingleRun: the shards of an extraction, merged,
// are the single run's cache byte for byte (manifest but for times), with
// --val, --maps and --views, with and without a plan, with shards that get
// no rows (more shards than batches).
func TestShardMergeMatchesSingleRun(t *testing.T) {
	f := newShardFixture(t)
	for _, tc := range []struct {
		desc  string
		n     int
		plan  bool
		flags []string
	}{
		{"val and maps, empty shards", 5, false, []string{"--val", "0.34", "--seed", "3", "--maps", "--batch", "2"}},
		{"one cache, plan", 3, true, []string{"--batch", "3", "--interpolation", "bilinear"}},
		{"views, val, plan", 4, true, []string{"--val", "0.3", "--views", "3", "--augment", "flip,crop", "--augment-seed", "5", "--batch", "4", "--maps"}},
		{"one shard", 1, false, []string{"--batch", "4"}},
		{"more shards than batches", 8, false, []string{"--batch", "4", "--maps"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			root := t.TempDir()
			single, sharded := filepath.Join(root, "single"), filepath.Join(root, "sharded")
			mustTlearn(t, f.extractArgs(single, tc.flags...)...)
			if tc.plan {
				var planFlags []string
				for i := 0; i < len(tc.flags); i++ {
					if tc.flags[i] == "--val" || tc.flags[i] == "--seed" {
						planFlags = append(planFlags, tc.flags[i], tc.flags[i+1])
					}
				}
				mustTlearn(t, append([]string{"extract", "--plan", "--data", f.data, "--cache", sharded}, planFlags...)...)
			}
			f.shardAll(t, sharded, tc.n, tc.flags...)
			code, stdout, errs := runTlearn(t, "cache", "merge", "--check", sharded)
			if code != 0 || !strings.Contains(stdout, fmt.Sprintf("all %d shards are complete", tc.n)) {
				t.Fatalf("merge --check: exit %d\n%s%s", code, stdout, errs)
			}
			code, _, errs = runTlearn(t, "cache", "merge", sharded)
			if code != 0 {
				t.Fatalf("merge: exit %d\n%s", code, errs)
			}
			if !strings.Contains(errs, "the shards are kept") || !strings.Contains(errs, "rm -r "+filepath.Join(sharded, "shards")) {
				t.Errorf("merge does not say how to remove the shards:\n%s", errs)
			}
			sameCache(t, sharded, single)
			// Merging again only checks.
			code, _, errs = runTlearn(t, "cache", "merge", sharded)
			if code != 0 || !strings.Contains(errs, "up to date") {
				t.Errorf("second merge: exit %d, want up to date\n%s", code, errs)
			}
			// The shards are ordinary caches.
			code, stdout, errs = runTlearn(t, "cache", "info", "--verify", experiment.ShardDir(sharded, experiment.Shard{Index: 0, Count: tc.n}))
			host, _ := os.Hostname()
			for _, want := range []string{"complete:      yes", fmt.Sprintf("shard:         0 of %d", tc.n), "ran on:        " + host + ", ONNX Runtime 1."} {
				if code != 0 || !strings.Contains(stdout, want) {
					t.Errorf("cache info of a shard: exit %d, does not say %q\n%s%s", code, want, stdout, errs)
				}
			}
		})
	}
}

// shardSet is a finished sharded cache (--val, --maps, 3 shards) that the
// refusal tests copy and damage.
func shardSet(t *testing.T, f shardFixture) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sharded")
	f.shardAll(t, dir, 3, "--val", "0.34", "--maps", "--batch", "2")
	return dir
}

// editManifest rewrites the manifest of the cache d with edit applied,
// bypassing validation as a hand edit or another tlearn would.
func editManifest(t *testing.T, d string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(d, cache.ManifestFile)
	var m map[string]any
	if err := json.Unmarshal(mustRead(t, p), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestShardMergeRefuses: merge refuses a set that is missing a shard, has
// an unfinished, damaged or differently made one, or ranges that do not
// tile the rows, naming the shard; --check reports each state and the
// commands that redo them, and exits 1; nothing is written.
func TestShardMergeRefuses(t *testing.T) {
	f := newShardFixture(t)
	base := shardSet(t, f)
	shard := func(dir string, i int) string {
		return experiment.ShardDir(dir, experiment.Shard{Index: i, Count: 3})
	}
	if code, _, errs := runTlearn(t, "cache", "info", base); code == 0 || !strings.Contains(errs, "tlearn cache merge --check "+base) {
		t.Errorf("cache info of an unmerged sharded folder: exit %d, want the advice to check the shards\n%s", code, errs)
	}
	other := filepath.Join(t.TempDir(), "other")
	mustTlearn(t, f.extractArgs(other, "--val", "0.34", "--maps", "--batch", "2", "--interpolation", "bicubic", "--shard", "1/3")...)

	for _, tc := range []struct {
		desc   string
		damage func(t *testing.T, dir string)
		merge  []string // what merge's error says
		check  []string // what --check prints
	}{
		{"missing", func(t *testing.T, dir string) { os.RemoveAll(shard(dir, 1)) },
			[]string{"00001-of-00003", "not started", "1 (missing)"},
			[]string{"00001-of-00003  missing", "--shard 1/3", "sbatch --array=1 <your extract script>"}},
		{"started, no manifest", func(t *testing.T, dir string) {
			os.RemoveAll(shard(dir, 2))
			os.MkdirAll(filepath.Join(shard(dir, 2), "train"), 0o755)
		}, []string{"00002-of-00003", "no cache yet"}, []string{"00002-of-00003  missing", "--shard 2/3", "sbatch --array=2 "}},
		{"incomplete", func(t *testing.T, dir string) {
			editManifest(t, filepath.Join(shard(dir, 0), "train"), func(m map[string]any) { m["done"] = []any{} })
		}, []string{"00000-of-00003", "0 of 4 rows done", "0 (incomplete)"},
			[]string{"00000-of-00003  incomplete     2/6 rows", "--shard 0/3", "--maps", "--batch 2", "--val 0.34"}},
		{"bad checksum", func(t *testing.T, dir string) {
			p := filepath.Join(shard(dir, 2), "val", cache.FeaturesFile)
			b := mustRead(t, p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
		}, []string{"corrupt", filepath.Join("00002-of-00003", "val", cache.FeaturesFile)},
			[]string{"00002-of-00003  bad checksum", "--force --shard 2/3"}},
		{"another interpolation", func(t *testing.T, dir string) {
			os.RemoveAll(shard(dir, 1))
			copyTree(t, shard(other, 1), shard(dir, 1))
		}, []string{"00001-of-00003", "interpolation bilinear vs bicubic"}, []string{"00001-of-00003  mismatch", "interpolation"}},
		{"another listing", func(t *testing.T, dir string) {
			for _, part := range []string{"train", "val"} {
				editManifest(t, filepath.Join(shard(dir, 2), part), func(m map[string]any) {
					m["shard"].(map[string]any)["listing_sha256"] = strings.Repeat("0", 64)
				})
			}
		}, []string{"00002-of-00003", "listing"}, []string{"00002-of-00003  mismatch", "listing"}},
		{"overlap", func(t *testing.T, dir string) {
			editManifest(t, filepath.Join(shard(dir, 1), "train"), func(m map[string]any) {
				sh := m["shard"].(map[string]any)
				sh["start"] = sh["start"].(float64) - 2
				sh["end"] = sh["end"].(float64) - 2
			})
		}, []string{"00001-of-00003", "holds rows"}, []string{"00001-of-00003  mismatch", "holds rows"}},
		{"stray count", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "shards", cache.ShardName(0, 4)), 0o755)
		}, []string{"different counts", "00000-of-00004"}, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sharded")
			copyTree(t, base, dir)
			tc.damage(t, dir)
			code, _, errs := runTlearn(t, "cache", "merge", dir)
			if code == 0 {
				t.Fatal("merge succeeded")
			}
			for _, want := range tc.merge {
				if !strings.Contains(errs, want) {
					t.Errorf("merge error does not say %q:\n%s", want, errs)
				}
			}
			// The damage of a bad checksum is found while copying: the
			// parts before it are merged (and kept for the rerun), the
			// damaged one is not.
			for _, part := range []string{"train", "val"} {
				if _, err := os.Stat(filepath.Join(dir, part, cache.ManifestFile)); err == nil && (tc.desc != "bad checksum" || part == "val") {
					t.Errorf("a refused merge wrote %s", filepath.Join(dir, part))
				}
			}
			code, stdout, errs := runTlearn(t, "cache", "merge", "--check", dir)
			if code != 1 {
				t.Errorf("--check: exit %d, want 1\n%s%s", code, stdout, errs)
			}
			for _, want := range tc.check {
				if !strings.Contains(stdout, want) {
					t.Errorf("--check does not say %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// TestShardMergeIgnoresTemporaries: what killed tasks leave (lock files,
// .NAME.tmp-*, .NAME.partial-*) does not stop a merge.
func TestShardMergeIgnoresTemporaries(t *testing.T) {
	f := newShardFixture(t)
	dir := shardSet(t, f)
	single := filepath.Join(t.TempDir(), "single")
	mustTlearn(t, f.extractArgs(single, "--val", "0.34", "--maps", "--batch", "2")...)
	for _, p := range []string{
		filepath.Join(dir, "shards", ".00001-of-00003.lock"),
		filepath.Join(dir, "shards", ".00001-of-00003.tmp-123"),
		filepath.Join(dir, "shards", ".00002-of-00003.partial-9"),
		filepath.Join(experiment.ShardDir(dir, experiment.Shard{Index: 0, Count: 3}), "train", ".manifest.json.tmp-77"),
		filepath.Join(experiment.ShardDir(dir, experiment.Shard{Index: 2, Count: 3}), "val", ".features.npy.tmp-5"),
	} {
		if err := os.WriteFile(p, []byte("left by a killed task"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, errs := runTlearn(t, "cache", "merge", "--check", dir)
	if code != 0 {
		t.Fatalf("--check: exit %d\n%s%s", code, stdout, errs)
	}
	if code, _, errs := runTlearn(t, "cache", "merge", dir); code != 0 {
		t.Fatalf("merge: exit %d\n%s", code, errs)
	}
	sameCache(t, dir, single)
}

// TestShardMergeWarnsWhereRan: shards computed under another ONNX Runtime
// version or CPU features merge with a one-line warning naming them.
func TestShardMergeWarnsWhereRan(t *testing.T) {
	f := newShardFixture(t)
	dir := shardSet(t, f)
	for _, part := range []string{"train", "val"} {
		editManifest(t, filepath.Join(experiment.ShardDir(dir, experiment.Shard{Index: 2, Count: 3}), part), func(m map[string]any) {
			ran := m["shard"].(map[string]any)["ran_on"].(map[string]any)
			ran["onnxruntime"] = "0.9.0"
			ran["cpu_features"] = []string{"sse4.1"}
		})
	}
	code, _, errs := runTlearn(t, "cache", "merge", dir)
	if code != 0 {
		t.Fatalf("merge: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"warning: the shards of " + filepath.Join(dir, "train"), "ONNX Runtime", "0.9.0 (shards 2)", "CPU features", "sse4.1 (shards 2)", "last bits"} {
		if !strings.Contains(errs, want) {
			t.Errorf("merge does not warn %q:\n%s", want, errs)
		}
	}
}

// TestShardMergeResumes: a merge killed after writing part of its arrays
// (temporaries, an array renamed into place, no manifest) is redone by the
// same command, byte for byte.
func TestShardMergeResumes(t *testing.T) {
	f := newShardFixture(t)
	dir := shardSet(t, f)
	single := filepath.Join(t.TempDir(), "single")
	mustTlearn(t, f.extractArgs(single, "--val", "0.34", "--maps", "--batch", "2")...)
	mustTlearn(t, "cache", "merge", dir)
	// What a kill leaves: train merged; val's manifest not yet written,
	// its features renamed into place but cut, its maps a temporary.
	val := filepath.Join(dir, "val")
	os.Remove(filepath.Join(val, cache.ManifestFile))
	b := mustRead(t, filepath.Join(val, cache.FeaturesFile))
	os.WriteFile(filepath.Join(val, cache.FeaturesFile), b[:len(b)/2], 0o644)
	os.Rename(filepath.Join(val, cache.MapsFile), filepath.Join(val, ".maps.npy.tmp-42"))
	os.WriteFile(filepath.Join(filepath.Dir(dir), ".sharded.lock"), []byte("4242\ntlearn cache merge\n"), 0o644)

	code, _, errs := runTlearn(t, "cache", "merge", dir)
	if code != 0 {
		t.Fatalf("merge after a kill: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, filepath.Join(dir, "train")+": up to date") {
		t.Errorf("the merged train part was not kept:\n%s", errs)
	}
	sameCache(t, dir, single)
	if _, err := os.Stat(filepath.Join(val, ".maps.npy.tmp-42")); err == nil {
		t.Error("the killed merge's temporary is still there")
	}
}

// TestShardSecondWriter: a second task on a shard that a live process
// writes (a Slurm requeue, a replacement pod) is refused at once, naming
// the holder's pid, host and command; so is a merge.
func TestShardSecondWriter(t *testing.T) {
	f := newShardFixture(t)
	dir := shardSet(t, f)
	sd := experiment.ShardDir(dir, experiment.Shard{Index: 1, Count: 3})
	l, err := fsutil.LockOutput(sd)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	host, _ := os.Hostname()
	holder := []string{"pid " + strconv.Itoa(os.Getpid()), "on host " + host, strings.Join(os.Args, " ")}
	code, _, errs := runTlearn(t, f.extractArgs(dir, "--val", "0.34", "--maps", "--batch", "2", "--shard", "1/3")...)
	if code == 0 {
		t.Fatal("a second writer of a shard was not refused")
	}
	for _, want := range append([]string{sd, "being written"}, holder...) {
		if !strings.Contains(errs, want) {
			t.Errorf("second writer's error does not say %q:\n%s", want, errs)
		}
	}
	code, _, errs = runTlearn(t, "cache", "merge", dir)
	if code == 0 {
		t.Fatal("merge of a shard being written succeeded")
	}
	for _, want := range append([]string{"00001-of-00003", "being written"}, holder...) {
		if !strings.Contains(errs, want) {
			t.Errorf("merge's error does not say %q:\n%s", want, errs)
		}
	}
	code, stdout, _ := runTlearn(t, "cache", "merge", "--check", dir)
	if code != 1 || !strings.Contains(stdout, "00001-of-00003  being written") || !strings.Contains(stdout, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("--check of a shard being written: exit %d\n%s", code, stdout)
	}
}

// TestShardPlan: --plan lists once (a no-op when nothing changed, refused
// on another listing without --force); shards that disagree with the plan's
// dataset or split are refused naming both.
func TestShardPlan(t *testing.T) {
	f := newShardFixture(t)
	dir := filepath.Join(t.TempDir(), "sharded")
	mustTlearn(t, "extract", "--plan", "--data", f.data, "--cache", dir, "--val", "0.34", "--seed", "2")
	plan := filepath.Join(dir, cache.PlanFile)
	before := mustRead(t, plan)
	code, _, errs := runTlearn(t, "extract", "--plan", "--data", f.data, "--cache", dir, "--val", "0.34", "--seed", "2")
	if code != 0 || !strings.Contains(errs, "up to date") || !bytes.Equal(before, mustRead(t, plan)) {
		t.Errorf("second --plan: exit %d, want an unchanged plan\n%s", code, errs)
	}
	for _, tc := range []struct {
		desc string
		args []string
		want []string
	}{
		{"other val", f.extractArgs(dir, "--val", "0.5", "--seed", "2", "--shard", "0/2"), []string{plan, "validation fraction of 0.34 (not 0.5)", "--plan --force"}},
		{"other seed", f.extractArgs(dir, "--val", "0.34", "--seed", "9", "--shard", "0/2"), []string{plan, "seed 2 (not 9)"}},
		{"other data", append([]string{"extract", "--model", f.model, "--data", f.model, "--cache", dir, "--val", "0.34", "--seed", "2",
			"--size", exportSize, "--device", "cpu", "--threads", "1", "--shard", "0/2"}, nil...), []string{plan, f.data, f.model}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, _, errs := runTlearn(t, tc.args...)
			if code == 0 {
				t.Fatal("a shard that disagrees with the plan ran")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("error does not say %q:\n%s", w, errs)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "shards", cache.ShardName(0, 2), "train")); err == nil {
		t.Error("a refused shard wrote a cache")
	}
	// The plan is what the shards read: a file added to the dataset
	// afterwards is not in the shards.
	fixtures.ClassImages(t, filepath.Join(t.TempDir(), "more"), "cat", 1, 99)
	b := mustRead(t, filepath.Join(f.data, "cat", mustFirst(t, filepath.Join(f.data, "cat"))))
	os.WriteFile(filepath.Join(f.data, "cat", "zz-added.png"), b, 0o644)
	code, _, errs = runTlearn(t, "extract", "--plan", "--data", f.data, "--cache", dir, "--val", "0.34", "--seed", "2")
	if code == 0 || !strings.Contains(errs, "another listing") || !strings.Contains(errs, "--force") {
		t.Errorf("--plan over another listing: exit %d\n%s", code, errs)
	}
	mustTlearn(t, "extract", "--plan", "--data", f.data, "--cache", dir, "--val", "0.34", "--seed", "2", "--force")
	pl, err := experiment.ReadPlan(dir)
	if err != nil || len(pl.Listing.Items) != 19 {
		t.Fatalf("plan after --force: %v, %d items, want 19", err, len(pl.Listing.Items))
	}
	os.Remove(filepath.Join(f.data, "cat", "zz-added.png"))
	// The shards read the plan, not the folder: the one whose rows hold
	// the file removed since fails naming it.
	failed := 0
	for i := range 2 {
		code, _, errs = runTlearn(t, f.extractArgs(dir, "--val", "0.34", "--seed", "2", "--shard", fmt.Sprintf("%d/2", i))...)
		if code != 0 {
			failed++
			if !strings.Contains(errs, "zz-added.png") {
				t.Errorf("shard %d: exit %d, want an error naming zz-added.png\n%s", i, code, errs)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d shards failed on the file removed since the plan, want 1", failed)
	}
}

func mustFirst(t *testing.T, dir string) string {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil || len(e) == 0 {
		t.Fatalf("%s: %v", dir, err)
	}
	return e[0].Name()
}

// syntheticShards writes the n finished shards of a cache of rows × dim
// features (seeded values, no model) into dir/shards, as n extract --shard
// tasks would: for the merge's tests that need more bytes than the tiny
// model's caches hold.
func syntheticShards(t *testing.T, dir string, n, rows, dim int) {
	t.Helper()
	const batch = 8
	classes := []string{"cat", "dog"}
	pre := json.RawMessage(`{"scale":1}`)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range n {
		start, end := cache.ShardRange(rows, batch, i, n)
		m := &cache.Manifest{
			Fingerprint: cache.Fingerprint(cache.FingerprintInput{ExtractorSHA256: "ab", Preset: "vgg16", Size: 32,
				Interpolation: "bilinear", Preprocessing: pre}),
			Model: cache.ModelRef{Dir: "/model", ExtractorSHA256: "ab", Preset: "vgg16"}, Size: 32,
			Interpolation: "bilinear", Preprocessing: pre, DataDir: "/data", Classes: classes,
			N: end - start, ChunkSize: cache.ChunkSize(end-start, batch), FeatureDim: dim,
			Shard: &cache.ShardRef{Index: i, Count: n, Start: start, End: end, Total: rows, Batch: batch, Listing: "l"},
		}
		for r := start; r < end; r++ {
			m.Items = append(m.Items, cache.Item{Path: fmt.Sprintf("%s/%06d.png", classes[r%2], r), Label: r % 2, Size: 1,
				ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		}
		w, err := cache.Create(filepath.Join(dir, cache.ShardsDir, cache.ShardName(i, n)), m)
		if err != nil {
			t.Fatal(err)
		}
		feats := make([]float32, m.ChunkSize*dim)
		labels := make([]int32, m.ChunkSize)
		for _, c := range m.Pending() {
			k := c.End - c.Start
			for j := range feats[:k*dim] {
				feats[j] = float32(rng.NormFloat64())
			}
			for j := range k {
				labels[j] = int32(m.Items[c.Start+j].Label)
			}
			if err := w.Write(c.Start, feats[:k*dim], labels[:k], nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestParseShard: --shard's bad values are refused with what is wrong.
func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		desc, arg  string
		env        map[string]string
		want       experiment.Shard
		wantErrSay string
	}{
		{"index", "3/16", nil, experiment.Shard{Index: 3, Count: 16}, ""},
		{"first", "0/1", nil, experiment.Shard{Index: 0, Count: 1}, ""},
		{"slurm", "auto/8", map[string]string{envSlurmArrayTaskID: "7", envJobCompletionIndex: "2"}, experiment.Shard{Index: 7, Count: 8}, ""},
		{"kubernetes", "auto/8", map[string]string{envJobCompletionIndex: "2"}, experiment.Shard{Index: 2, Count: 8}, ""},
		{"index too large", "16/16", nil, experiment.Shard{}, "out of range: shards of 16 are numbered 0 to 15"},
		{"negative", "-1/4", nil, experiment.Shard{}, "out of range"},
		{"zero count", "0/0", nil, experiment.Shard{}, "at least 1"},
		{"negative count", "0/-2", nil, experiment.Shard{}, "at least 1"},
		{"no slash", "3", nil, experiment.Shard{}, "want I/N"},
		{"garbage", "a/b", nil, experiment.Shard{}, "not a number"},
		{"garbage index", "x/4", nil, experiment.Shard{}, `index "x"`},
		{"auto unset", "auto/4", nil, experiment.Shard{}, "neither $SLURM_ARRAY_TASK_ID"},
		{"auto not a number", "auto/4", map[string]string{envSlurmArrayTaskID: "3-5"}, experiment.Shard{}, `"3-5" (from $SLURM_ARRAY_TASK_ID) is not a number`},
		{"auto too large", "auto/4", map[string]string{envJobCompletionIndex: "4"}, experiment.Shard{}, "index 4 (from $JOB_COMPLETION_INDEX) is out of range"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := parseShard(tc.arg, func(k string) string { return tc.env[k] })
			if tc.wantErrSay == "" {
				if err != nil || got != tc.want {
					t.Errorf("parseShard(%q) = %v, %v; want %v", tc.arg, got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSay) {
				t.Errorf("parseShard(%q) = %v, %v; want an error saying %q", tc.arg, got, err, tc.wantErrSay)
			}
		})
	}
	t.Setenv(envSlurmArrayTaskID, "")
	t.Setenv(envJobCompletionIndex, "")
	code, stdout, errs := runTlearn(t, "extract", "--model", "m", "--data", "d", "--cache", "c", "--shard", "4/4")
	if code != 2 || stdout != "" || !strings.Contains(errs, "--shard") || !strings.Contains(errs, "out of range") {
		t.Errorf("extract --shard 4/4: exit %d, want 2 naming --shard\n%s", code, errs)
	}
}

// TestShardMergeSkipBad: with --skip-bad, the images that the shards left
// out are the merged cache's, in listing order, and its rows are the
// single run's.
func TestShardMergeSkipBad(t *testing.T) {
	f := newShardFixture(t)
	for _, bad := range []string{filepath.Join("cat", "zz-bad.png"), filepath.Join("owl", "aa-bad.png")} {
		if err := os.WriteFile(filepath.Join(f.data, bad), []byte("not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	single, sharded := filepath.Join(root, "single"), filepath.Join(root, "sharded")
	flags := []string{"--batch", "2", "--skip-bad"}
	mustTlearn(t, f.extractArgs(single, flags...)...)
	f.shardAll(t, sharded, 4, flags...)
	if code, _, errs := runTlearn(t, "cache", "merge", sharded); code != 0 {
		t.Fatalf("merge: exit %d\n%s", code, errs)
	}
	got, err := cache.ReadManifest(sharded)
	if err != nil {
		t.Fatal(err)
	}
	want, err := cache.ReadManifest(single)
	if err != nil {
		t.Fatal(err)
	}
	paths := func(m *cache.Manifest) (items, skipped []string) {
		for _, it := range m.Items {
			items = append(items, it.Path)
		}
		for _, s := range m.Skipped {
			skipped = append(skipped, s.Path)
		}
		return items, skipped
	}
	gi, gs := paths(got)
	wi, ws := paths(want)
	if !slices.Equal(gi, wi) || !slices.Equal(gs, ws) || len(gs) != 2 || got.ChunkSize != want.ChunkSize {
		t.Errorf("merged rows %v, left out %v, chunk %d; the single run's %v, %v, %d", gi, gs, got.ChunkSize, wi, ws, want.ChunkSize)
	}
	c, err := cache.Open(sharded)
	if err != nil {
		t.Fatalf("the merged cache does not open: %v", err)
	}
	c.Close()
}
