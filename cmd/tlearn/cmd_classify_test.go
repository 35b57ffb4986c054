package main

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/models"
)

// exportRun runs `tlearn export` of run into dir/classifier.onnx.
func exportRun(t *testing.T, run string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "classifier.onnx")
	code, _, errs := runTlearn(t, "export", "--run", run, "--out", out, "--threads", "1")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"wrote " + out, "input:  pixels uint8 [N,H,W,3] RGB 0..255, resized to 32×32 (bilinear)", "output: probabilities float32 [N,3]: cat, dog, owl", "size from the training cache", "checked: one run of 2 images on cpu (ONNX Runtime "} {
		if !strings.Contains(errs, want) {
			t.Errorf("export summary lacks %q:\n%s", want, errs)
		}
	}
	return out
}

// readCSVProbs parses classify's CSV (with --top-k covering every class)
// into each path's probabilities in class order.
func readCSVProbs(t *testing.T, path string, classes []string) map[string][]float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"path", "label", "probability"}
	for i := 2; i <= len(classes); i++ {
		want = append(want, "label_"+strconv.Itoa(i), "probability_"+strconv.Itoa(i))
	}
	if !slices.Equal(rows[0], want) {
		t.Fatalf("header %v, want %v", rows[0], want)
	}
	got := map[string][]float32{}
	for _, r := range rows[1:] {
		p := make([]float32, len(classes))
		last := 2.0
		for j := 1; j < len(r); j += 2 {
			v, err := strconv.ParseFloat(r[j+1], 32)
			if err != nil || v > last {
				t.Fatalf("row %v: probabilities not in decreasing order", r)
			}
			last = v
			p[slices.Index(classes, r[j])] = float32(v)
		}
		got[r[0]] = p
	}
	return got
}

// checkTimmCSV checks classify's --format timm records of the images of
// dir against their probabilities want: the header of timm's inference.py
// --results-separate-col for k columns, base names, and the k most
// probable classes, most probable first.
func checkTimmCSV(t *testing.T, out string, k int, classes []string, dir string, want map[string][]float32) {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := []string{"filename", "label", "prob"}
	if k > 1 {
		header = []string{"filename"}
		for _, col := range []string{"label_", "prob_"} {
			for i := range k {
				header = append(header, col+strconv.Itoa(i))
			}
		}
	}
	if !slices.Equal(rows[0], header) {
		t.Fatalf("header %v, want %v", rows[0], header)
	}
	for _, r := range rows[1:] {
		p, ok := want[filepath.Join(dir, r[0])]
		if !ok || len(r) != 1+2*k {
			t.Fatalf("row %v: not a base name of %s with %d labels and probabilities", r, dir, k)
		}
		order := make([]int, len(p))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p[b], p[a]) })
		for i := range k {
			prob, err := strconv.ParseFloat(r[1+k+i], 32)
			if r[1+i] != classes[order[i]] || err != nil || math.Abs(prob-float64(p[order[i]])) > 1e-4 {
				t.Fatalf("row %v: column %d, want %s %v (probabilities %v)", r, i, classes[order[i]], p[order[i]], p)
			}
		}
	}
	if len(rows)-1 != 5 {
		t.Fatalf("%d records, want the 5 images of %s", len(rows)-1, dir)
	}
}

func assertProbs(t *testing.T, got, want map[string][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	informative := 0
	for path, w := range want {
		g, ok := got[path]
		if !ok {
			t.Fatalf("no record for %s", path)
		}
		for j := range w {
			if math.Abs(float64(g[j])-float64(w[j])) > 1e-4 {
				t.Fatalf("%s: probabilities %v, the cached-feature path gives %v", path, g, w)
			}
			if w[j] > 0.05 && w[j] < 0.95 {
				informative++
			}
		}
	}
	if informative < len(want) {
		t.Fatalf("probabilities too close to 0 and 1 to test anything: %v", want)
	}
}

// TestExportClassify exports runs of both modes through the CLI and checks
// that classify's records match the cached-feature path: the features of
// the cache (of a model with the fine-tuned block5, for a finetune run)
// through head.Predict.
func TestExportClassify(t *testing.T) {
	f := newExportFixture(t, 6)
	t.Run("head", func(t *testing.T) {
		clf := exportRun(t, f.run)
		want := cachedProbs(t, f.cache, f.data, f.weights)
		checkClassifyCSV(t, f, clf, want)
		checkClassifyJSONL(t, f, clf, want)
		checkClassifyTimm(t, f, clf, want)
	})
	t.Run("finetune", func(t *testing.T) { checkExportClassifyFineTune(t, f) })
}

// checkClassifyCSV classifies f.data with the classifier clf into a CSV
// file and checks its records against the cached-feature probabilities
// want, and the accuracy report that the class folders allow.
func checkClassifyCSV(t *testing.T, f *exportFixture, clf string, want map[string][]float32) {
	t.Helper()
	preds := filepath.Join(t.TempDir(), "preds.csv")
	// What a classify --out killed with SIGKILL leaves; this run removes it.
	stale := filepath.Join(filepath.Dir(preds), ".preds.csv.tmp-12345")
	fixtures.WriteFile(t, stale, []byte("cat,0.5\n"))
	code, stdout, errs := runTlearn(t, "classify", "--model", clf, "--out", preds, "--batch", "4", "--threads", "1", f.data)
	if code != 0 || stdout != "" {
		t.Fatalf("classify: exit %d, stdout %q\n%s", code, stdout, errs)
	}
	if ents, _ := os.ReadDir(filepath.Dir(preds)); len(ents) != 1 {
		t.Errorf("%s holds %d files, want preds.csv only (the stale temporary removed, no lock file left)", filepath.Dir(preds), len(ents))
	}
	assertProbs(t, readCSVProbs(t, preds, f.classes), want)
	for _, line := range []string{"classified 12 images", "records in " + preds, "the sub-folders of " + f.data + " are the classifier's classes",
		"examples: 12", "top-3 accuracy: 1.0000", "confusion matrix"} {
		if !strings.Contains(errs, line) {
			t.Errorf("stderr lacks %q:\n%s", line, errs)
		}
	}
}

// checkClassifyJSONL classifies with JSONL on stdout, top-k 2, files and a
// folder without class folders (so no accuracy report), and checks the
// records' order and their top two against want.
func checkClassifyJSONL(t *testing.T, f *exportFixture, clf string, want map[string][]float32) {
	t.Helper()
	cat := filepath.Join(f.data, "cat")
	code, stdout, errs := runTlearn(t, "classify", "--model", clf, "--format", "jsonl", "--top-k", "2", "--quiet",
		filepath.Join(f.data, "owl", "img01.png"), cat)
	if code != 0 || errs != "" {
		t.Fatalf("classify: exit %d\n%s", code, errs)
	}
	var paths []string
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var rec jsonlRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		paths = append(paths, rec.Path)
		p := want[rec.Path]
		top := slices.Index(p, slices.Max(p))
		if len(rec.TopK) != 2 || rec.Label != f.classes[top] || rec.TopK[0].Label != rec.Label || rec.Probability != rec.TopK[0].Probability ||
			math.Abs(float64(rec.Probability-p[top])) > 1e-4 || rec.TopK[1].Probability > rec.Probability {
			t.Fatalf("record %+v, cached path %v", rec, p)
		}
	}
	wantPaths := []string{filepath.Join(f.data, "owl", "img01.png"), filepath.Join(cat, "img00.png"), filepath.Join(cat, "img01.png"), filepath.Join(cat, "img02.png")}
	if !slices.Equal(paths, wantPaths) {
		t.Fatalf("records for %v, want %v", paths, wantPaths)
	}
}

// checkClassifyTimm checks timm's columns, for K of 2, 1 and more than the
// classes, against want.
func checkClassifyTimm(t *testing.T, f *exportFixture, clf string, want map[string][]float32) {
	t.Helper()
	owl := filepath.Join(f.data, "owl")
	for _, k := range []int{2, 1, 9} {
		code, stdout, errs := runTlearn(t, "classify", "--model", clf, "--format", "timm", "--top-k", strconv.Itoa(k), "--quiet", owl)
		if code != 0 || errs != "" {
			t.Fatalf("classify --format timm --top-k %d: exit %d\n%s", k, code, errs)
		}
		checkTimmCSV(t, stdout, min(k, len(f.classes)), f.classes, owl, want)
	}
}

// checkExportClassifyFineTune exports a finetune run of f and checks
// classify's records against the cache of a model with the fine-tuned
// block5, and that they differ from the frozen model's.
func checkExportClassifyFineTune(t *testing.T, f *exportFixture) {
	ft := finetuned(t, f.model, f.weights)
	ref := filepath.Join(t.TempDir(), "cache")
	extractCache(t, swappedModel(t, f.model, ft), f.data, ref)
	// A head fitted to the fine-tuned features' scale, as fine-tuning
	// would have trained it.
	cc, err := cache.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	fitted := seededWeights(cc.Manifest.FeatureDim, 6, f.classes, cc.Features)
	cc.Close()
	for name, tensor := range fitted.Tensors {
		ft.Tensors[name] = tensor
	}
	f.writeRun(t, rundir.ModeFineTune, ft)
	clf := exportRun(t, f.run)
	preds := filepath.Join(t.TempDir(), "preds.csv")
	code, _, errs := runTlearn(t, "classify", "--model", clf, "--out", preds, "--top-k", "9", "--threads", "1", f.data)
	if code != 0 {
		t.Fatalf("classify: exit %d\n%s", code, errs)
	}
	got := readCSVProbs(t, preds, f.classes)
	assertProbs(t, got, cachedProbs(t, ref, f.data, ft))
	// The fine-tuned block5 matters: the frozen one gives other values.
	frozen := cachedProbs(t, f.cache, f.data, ft)
	var diff float64
	for p, v := range frozen {
		for j := range v {
			diff = max(diff, math.Abs(float64(v[j]-got[p][j])))
		}
	}
	if diff < 1e-3 {
		t.Fatal("the fine-tuned classifier gives the frozen model's probabilities")
	}
}

func TestClassifyErrors(t *testing.T) {
	f := newExportFixture(t, 0)
	clf := exportRun(t, f.run)
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("no images here"), 0o644)
	os.WriteFile(filepath.Join(empty, ".hidden.png"), []byte("hidden"), 0o644)
	bad := filepath.Join(t.TempDir(), "data")
	copyDir(t, f.data, bad)
	broken := filepath.Join(bad, "dog", "img01.png")
	if err := os.WriteFile(broken, []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	extractor := filepath.Join(f.model, models.ExtractorFile)
	cases := []struct {
		desc    string
		args    []string
		code    int
		want    []string
		records int // CSV rows after the header; -1: not checked
	}{
		{"empty folder", []string{"--model", clf, empty}, 1, []string{empty + " has no images"}, -1},
		{"missing path", []string{"--model", clf, filepath.Join(empty, "nope")}, 1, []string{"does not exist"}, -1},
		{"not a tlearn classifier", []string{"--model", extractor, f.data}, 1, []string{extractor + ": classifier: not a tlearn classifier", "(make one with `tlearn export`)"}, -1},
		{"unreadable image", []string{"--model", clf, bad}, 1, []string{"cannot read " + broken, "1 of 12 images could not be read", "classified 11 images"}, 11},
		{"unreadable image skipped", []string{"--model", clf, "--skip-bad", bad}, 0, []string{"skipped 1 images that could not be read", "  " + broken + ": ", "examples: 11"}, 11},
		{"quiet still reports unreadable images", []string{"--model", clf, "--quiet", bad}, 1, []string{"cannot read " + broken}, 11},
		{"no paths", []string{"--model", clf}, 2, []string{"name at least one image"}, -1},
		{"flag after path", []string{"--model", clf, f.data, "--top-k", "2"}, 2, []string{"put flags such as --top-k before the paths"}, -1},
		{"format", []string{"--model", clf, "--format", "xml", f.data}, 2, []string{`--format "xml"`}, -1},
		{"top-k", []string{"--model", clf, "--top-k", "0", f.data}, 2, []string{"--top-k must be 1 or more"}, -1},
		{"size", []string{"--model", clf, "--size", "48", f.data}, 1, []string{"not a multiple of 32"}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			code, stdout, errs := runTlearn(t, append([]string{"classify", "--threads", "1"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if tc.records >= 0 {
				rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
				if err != nil || len(rows) != tc.records+1 {
					t.Fatalf("%d CSV rows (%v), want %d records and a header:\n%s", len(rows), err, tc.records, stdout)
				}
			}
		})
	}
}

// TestClassifyHelp checks that --help documents the timm format with an
// example.
func TestClassifyHelp(t *testing.T) {
	code, stdout, errs := runTlearn(t, "classify", "--help")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, want := range []string{"csv, jsonl or timm", "filename,label_0,...,label_{K-1},prob_0,...,prob_{K-1}", "--format timm --top-k 3"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
}

// TestClassifyRefusesFIFO checks that classify refuses a named pipe given
// as an image or as the model, naming it, instead of blocking on it.
func TestClassifyRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	img := fixtures.FIFO(t, filepath.Join(dir, "x.png"))
	model := fixtures.FIFO(t, filepath.Join(dir, "classifier.onnx"))
	fixtures.ClassImages(t, dir, "imgs", 1, 1)
	real := filepath.Join(dir, "imgs")
	unblock := func() { fixtures.UnblockFIFO(img); fixtures.UnblockFIFO(model) }
	for _, tc := range []struct {
		desc string
		args []string
		fifo string
	}{
		{"image", []string{"--model", model, img}, img},
		{"model", []string{"--model", model, real}, model},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var code int
			var errs string
			fixtures.Within(t, 30*time.Second, unblock, func() {
				code, _, errs = runTlearn(t, append([]string{"classify", "--threads", "1"}, tc.args...)...)
			})
			if code != 1 || !strings.Contains(errs, tc.fifo+" is a named pipe (FIFO)") {
				t.Fatalf("exit %d, want 1 and an error naming %s as a FIFO:\n%s", code, tc.fifo, errs)
			}
		})
	}
}
