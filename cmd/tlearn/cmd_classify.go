package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/classify"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagClassifyModel         = "model"
	flagClassifyFormat        = "format"
	flagClassifyTopK          = "top-k"
	flagClassifyOut           = "out"
	flagClassifyBatch         = "batch"
	flagClassifySkipBad       = "skip-bad"
	flagClassifySize          = "size"
	flagClassifyInterpolation = "interpolation"
)

// Record formats of classify.
const (
	formatCSV   = "csv"
	formatJSONL = "jsonl"
	formatTimm  = "timm" // the CSV of timm's inference.py --results-separate-col
)

var classifyFormats = []string{formatCSV, formatJSONL, formatTimm}

const defaultTopK = 5

func classifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "classify",
		Usage:     "classify image files and folders with a classifier made by tlearn export",
		ArgsUsage: "PATH...",
		Description: `Runs every image of the PATHs (files, and folders searched recursively for
JPEG, PNG, GIF, BMP, TIFF and WebP files; hidden files are skipped) through the
classifier, in a stable order: the PATHs as given, each folder's images sorted
by path. Images are resized to the size recorded in the classifier (--size
overrides it) with its recorded filter.

One record per image goes to stdout, or to --out FILE (written atomically).
CSV (the default) has a header and the columns
   path,label,probability[,label_2,probability_2,...,label_K,probability_K]
where label is the most probable class and label_i the i-th most probable, K
being --top-k (capped at the number of classes). JSONL has one object per line:
   {"path":"photos/1.jpg","label":"cat","probability":0.91,
    "top_k":[{"label":"cat","probability":0.91},{"label":"dog","probability":0.06}]}

--format timm writes the CSV of timm's inference.py --topk K
--results-separate-col, for scripts written for timm:
   filename,label_0,...,label_{K-1},prob_0,...,prob_{K-1}
where filename is the image's base name (K = 1 gives filename,label,prob).

Probabilities are written with the digits that identify the float32 value.

An image that cannot be read is reported on stderr and gets no record; the
others are classified and written, then the command fails (exit status 1).
With --skip-bad such images are listed at the end and the exit status is 0.

When the only PATH is a folder whose sub-folders are named after the
classifier's classes (a dataset in class folders), the accuracy, per-class
metrics and confusion matrix are printed on stderr too.

Example:
   tlearn classify --model classifier.onnx photos/ > predictions.csv
   tlearn classify --model classifier.onnx --format jsonl --top-k 3 --out preds.jsonl a.jpg b.png
   tlearn classify --model classifier.onnx --skip-bad data/val
   tlearn classify --model classifier.onnx --format timm --top-k 3 --out results.csv photos/`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagClassifyModel, Usage: "classifier `FILE` written by tlearn export", Required: true},
			&cli.StringFlag{Name: flagClassifyFormat, Usage: "record format: csv, jsonl or timm (the columns of timm's inference.py --results-separate-col)", DefaultText: "jsonl when --out ends in .jsonl, else csv"},
			&cli.IntFlag{Name: flagClassifyTopK, Value: defaultTopK, Usage: "most probable classes per record (capped at the number of classes)"},
			&cli.StringFlag{Name: flagClassifyOut, Usage: "write the records to `FILE` instead of stdout"},
			&cli.IntFlag{Name: flagClassifyBatch, Value: classify.DefaultBatch, Usage: "images per ONNX Runtime run"},
			&cli.BoolFlag{Name: flagClassifySkipBad, Usage: "list images that cannot be read at the end instead of failing"},
			&cli.IntFlag{Name: flagClassifySize, Usage: "input side in pixels", DefaultText: "the one recorded at export"},
			&cli.StringFlag{Name: flagClassifyInterpolation, Usage: interpolationUsage, DefaultText: "the one recorded at export"},
		),
		Action: onInterrupt("records already printed to stdout stand, an --out file is not written; the same command classifies every image again", classifyAction),
	}
}

func classifyAction(c *cli.Context) error {
	f, err := readClassifyFlags(c)
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := fsutil.CheckOutput(f.out, append([]string{c.String(flagClassifyModel)}, f.paths...)...); err != nil {
			return outputError(err, flagClassifyOut)
		}
	}
	w := stderr(c)
	src, err := dataset.OpenFiles(f.paths, dataset.Settings{})
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if n := len(src.Skipped); n > 0 {
		fmt.Fprintf(w, "classify: %d files in the folders are hidden or not images, left out\n", n)
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	clf, err := classify.Open(c.String(flagClassifyModel), f.opts)
	if err != nil {
		return err
	}
	defer clf.Close()
	if _, why := clf.Device(); why != "" {
		fmt.Fprintln(w, "classify: "+why)
	}
	f.topK = min(f.topK, len(clf.Classes()))
	out, err := createRecords(c, f, clf.Classes())
	if err != nil {
		return err
	}
	defer out.abort()
	res, err := classifyImages(c, f, clf, src, out.rec)
	if err != nil {
		return err
	}
	if err := out.commit(); err != nil {
		return err
	}
	return reportClassified(w, f, clf, src, res)
}

// classifyFlags are classify's flags and arguments, checked.
type classifyFlags struct {
	paths   []string
	format  string
	topK    int // capped at the number of classes once the classifier is open
	skipBad bool
	out     string // "" for stdout
	opts    classify.Options
}

func readClassifyFlags(c *cli.Context) (classifyFlags, error) {
	f := classifyFlags{paths: c.Args().Slice(), format: c.String(flagClassifyFormat), topK: c.Int(flagClassifyTopK),
		skipBad: c.Bool(flagClassifySkipBad), out: c.String(flagClassifyOut)}
	var err error
	if f.opts.ORT, err = sessionOptions(c); err != nil {
		return f, err
	}
	if len(f.paths) == 0 {
		return f, usageError{fmt.Errorf("classify: name at least one image file or folder")}
	}
	for _, p := range f.paths {
		// urfave/cli stops reading flags at the first path.
		if strings.HasPrefix(p, "-") {
			return f, usageError{fmt.Errorf("classify: put flags such as %s before the paths (a file whose name starts with - can be given as ./%s)", p, p)}
		}
	}
	if f.format == "" {
		f.format = formatCSV
		if strings.HasSuffix(strings.ToLower(f.out), ".jsonl") {
			f.format = formatJSONL
		}
	}
	if !slices.Contains(classifyFormats, f.format) {
		return f, usageError{fmt.Errorf("--%s %q: want %s", flagClassifyFormat, f.format, strings.Join(classifyFormats, ", "))}
	}
	for _, name := range []string{flagClassifyTopK, flagClassifyBatch} {
		if c.Int(name) < 1 {
			return f, usageError{fmt.Errorf("--%s must be 1 or more, got %d", name, c.Int(name))}
		}
	}
	if f.opts.Size = c.Int(flagClassifySize); f.opts.Size < 0 {
		return f, usageError{fmt.Errorf("--%s must be positive, got %d", flagClassifySize, f.opts.Size)}
	}
	if s := c.String(flagClassifyInterpolation); s != "" {
		if f.opts.Interpolation, err = dataset.ParseInterpolation(s); err != nil {
			return f, usageError{err}
		}
	}
	f.opts.Batch = c.Int(flagClassifyBatch)
	return f, nil
}

// recordOutput is where the records go: stdout, or a file written
// atomically (committed only when every record is written).
type recordOutput struct {
	rec  recordWriter
	bw   *bufio.Writer
	file *fsutil.File // nil for stdout
	lock *fsutil.Lock // the file's one-writer lock
}

func createRecords(c *cli.Context, f classifyFlags, classes []string) (*recordOutput, error) {
	o := &recordOutput{}
	var dst io.Writer = c.App.Writer
	if f.out != "" {
		var err error
		if o.lock, err = fsutil.LockOutput(f.out); err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
		// Under the lock, a temporary of f.out can only be a killed run's.
		if _, err := o.lock.RemoveStale(); err != nil {
			o.abort()
			return nil, fmt.Errorf("classify: %w", err)
		}
		if o.file, err = fsutil.Create(f.out, 0o644); err != nil {
			o.abort()
			return nil, fmt.Errorf("classify: %w", err)
		}
		dst = o.file
	}
	o.bw = bufio.NewWriterSize(dst, 1<<16)
	switch f.format {
	case formatJSONL:
		o.rec = &jsonlRecords{w: o.bw, classes: classes}
	case formatTimm:
		o.rec = &timmRecords{w: csv.NewWriter(o.bw), classes: classes, k: f.topK}
	default:
		o.rec = &csvRecords{w: csv.NewWriter(o.bw), classes: classes, k: f.topK}
	}
	if err := o.rec.header(); err != nil {
		o.abort()
		return nil, fmt.Errorf("classify: %w", err)
	}
	return o, nil
}

// commit flushes the records and, for a file, puts it in place.
func (o *recordOutput) commit() error {
	if err := o.rec.flush(); err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if err := o.bw.Flush(); err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if o.file != nil {
		if err := o.file.Commit(); err != nil {
			return fmt.Errorf("classify: %w", err)
		}
	}
	return nil
}

// abort removes an uncommitted file and releases the file's lock; after
// commit it only releases the lock.
func (o *recordOutput) abort() {
	if o.file != nil {
		o.file.Abort()
	}
	o.lock.Unlock()
}

// classified is what classifyImages saw besides the records it wrote.
type classified struct {
	bad     []*dataset.DecodeError
	tally   *head.Tally // nil unless the only path is a class-folder tree of the classes
	elapsed time.Duration
}

// classifyImages writes one record per readable image of src and reports
// each unreadable one on stderr (even with --quiet) unless --skip-bad.
func classifyImages(c *cli.Context, f classifyFlags, clf *classify.Classifier, src *dataset.Source, rec recordWriter) (*classified, error) {
	errs := c.App.ErrWriter // even with --quiet
	res := &classified{}
	var labels []int
	if fi, err := os.Stat(f.paths[0]); err == nil && fi.IsDir() && len(f.paths) == 1 {
		if labels = classify.ClassFolderLabels(f.paths[0], src, clf.Classes()); labels != nil {
			res.tally = head.NewTally(clf.Classes(), f.topK)
		}
	}
	prog := newCountBar(stderr(c), "images")
	prog.Start("classifying", len(src.Items), 0)
	defer prog.Finish()
	top := make([]int, 0, f.topK)
	start := time.Now()
	err := clf.Classify(c.Context, src, func(p classify.Prediction) error {
		prog.Add(1)
		if p.Err != nil {
			res.bad = append(res.bad, p.Err)
			if !f.skipBad {
				prog.Clear()
				fmt.Fprintf(errs, "classify: cannot read %s: %v\n", p.Err.Path, p.Err.Err)
			}
			return nil
		}
		if res.tally != nil {
			res.tally.AddProbs(labels[p.Index], p.Probs)
		}
		top = classify.TopK(top, p.Probs, f.topK)
		return rec.write(src.Path(p.Index), top, p.Probs)
	})
	res.elapsed = time.Since(start)
	return res, err
}

// reportClassified prints the summary, the accuracy report of a
// class-folder tree and the unreadable images.
func reportClassified(w io.Writer, f classifyFlags, clf *classify.Classifier, src *dataset.Source, res *classified) error {
	done := len(src.Items) - len(res.bad)
	where := ""
	if f.out != "" {
		where = ", records in " + f.out
	}
	dev, _ := clf.Device()
	fmt.Fprintf(w, "classified %d images in %s (%.1f images/s on %s, %d×%d, %s)%s\n",
		done, res.elapsed.Round(time.Millisecond), float64(done)/max(res.elapsed.Seconds(), 1e-9), dev, clf.Size(), clf.Size(), clf.Interpolation(), where)
	if res.tally != nil && done > 0 {
		fmt.Fprintf(w, "\nthe sub-folders of %s are the classifier's classes; accuracy on its %d readable images:\n", f.paths[0], done)
		if err := res.tally.Report().WriteText(w); err != nil {
			return err
		}
	}
	if len(res.bad) == 0 {
		return nil
	}
	if !f.skipBad {
		return fmt.Errorf("classify: %d of %d images could not be read (listed above); the other %d were classified (--%s lists them without failing)",
			len(res.bad), len(src.Items), done, flagClassifySkipBad)
	}
	fmt.Fprintf(w, "skipped %d images that could not be read (--%s):\n", len(res.bad), flagClassifySkipBad)
	for _, e := range res.bad {
		fmt.Fprintf(w, "  %s: %v\n", e.Path, e.Err)
	}
	return nil
}

// recordWriter writes one record per classified image.
type recordWriter interface {
	header() error
	// write records the image at path; top are the indices of its most
	// probable classes, most probable first.
	write(path string, top []int, probs []float32) error
	flush() error
}

// formatProb writes the shortest decimal that reads back as the same
// float32.
func formatProb(p float32) string { return strconv.FormatFloat(float64(p), 'g', -1, 32) }

type csvRecords struct {
	w       *csv.Writer
	classes []string
	k       int
	row     []string
}

func (r *csvRecords) header() error {
	r.row = append(r.row[:0], "path", "label", "probability")
	for i := 2; i <= r.k; i++ {
		r.row = append(r.row, "label_"+strconv.Itoa(i), "probability_"+strconv.Itoa(i))
	}
	return r.w.Write(r.row)
}

func (r *csvRecords) write(path string, top []int, probs []float32) error {
	r.row = append(r.row[:0], path)
	for _, j := range top {
		r.row = append(r.row, r.classes[j], formatProb(probs[j]))
	}
	return r.w.Write(r.row)
}

func (r *csvRecords) flush() error {
	r.w.Flush()
	return r.w.Error()
}

// timmRecords writes the columns of timm's inference.py with --topk K
// --results-separate-col (and its default label and probability columns):
// filename (the base name), label_0..label_{K-1}, prob_0..prob_{K-1}, most
// probable first. Like timm, K = 1 gives the columns filename, label, prob.
type timmRecords struct {
	w       *csv.Writer
	classes []string
	k       int
	row     []string
}

func (r *timmRecords) header() error {
	r.row = append(r.row[:0], "filename")
	if r.k == 1 {
		r.row = append(r.row, "label", "prob")
		return r.w.Write(r.row)
	}
	for _, col := range []string{"label_", "prob_"} {
		for i := range r.k {
			r.row = append(r.row, col+strconv.Itoa(i))
		}
	}
	return r.w.Write(r.row)
}

func (r *timmRecords) write(path string, top []int, probs []float32) error {
	r.row = append(r.row[:0], filepath.Base(path))
	for _, j := range top {
		r.row = append(r.row, r.classes[j])
	}
	for _, j := range top {
		r.row = append(r.row, formatProb(probs[j]))
	}
	return r.w.Write(r.row)
}

func (r *timmRecords) flush() error {
	r.w.Flush()
	return r.w.Error()
}

type jsonlRecords struct {
	w       io.Writer
	classes []string
	buf     []byte
}

// jsonlRecord is one line of --format jsonl.
type jsonlRecord struct {
	Path        string      `json:"path"`
	Label       string      `json:"label"`
	Probability float32     `json:"probability"`
	TopK        []jsonlPick `json:"top_k"`
}

type jsonlPick struct {
	Label       string  `json:"label"`
	Probability float32 `json:"probability"`
}

func (r *jsonlRecords) header() error { return nil }

func (r *jsonlRecords) write(path string, top []int, probs []float32) error {
	rec := jsonlRecord{Path: path, Label: r.classes[top[0]], Probability: probs[top[0]], TopK: make([]jsonlPick, len(top))}
	for i, j := range top {
		rec.TopK[i] = jsonlPick{r.classes[j], probs[j]}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	r.buf = append(append(r.buf[:0], b...), '\n')
	_, err = r.w.Write(r.buf)
	return err
}

func (r *jsonlRecords) flush() error { return nil }
