package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
)

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
   tlearn classify --model classifier.onnx --skip-bad data/val`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagClassifyModel, Usage: "classifier `FILE` written by tlearn export", Required: true},
			&cli.StringFlag{Name: flagClassifyFormat, Usage: "record format: csv or jsonl", DefaultText: "jsonl when --out ends in .jsonl, else csv"},
			&cli.IntFlag{Name: flagClassifyTopK, Value: defaultTopK, Usage: "most probable classes per record (capped at the number of classes)"},
			&cli.StringFlag{Name: flagClassifyOut, Usage: "write the records to `FILE` instead of stdout"},
			&cli.IntFlag{Name: flagClassifyBatch, Value: classify.DefaultBatch, Usage: "images per ONNX Runtime run"},
			&cli.BoolFlag{Name: flagClassifySkipBad, Usage: "list images that cannot be read at the end instead of failing"},
			&cli.IntFlag{Name: flagClassifySize, Usage: "input side in pixels", DefaultText: "the one recorded at export"},
			&cli.StringFlag{Name: flagClassifyInterpolation, Usage: "resize filter: nearest, bilinear, bicubic or lanczos3", DefaultText: "the one recorded at export"},
		),
		Action: classifyAction,
	}
}

func classifyAction(c *cli.Context) error {
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	paths := c.Args().Slice()
	if len(paths) == 0 {
		return usageError{fmt.Errorf("classify: name at least one image file or folder")}
	}
	for _, p := range paths {
		// urfave/cli stops reading flags at the first path.
		if strings.HasPrefix(p, "-") {
			return usageError{fmt.Errorf("classify: put flags such as %s before the paths (a file whose name starts with - can be given as ./%s)", p, p)}
		}
	}
	format := c.String(flagClassifyFormat)
	if format == "" {
		format = formatCSV
		if strings.HasSuffix(strings.ToLower(c.String(flagClassifyOut)), ".jsonl") {
			format = formatJSONL
		}
	}
	if format != formatCSV && format != formatJSONL {
		return usageError{fmt.Errorf("--%s %q: want %s or %s", flagClassifyFormat, format, formatCSV, formatJSONL)}
	}
	for _, f := range []string{flagClassifyTopK, flagClassifyBatch} {
		if c.Int(f) < 1 {
			return usageError{fmt.Errorf("--%s must be 1 or more, got %d", f, c.Int(f))}
		}
	}
	if c.Int(flagClassifySize) < 0 {
		return usageError{fmt.Errorf("--%s must be positive, got %d", flagClassifySize, c.Int(flagClassifySize))}
	}
	var interp dataset.Interpolation
	if s := c.String(flagClassifyInterpolation); s != "" {
		if interp, err = dataset.ParseInterpolation(s); err != nil {
			return usageError{err}
		}
	}
	w := errWriter(c)
	// Unreadable images are errors: reported even with --quiet.
	errs := c.App.ErrWriter
	if errs == nil {
		errs = os.Stderr
	}

	src, err := dataset.OpenFiles(paths, dataset.Settings{})
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if n := len(src.Skipped); n > 0 {
		fmt.Fprintf(w, "classify: %d files in the folders are hidden or not images, left out\n", n)
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	clf, err := classify.Open(c.String(flagClassifyModel), classify.Options{
		ORT: opts, Size: c.Int(flagClassifySize), Interpolation: interp, Batch: c.Int(flagClassifyBatch),
	})
	if err != nil {
		return err
	}
	defer clf.Close()
	dev, why := clf.Device()
	if why != "" {
		fmt.Fprintln(w, "classify: "+why)
	}
	classes := clf.Classes()
	topK := min(c.Int(flagClassifyTopK), len(classes))
	var labels []int
	if fi, err := os.Stat(paths[0]); err == nil && fi.IsDir() && len(paths) == 1 {
		labels = classify.ClassFolderLabels(paths[0], src, classes)
	}

	out := c.App.Writer
	var file *fsutil.File
	if name := c.String(flagClassifyOut); name != "" {
		if file, err = fsutil.Create(name, 0o644); err != nil {
			return fmt.Errorf("classify: %w", err)
		}
		defer file.Abort()
		out = file
	}
	bw := bufio.NewWriterSize(out, 1<<16)
	var rec recordWriter
	if format == formatJSONL {
		rec = &jsonlRecords{w: bw, classes: classes}
	} else {
		rec = &csvRecords{w: csv.NewWriter(bw), classes: classes, k: topK}
	}
	if err := rec.header(); err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	var tally *head.Tally
	if labels != nil {
		tally = head.NewTally(classes, topK)
	}
	prog := newCountBar(w, "images")
	prog.Start("classifying", len(src.Items), 0)
	var bad []*dataset.DecodeError
	top := make([]int, 0, topK)
	start := time.Now()
	err = clf.Classify(c.Context, src, func(p classify.Prediction) error {
		prog.Add(1)
		if p.Err != nil {
			bad = append(bad, p.Err)
			if !c.Bool(flagClassifySkipBad) {
				prog.Clear()
				fmt.Fprintf(errs, "classify: cannot read %s: %v\n", p.Err.Path, p.Err.Err)
			}
			return nil
		}
		if tally != nil {
			tally.AddProbs(labels[p.Index], p.Probs)
		}
		top = classify.TopK(top, p.Probs, topK)
		return rec.write(src.Path(p.Index), top, p.Probs)
	})
	prog.Finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := rec.flush(); err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	if file != nil {
		if err := file.Commit(); err != nil {
			return fmt.Errorf("classify: %w", err)
		}
	}

	done := len(src.Items) - len(bad)
	where := ""
	if file != nil {
		where = ", records in " + c.String(flagClassifyOut)
	}
	fmt.Fprintf(w, "classified %d images in %s (%.1f images/s on %s, %d×%d, %s)%s\n",
		done, elapsed.Round(time.Millisecond), float64(done)/max(elapsed.Seconds(), 1e-9), dev, clf.Size(), clf.Size(), clf.Interpolation(), where)
	if tally != nil && done > 0 {
		fmt.Fprintf(w, "\nthe sub-folders of %s are the classifier's classes; accuracy on its %d readable images:\n", paths[0], done)
		if err := tally.Report().WriteText(w); err != nil {
			return err
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if !c.Bool(flagClassifySkipBad) {
		return fmt.Errorf("classify: %d of %d images could not be read (listed above); the other %d were classified (--%s lists them without failing)",
			len(bad), len(src.Items), done, flagClassifySkipBad)
	}
	fmt.Fprintf(w, "skipped %d images that could not be read (--%s):\n", len(bad), flagClassifySkipBad)
	for _, e := range bad {
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
