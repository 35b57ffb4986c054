package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/ortlib"
)

// faultsSeed is the seed of the kill moments; TLEARN_FAULTS_SEED replaces
// it to reproduce a run that printed another.
const faultsSeed = 20261202

// maskedKeys are the JSON fields that record when or how fast something
// ran: the only bytes in which a rerun may differ from an uninterrupted run.
var maskedKeys = map[string]bool{
	"created": true, "seconds": true, "images_per_second": true, "elapsed": true,
	"duration": true, "finished": true, "started": true, "updated": true, "done": true,
}

// timestamp is a recorded time in a text file (compare's "Generated ..."
// in report.md).
var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)

// took is a duration in a text file (compare's report.md).
var took = regexp.MustCompile(`\b[0-9.]+ ?(µs|ms|s|min|h)\b`)

// rate is a speed or a ratio of speeds in a text file (compare --int8's
// report.md).
var rate = regexp.MustCompile(`\b[0-9.]+( images/s\b|×)`)

// faultCase is one long command; {out} in args stands for its output.
type faultCase struct {
	desc string
	args []string
	// setup, when set, fills {out} before each run: the input of a
	// command that only reads (cache info --verify), which must then
	// leave the folder as it found it.
	setup func(t *testing.T, out string)
	// stdout: the records on stdout are part of the output (a rerun, or a
	// run that exited before its kill, must print the uninterrupted run's).
	stdout bool
	// midway, when set, adds one kill at the moment it first reports true
	// of the run's folder (polled): a moment that the seeded ones may
	// miss. The rerun after it must print resumed on stderr.
	midway  func(dir string, ran time.Duration) bool
	resumed string
	// skip, when set, names the bug that keeps this check off.
	skip string
}

// TestFaultsKillAndRerun kills each long command with SIGKILL at seeded
// random moments in (0, the uninterrupted run's duration) and reruns it as
// a user would (the same command, no --force; a rerun that refuses a
// finished output is taken at its word): the folder of the output, which
// is also the command's working folder, must then hold what an
// uninterrupted run's holds, byte for byte (PNG plots too) but for
// recorded times (maskedKeys, timestamp, took, a CSV's seconds column) and
// the temporary folder's path, and nothing else: no .tmp-*, .partial-*,
// probe or .lock file. A command that only reads (cache info --verify)
// must leave its folder as it was and print what it printed. models fetch
// downloads from a local server slow enough for kills to land mid-download,
// which the rerun resumes. TLEARN_FAULTS moments per command (3 by
// default, `make faults` 20); the commands run in parallel. Two writers of
// every kind of output are internal/experiment's TestSecondWriterFails and
// this package's TestSecondWriterAdvice.
func TestFaultsKillAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs every long command several times")
	}
	n := 3
	if s := os.Getenv("TLEARN_FAULTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("TLEARN_FAULTS=%q: want a count", s)
		}
		n = v
	}
	seed := uint64(faultsSeed)
	if s := os.Getenv("TLEARN_FAULTS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TLEARN_FAULTS_SEED=%q: want a number", s)
		}
		seed = v
	}
	f := newExportFixture(t, 0)
	bin := buildTlearn(t)
	dir := t.TempDir()
	writeDataSources(t, dir)
	maps := filepath.Join(dir, "maps")
	mustTlearn(t, "extract", "--model", f.model, "--data", f.data, "--cache", maps, "--val", "0.34", "--size", exportSize,
		"--maps", "--device", "cpu", "--threads", "1")
	clf := exportRun(t, f.run)
	mnist := dataKillCases(dir)[0]
	mustTlearn(t, withOut(mnist.args, filepath.Join(dir, "ref-mnist"))...)
	cmpModel, cmpTrain, cmpVal := compareFixture(t)
	train, val := filepath.Join(maps, "train"), filepath.Join(maps, "val")
	tiny := filepath.Join(dir, "tiny.onnx")
	mustTlearn(t, "models", "synth", "vgg16", "--seed", "1", "--tiny", "--out", tiny)
	fetchURL, fetchSum := slowArchiveServer(t)
	sharded := filepath.Join(dir, "sharded")
	syntheticShards(t, sharded, 4, 24_000, 512)

	cases := []faultCase{
		{desc: "extract", args: []string{"extract", "--model", f.model, "--data", f.data, "--cache", "{out}", "--val", "0.34",
			"--size", exportSize, "--maps", "--batch", "1", "--threads", "1"}},
		{desc: "extract views", args: []string{"extract", "--model", f.model, "--data", f.data, "--cache", "{out}", "--val", "0.34",
			"--size", exportSize, "--maps", "--batch", "2", "--views", "5", "--augment", "flip,crop,jitter", "--threads", "1"}},
		{desc: "train", args: []string{"train", "--train", train, "--val", val, "--out", "{out}", "--hidden", "8",
			"--epochs", "30", "--seed", "3", "--threads", "1"}},
		{desc: "train --auto", args: []string{"train", "--auto", "--train", train, "--val", val, "--out", "{out}",
			"--epochs", "6", "--seed", "3", "--threads", "1"}},
		{desc: "finetune", args: []string{"finetune", "--model", f.model, "--train", train, "--val", val, "--out", "{out}",
			"--hidden", "4", "--epochs", "4", "--batch", "2", "--lr", "1e-3", "--seed", "3", "--threads", "1"}},
		{desc: "export", args: []string{"export", "--run", f.run, "--out", "{out}", "--size", "64", "--threads", "1"}},
		{desc: "classify", args: []string{"classify", "--model", clf, "--batch", "1", "--out", "{out}", "--threads", "1", f.data}},
		{desc: "evaluate", args: []string{"evaluate", "--run", f.run, "--cache", f.cache, "--out", "{out}"}},
		{desc: "compare", args: compareArgs(cmpModel, cmpTrain, cmpVal, "{out}"),
			// Once stages.json records the tutorial's fine-tuning: the kill
			// lands in an export or the best row, and the rerun keeps the
			// fine-tuned run.
			midway: func(dir string, _ time.Duration) bool {
				b, _ := os.ReadFile(filepath.Join(dir, "out", "stages.json"))
				return bytes.Contains(b, []byte(`"name": "finetune"`))
			}, resumed: "finetune: reusing the finished stage"},
		{desc: "compare --int8", args: append(compareArgs(cmpModel, cmpTrain, cmpVal, "{out}"), "--no-best", "--int8", "--calibrate-images", "8"),
			// Once stages.json records the int8 extraction: the rerun keeps
			// the int8 model and caches.
			midway: func(dir string, _ time.Duration) bool {
				b, _ := os.ReadFile(filepath.Join(dir, "out", "stages.json"))
				return bytes.Contains(b, []byte(`"name": "extract-int8"`))
			}, resumed: "quantize: reusing the finished stage"},
		{desc: "sweep", args: []string{"train", "--train", train, "--val", val, "--out", "{out}", "--sweep", "hidden=4,8",
			"--epochs", "5", "--seed", "3", "--threads", "1"}},
		{desc: "models prepare", args: []string{"models", "prepare", "--onnx", tiny, "--out", "{out}", "--threads", "1"}},
		quantizeFaultCase(f),
		{desc: "models synth", args: []string{"models", "synth", "vgg16", "--seed", "2", "--width", "0.25", "--out", "{out}"}},
		{desc: "models fetch", args: []string{"models", "fetch", "vgg16", "--url", fetchURL, "--sha256", fetchSum,
			"--dir", "{out}", "--no-verify-run"}, stdout: true,
			midway: func(dir string, _ time.Duration) bool {
				st, err := os.Stat(filepath.Join(dir, "out", "vgg16-12.tar.gz.part"))
				return err == nil && st.Size() >= 48<<10
			}, resumed: "resuming"},
		{desc: "cache info --verify", args: []string{"cache", "info", "--verify", "{out}"}, stdout: true,
			setup: func(t *testing.T, out string) { copyTree(t, f.cache, out) }},
		{desc: "extract --shard", args: []string{"extract", "--model", f.model, "--data", f.data, "--cache", "{out}", "--val", "0.34",
			"--size", exportSize, "--maps", "--batch", "1", "--threads", "1", "--shard", "1/2"}},
		// Shards of 49 MB in all, so that kills land inside the merge.
		{desc: "cache merge", args: []string{"cache", "merge", "{out}"},
			setup: func(t *testing.T, out string) { copyTree(t, sharded, out) },
			midway: func(dir string, _ time.Duration) bool {
				m, _ := filepath.Glob(filepath.Join(dir, "out", ".features.npy.tmp-*"))
				return len(m) > 0
			}, resumed: "left by an interrupted earlier run"},
	}
	for _, dc := range dataKillCases(dir) {
		cases = append(cases, faultCase{desc: "data " + dc.desc, args: dc.args})
	}
	t.Logf("seed %d (TLEARN_FAULTS_SEED), %d kills per command (TLEARN_FAULTS)", seed, n)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			t.Parallel()
			h := fnv.New64a()
			h.Write([]byte(tc.desc))
			rng := rand.New(rand.NewPCG(seed, h.Sum64()))
			refDir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, filepath.Join(refDir, "out"))
			}
			start := time.Now()
			code, stdout, errs := runIn(t, bin, refDir, withOut(tc.args, filepath.Join(refDir, "out")))
			if code != 0 {
				t.Fatalf("uninterrupted run: exit %d\n%s", code, errs)
			}
			took := time.Since(start)
			want := outputTree(t, refDir)
			if tc.stdout {
				want[stdoutKey] = strings.ReplaceAll(stdout, refDir, "{dir}")
			}
			late := 0
			for i := range n {
				delay := time.Duration(rng.Int64N(int64(took)-1) + 1)
				if killAndRerun(t, bin, tc, want, fmt.Sprintf("TLEARN_FAULTS_SEED=%d, kill %d after %v", seed, i, delay), after(delay), "") {
					late++
				}
			}
			if tc.midway != nil && killAndRerun(t, bin, tc, want, "the kill midway", tc.midway, tc.resumed) {
				t.Error("the run exited before it was midway")
			}
			t.Logf("uninterrupted run %v; %d kills, %d of them after the process exited", took.Round(time.Millisecond), n, late)
		})
	}
}

// stdoutKey holds, in an output tree, the stdout of a faultCase whose
// records are part of its output; no file has this name.
const stdoutKey = "{stdout}"

// after is the moment of a kill delay after the start.
func after(delay time.Duration) func(string, time.Duration) bool {
	return func(_ string, ran time.Duration) bool { return ran >= delay }
}

// killAndRerun runs tc into a fresh folder, kills it at the first poll at
// which now reports true of the folder and the time the run has taken, reruns it to the end and compares
// the folder (and, for tc.stdout, the last run's stdout) with want; where
// names the kill in failures, and the rerun's stderr must hold resumed. It
// reports whether the run had exited before the kill.
func killAndRerun(t *testing.T, bin string, tc faultCase, want map[string]string, where string, now func(dir string, ran time.Duration) bool, resumed string) (finished bool) {
	t.Helper()
	dir := t.TempDir()
	if tc.setup != nil {
		tc.setup(t, filepath.Join(dir, "out"))
	}
	args := withOut(tc.args, filepath.Join(dir, "out"))
	cmd := tlearnCmd(t, bin, args)
	cmd.Dir = dir
	var errs, stdout syncBuffer
	cmd.Stderr, cmd.Stdout = &errs, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
wait:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: the run before the kill failed: %v\n%s", where, err, errs.String())
			}
			finished = true
			break wait
		case <-poll.C:
			if now(dir, time.Since(start)) {
				_ = cmd.Process.Kill()
				<-done
				break wait
			}
		}
	}
	var rerun string
	printed := stdout.String()
	if !finished {
		code, out, s := runIn(t, bin, dir, args)
		// A kill after the output was renamed into place, before the
		// process exited, leaves a finished output, which the rerun
		// refuses to replace without --force: then the output must be
		// the uninterrupted run's as it is.
		if code != 0 && !strings.Contains(s, "--force") {
			t.Fatalf("%s: rerun: exit %d\n%s", where, code, s)
		}
		rerun, printed = s, out
		if !strings.Contains(s, resumed) {
			t.Errorf("%s: the rerun does not say %q:\n%s", where, resumed, s)
		}
	}
	got := outputTree(t, dir)
	if tc.stdout {
		got[stdoutKey] = strings.ReplaceAll(printed, dir, "{dir}")
	}
	var diffs []string
	for rel, b := range want {
		if gb, ok := got[rel]; !ok {
			diffs = append(diffs, "lacks "+rel)
		} else if gb != b {
			diffs = append(diffs, "differs in "+rel+firstDiff(b, gb))
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			diffs = append(diffs, "has the stray "+rel)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s (exited before it: %v): the rerun's output %s\n%s", where, finished, strings.Join(diffs, ", "), rerun)
	}
	return finished
}

func tlearnCmd(t *testing.T, bin string, args []string) *exec.Cmd {
	t.Helper()
	lib, ok := ortlib.Loaded()
	if !ok {
		t.Fatal("ONNX Runtime is not loaded (ortlibtest.Init)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TLEARN_ORT_LIB="+lib.Path, "TLEARN_DEVICE=cpu", "TLEARN_THREADS=1")
	return cmd
}

// runIn runs the binary to its end in the working folder dir and returns
// its status, stdout and stderr.
func runIn(t *testing.T, bin, dir string, args []string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := tlearnCmd(t, bin, args)
	cmd.Dir = dir
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errs.String()
}

func mustTlearn(t *testing.T, args ...string) {
	t.Helper()
	if code, _, errs := runTlearn(t, args...); code != 0 {
		t.Fatalf("%s: exit %d\n%s", args[0], code, errs)
	}
}

// outputTree maps every file under dir (hidden ones, markers and locks
// included) to its bytes, masked: dir's path replaced and the recorded
// times of JSON files zeroed.
func outputTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b = bytes.ReplaceAll(b, []byte(dir), []byte("{dir}"))
		switch {
		case strings.HasSuffix(p, ".json") || filepath.Base(p) == ".tlearn-dataset":
			b = maskJSON(b)
		case strings.HasSuffix(p, ".csv"):
			b = maskCSVColumn(b, "seconds")
		case strings.HasSuffix(p, ".md"):
			b = timestamp.ReplaceAll(b, []byte("{time}"))
			b = took.ReplaceAll(b, []byte("{took}"))
			b = rate.ReplaceAll(b, []byte("{rate}$1"))
			// What a stage's time was spent on: a resumed compare says so.
			b = bytes.ReplaceAll(b, []byte(" (reused from an earlier run)"), nil)
		}
		files[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// maskCSVColumn blanks the column named col of a CSV table (sweep.csv's
// seconds); a table without it is returned as it is.
func maskCSVColumn(b []byte, col string) []byte {
	lines := strings.Split(string(b), "\n")
	at := slices.Index(strings.Split(lines[0], ","), col)
	if at < 0 {
		return b
	}
	for i := 1; i < len(lines); i++ {
		if f := strings.Split(lines[i], ","); at < len(f) {
			f[at] = ""
			lines[i] = strings.Join(f, ",")
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

// copyTree copies the files under src to dst, which it makes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// slowArchiveServer serves fetchArchive's model archive, with byte ranges,
// at about 0.8 MB/s: slow enough that a kill lands mid-download, quick
// enough for a few seconds per command. It returns the archive's URL and
// sha256; the server stops when the test ends.
func slowArchiveServer(t *testing.T) (url, sha string) {
	t.Helper()
	archive, sha := fetchArchive(t, 128<<10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, &slowReader{r: bytes.NewReader(archive)})
	}))
	// Not a defer: the parallel subtests that fetch from it run after
	// the test function returns.
	t.Cleanup(ts.Close)
	return ts.URL + "/vgg16-12.tar.gz", sha
}

// slowReader reads 8 KiB at a time, 10 ms apart.
type slowReader struct{ r *bytes.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 8<<10)])
}

func (s *slowReader) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

// maskJSON drops the maskedKeys of a JSON document at any depth (a speed
// that a rerun could not measure, because the work was already done, is
// left out of its record: omitempty); what is not JSON is returned as it
// is.
func maskJSON(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if maskedKeys[k] {
					delete(x, k)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	out, _ := json.Marshal(v)
	return out
}

// firstDiff shows where got first differs from want, with some context,
// for a readable failure.
func firstDiff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	lo := max(i-40, 0)
	return fmt.Sprintf(" at byte %d: want %q, got %q", i, want[lo:min(i+60, len(want))], got[lo:min(i+60, len(got))])
}
