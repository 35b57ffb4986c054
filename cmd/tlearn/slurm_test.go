package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/internal/testutil/slurmtest"
	"github.com/tlearn/tlearn/models"
)

// slurmShards is N of the test's array: --array=0-3, --shard auto/4.
const slurmShards = 4

// slurmJobWithin bounds each wait for the cluster's jobs (seconds each on
// two cores; the scheduler adds about a second per start).
const slurmJobWithin = 3 * time.Minute

// TestSlurmShardedExtract runs the Slurm runbook (deploy/slurm) for real
// on a one-node cluster of Debian's Slurm (internal/testutil/slurmtest):
// submit.sh submits the plan, an array of 4 shard tasks over a small
// dataset with a synthetic VGG16, and the merge after any of them. One
// shard is stopped after its first chunk; a second writer of that shard is
// refused, naming the holder; then the shard is killed (SIGKILL). The
// merge, which runs since it waits with afterany, refuses and `cache merge
// --check` names the shard and prints the command that reruns it;
// `submit.sh --rerun I` reruns that index, which resumes from its finished
// chunks, and merges. The merged features.npy and labels.npy (train and
// val) must equal byte for byte those of a single run made with the same
// threads. The runbook's scripts run as they are but for the sizes (N, the
// CPUs and memory of a task, a smaller --batch for a small dataset).
func TestSlurmShardedExtract(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a Slurm cluster")
	}
	ortlibtest.Init(t)
	bin := buildTlearn(t)
	c := slurmtest.Start(t)
	t.Logf("Slurm cluster started in %v", c.Started.Round(time.Millisecond))

	dir := t.TempDir()
	model, data, cacheDir := filepath.Join(dir, "model"), filepath.Join(dir, "data"), filepath.Join(dir, "cache")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	// 4 shards of about 7 chunks of train rows each (--batch 2: chunks of 8).
	for i, class := range []string{"cat", "dog", "owl"} {
		fixtures.ClassImages(t, data, class, 96+8*i, uint64(i))
	}
	runbook := slurmCopyRunbook(t, filepath.Join(dir, "slurm"))
	work := filepath.Join(dir, "work") // sbatch's folder: the jobs' .out files
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	lib, _ := ortlib.Loaded()
	env := append(c.Env(), "TLEARN="+bin, "MODEL="+model, "DATA="+data, "CACHE="+cacheDir, "VAL=0.25", "SEED=1",
		"TLEARN_ORT_LIB="+lib.Path, "TLEARN_DEVICE=cpu")
	submit := func(args ...string) map[string]string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{filepath.Join(runbook, "submit.sh")}, args...)...)
		cmd.Env, cmd.Dir = env, work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("submit.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		ids := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^(plan|shards|merge): +job (\d+)`).FindAllStringSubmatch(string(out), -1) {
			ids[m[1]] = m[2]
		}
		if ids["shards"] == "" || ids["merge"] == "" {
			t.Fatalf("submit.sh printed no job ids:\n%s", out)
		}
		return ids
	}

	start := time.Now()
	ids := submit()
	if k := c.Wait(t, ids["plan"], slurmJobWithin)[0]; k.State != "COMPLETED" {
		t.Fatalf("the plan: %v\n%s", k, slurmJobOutput(t, work, "tlearn-plan-"+ids["plan"]+".out"))
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "plan.json")); err != nil {
		t.Errorf("the plan job wrote no plan.json: %v", err)
	}

	// Stop the first shard seen with a finished chunk and unfinished ones.
	victim, pids := slurmStopShardMidway(t, c, ids["shards"], cacheDir)
	shardDir := filepath.Join(cacheDir, "shards", fmt.Sprintf("%05d-of-%05d", victim, slurmShards))
	t.Logf("shard %d stopped after its first chunk (pids %v)", victim, pids)

	// A second writer of the running shard (a requeue, a replacement pod)
	// is refused at once, naming the holder.
	t0 := time.Now()
	code, _, errs := runIn(t, bin, work, []string{"extract", "--model", model, "--data", data, "--cache", cacheDir,
		"--val", "0.25", "--seed", "1", "--batch", "2", "--threads", "1", "--shard", fmt.Sprintf("%d/%d", victim, slurmShards)})
	holder := false
	for _, pid := range pids {
		holder = holder || strings.Contains(errs, "pid "+strconv.Itoa(pid))
	}
	if code == 0 || !holder || !strings.Contains(errs, shardDir) {
		t.Errorf("a second writer of shard %d: exit %d, stderr %q; want a refusal naming %s and its holder (one of pids %v)", victim, code, errs, shardDir, pids)
	}
	if took := time.Since(t0); took > 30*time.Second {
		t.Errorf("the second writer took %v to be refused: it waited for the lock", took)
	}

	c.KillTask(t, ids["shards"], victim)
	tasks := slurmtest.ByIndex(c.Wait(t, ids["shards"], slurmJobWithin))
	for i := range slurmShards {
		k := tasks[i]
		if i == victim {
			if k.State != "FAILED" {
				t.Errorf("the killed shard task: %v, want FAILED", k)
			}
		} else if k.State != "COMPLETED" {
			t.Errorf("shard task %d: %v, want COMPLETED\n%s", i, k, slurmJobOutput(t, work, fmt.Sprintf("tlearn-extract-%s_%d.out", ids["shards"], i)))
		}
	}
	// The merge ran (afterany) and refused.
	if k := c.Wait(t, ids["merge"], slurmJobWithin)[0]; k.State != "FAILED" {
		t.Errorf("the merge after a killed shard: %v, want FAILED (it must refuse)", k)
	}
	mergeOut := slurmJobOutput(t, work, "tlearn-merge-"+ids["merge"]+".out")
	rerun := fmt.Sprintf("--shard %d/%d", victim, slurmShards)
	if !strings.Contains(mergeOut, filepath.Base(shardDir)) {
		t.Errorf("the merge job's output does not name shard %s:\n%s", filepath.Base(shardDir), mergeOut)
	}
	code, out, errs := runIn(t, bin, work, []string{"cache", "merge", "--check", cacheDir})
	if code == 0 || !strings.Contains(out+errs, filepath.Base(shardDir)) || !strings.Contains(out+errs, rerun) {
		t.Errorf("cache merge --check after a killed shard: exit %d; want non-zero, naming %s and printing a command with %q:\n%s%s",
			code, filepath.Base(shardDir), rerun, out, errs)
	}
	for _, name := range []string{"train", "val"} {
		if _, err := os.Stat(filepath.Join(cacheDir, name, "manifest.json")); err == nil {
			t.Errorf("the refused merge left %s/manifest.json", name)
		}
	}

	// The rerun of that index resumes, and the merge after it succeeds.
	again := submit("--rerun", strconv.Itoa(victim))
	k := slurmtest.ByIndex(c.Wait(t, again["shards"], slurmJobWithin))[victim]
	rerunOut := slurmJobOutput(t, work, fmt.Sprintf("tlearn-extract-%s_%d.out", again["shards"], victim))
	if k.State != "COMPLETED" {
		t.Fatalf("the rerun of shard %d: %v\n%s", victim, k, rerunOut)
	}
	if !strings.Contains(rerunOut, "resuming") {
		t.Errorf("the rerun of shard %d did not resume from its finished chunks:\n%s", victim, rerunOut)
	}
	if k := c.Wait(t, again["merge"], slurmJobWithin)[0]; k.State != "COMPLETED" {
		t.Fatalf("the merge after the rerun: %v\n%s", k, slurmJobOutput(t, work, "tlearn-merge-"+again["merge"]+".out"))
	}
	t.Logf("the sharded job on Slurm took %v", time.Since(start).Round(time.Millisecond))

	single := filepath.Join(dir, "single")
	if code, _, errs := runIn(t, bin, work, []string{"extract", "--model", model, "--data", data, "--cache", single,
		"--val", "0.25", "--seed", "1", "--batch", "2", "--threads", "1"}); code != 0 {
		t.Fatalf("the single run: exit %d\n%s", code, errs)
	}
	for _, part := range []string{"train", "val"} {
		for _, f := range []string{"features.npy", "labels.npy"} {
			want, err := os.ReadFile(filepath.Join(single, part, f))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(cacheDir, part, f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%s of the merged shards differs from the single run's%s", part, f, firstDiff(string(want), string(got)))
			}
		}
		if _, err := cache.Open(filepath.Join(cacheDir, part)); err != nil {
			t.Errorf("the merged %s cache does not open: %v", part, err)
		}
	}
}

// slurmCopyRunbook copies deploy/slurm into dir with the sizes of this test: N
// 4 instead of 16 (both where the array's range and --shard say it), one
// CPU and 1 GB per task, and --batch 2 for a dataset of a few hundred
// images. Each replaced text must be found exactly once, so that a change
// of the runbook shows here.
func slurmCopyRunbook(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join("..", "..", "deploy", "slurm")
	edits := map[string][][2]string{
		"extract.sbatch": {
			{"#SBATCH --array=0-15\n", fmt.Sprintf("#SBATCH --array=0-%d\n", slurmShards-1)},
			{"--shard auto/16\n", fmt.Sprintf("--shard auto/%d --batch 2\n", slurmShards)},
			{"#SBATCH --cpus-per-task=8\n", "#SBATCH --cpus-per-task=1\n"},
			{"#SBATCH --mem=8G\n", "#SBATCH --mem=1G\n"},
		},
		"plan.sbatch":  {{"#SBATCH --mem=4G\n", "#SBATCH --mem=1G\n"}},
		"merge.sbatch": {{"#SBATCH --mem=4G\n", "#SBATCH --mem=1G\n"}},
		"submit.sh":    nil,
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, reps := range edits {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, r := range reps {
			if n := strings.Count(s, r[0]); n != 1 {
				t.Fatalf("deploy/slurm/%s holds %q %d times, want once: update this test with the runbook", name, r[0], n)
			}
			s = strings.Replace(s, r[0], r[1], 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// slurmStopShardMidway polls the train manifests of the array's shards until one
// has finished a chunk and not all of them, then stops that task's
// processes (SIGSTOP) and returns its index and pids; the task holds its
// shard's lock until they are killed.
func slurmStopShardMidway(t *testing.T, c *slurmtest.Cluster, array, cacheDir string) (int, []int) {
	t.Helper()
	deadline := time.Now().Add(slurmJobWithin)
	asked := time.Now()
	for time.Now().Before(deadline) {
		for i := range slurmShards {
			m := slurmShardManifest(filepath.Join(cacheDir, "shards", fmt.Sprintf("%05d-of-%05d", i, slurmShards), "train"))
			if m == nil || len(m.Done) == 0 || m.Complete() {
				continue
			}
			pids := c.TaskPIDs(array, i)
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGSTOP)
			}
			m = slurmShardManifest(filepath.Join(cacheDir, "shards", fmt.Sprintf("%05d-of-%05d", i, slurmShards), "train"))
			if len(pids) > 0 && m != nil && !m.Complete() {
				return i, pids
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		// scontrol takes milliseconds: ask it only now and then.
		if time.Since(asked) > 200*time.Millisecond {
			if ks := c.Tasks(t, array); slurmAllDone(ks) {
				t.Fatalf("every shard finished before one could be stopped midway: %v", ks)
			}
			asked = time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no shard had finished a chunk after %v: %v", slurmJobWithin, c.Tasks(t, array))
	return 0, nil
}

func slurmAllDone(ks []slurmtest.Task) bool {
	for _, k := range ks {
		if !k.Done() {
			return false
		}
	}
	return len(ks) > 0
}

// slurmShardManifest reads a cache's manifest.json; nil while there is none or
// it cannot be read (being replaced).
func slurmShardManifest(dir string) *cache.Manifest {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil
	}
	var m cache.Manifest
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return &m
}

// slurmJobOutput is a job's .out file, for failure messages and checks.
func slurmJobOutput(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", name, err)
	}
	return string(b)
}
