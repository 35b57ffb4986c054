package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/quantize"
)

// Files and folders inside a comparison's folder.
const (
	compareReportFile = "report.md"
	compareCurvesFile = "curves.png"
	compareStagesFile = "stages.json"
	compareCacheDir   = "cache"
	compareHeadDir    = "head"
	compareFTDir      = "finetune"
	classifierFile    = "classifier.onnx"
)

// The stages of a comparison, in order.
const (
	stageExtract        = "extract"
	stageHead           = "head"
	stageFineTune       = "finetune"
	stageExportHead     = "export-head"
	stageExportFineTune = "export-finetune"
)

// CompareSettings describe the reference experiment: VGG16 transfer
// learning, head-only versus block5 fine-tuned, as in the Keras tutorial,
// and beside them tlearn's recommended recipe (Recommended).
// The zero value of every optional field is the tutorial's choice (Adam at
// 1e-4 for all weights, batch 32, 50 head epochs), except for shuffled
// batches and finetune.DefaultEpochs fine-tuning epochs.
type CompareSettings struct {
	// Model is the prepared VGG model folder.
	Model string
	// TrainData holds the training images, one sub-folder per class.
	TrainData string
	// ValData holds the validation images; or, with ValData "", Val is
	// the fraction of TrainData held out for validation (split by Seed).
	ValData string
	Val     float64
	// Out is the report folder: caches, runs, classifiers, stages.json,
	// report.md and curves.png.
	Out string
	// Size is the input side; 0 means the model's default.
	Size int
	// Epochs of head-only training; 0 means head.DefaultEpochs.
	Epochs int
	// FineTuneEpochs of block5 fine-tuning; 0 means
	// finetune.DefaultEpochs.
	FineTuneEpochs int
	// Batch and LR of both modes; 0 means head.DefaultBatch and
	// head.DefaultLR.
	Batch int
	LR    float64
	// Seed of the split, the initial weights, the shuffling and dropout.
	Seed uint64
	// NoShuffle makes class-ordered batches, as the tutorial's generator.
	NoShuffle bool
	// Force redoes every stage instead of reusing finished ones.
	Force bool
	// NoBest leaves out the "tlearn best" row: the tutorial's two rows
	// alone.
	NoBest bool
	// Recipe is the "tlearn best" row's; nil means Recommended.
	Recipe *Recipe
	// Int8 adds the int8 rows: the model quantized (models/quantize,
	// calibrated on a seeded sample of TrainData at Size), the same
	// images extracted with it, and the tutorial's head-only and
	// fine-tuned rows trained on its features and maps, with both
	// extractions' speeds in the report. The "tlearn best" row stays
	// float32.
	Int8 bool
	// CalibrationImages is the int8 model's calibration sample; 0 means
	// quantize.DefaultImages.
	CalibrationImages int
	// Runtime says where ONNX Runtime runs extraction and fine-tuning; its
	// Threads also serve the exported classifiers' check runs.
	Runtime ortlib.Options
}

// resolve fills in the defaults.
func (s CompareSettings) resolve() CompareSettings {
	s.Epochs = cmpOrInt(s.Epochs, head.DefaultEpochs)
	s.FineTuneEpochs = cmpOrInt(s.FineTuneEpochs, finetune.DefaultEpochs)
	s.Batch = cmpOrInt(s.Batch, head.DefaultBatch)
	if s.LR == 0 {
		s.LR = head.DefaultLR
	}
	return s
}

func cmpOrInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// validate checks the resolved settings.
func (s CompareSettings) validate() error {
	switch {
	case s.ValData == "" && s.Val == 0:
		return fmt.Errorf("%w: compare needs validation images or a validation fraction", ErrSettings)
	case s.ValData != "" && s.Val != 0:
		return fmt.Errorf("%w: compare takes validation images or a validation fraction, not both", ErrSettings)
	case s.Val < 0 || s.Val >= 1:
		return fmt.Errorf("%w: validation fraction %v, want between 0 and 1", ErrSettings, s.Val)
	case s.Epochs < 0 || s.FineTuneEpochs < 0 || s.Batch < 0 || s.Size < 0:
		return fmt.Errorf("%w: compare: epochs, batch and size must be positive", ErrSettings)
	case s.CalibrationImages < 0 || (s.CalibrationImages != 0 && !s.Int8):
		return fmt.Errorf("%w: compare: %d calibration images: want a positive count, and int8 rows to calibrate for", ErrSettings, s.CalibrationImages)
	case !(s.LR > 0):
		return fmt.Errorf("%w: compare: the learning rate must be positive", ErrSettings)
	}
	if !s.NoBest {
		r := Recommended
		if s.Recipe != nil {
			r = *s.Recipe
		}
		if _, err := r.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Stage is one finished stage of a comparison, as stages.json records it.
type Stage struct {
	Name string `json:"name"`
	// Commands are the tlearn command lines that do the same (argv after
	// "tlearn", without the flags common to every command).
	Commands [][]string `json:"commands"`
	Seconds  float64    `json:"seconds"`
	// ImagesPerSecond is, for an extraction, the images (views) it ran
	// through the model over Seconds; 0 for other stages and in records
	// written before it was kept.
	ImagesPerSecond float64   `json:"images_per_second,omitempty"`
	Done            time.Time `json:"done"`
	// Reused is set when the stage was finished by an earlier call and
	// kept.
	Reused bool `json:"-"`
}

// CommandLines are Commands as shell command lines: "tlearn train ...".
func (s *Stage) CommandLines() []string {
	lines := make([]string, len(s.Commands))
	for i, args := range s.Commands {
		lines[i] = CommandLine(args)
	}
	return lines
}

// CommandLine is the tlearn command with the arguments args (argv after
// "tlearn") as a line to paste into a shell: an argument that a shell
// would split or expand is single-quoted.
func CommandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return "tlearn " + strings.Join(q, " ")
}

// StageEvent tells that a stage of a comparison starts, or is reused.
type StageEvent struct {
	Index, Count int // the stage's position, from 1
	Stage
	// Dir is the folder of the stage's output.
	Dir string
}

// CompareProgress receives Compare's reports: each stage as it starts or
// is reused, and in between the stages' own progress and messages.
type CompareProgress interface {
	progress.Reporter
	Stage(e StageEvent)
}

type nopCompare struct{ progress.Nop }

func (nopCompare) Stage(StageEvent) {}

// CompareResult is a finished comparison.
type CompareResult struct {
	// Stages are every stage, in order, as recorded in stages.json.
	Stages []Stage
	// Head and FineTune are the tutorial's two runs' metrics; Best is the
	// "tlearn best" row's fine-tuned run's, nil with NoBest.
	Head, FineTune, Best *rundir.Metrics
	// HeadInt8 and FineTuneInt8 are the tutorial's two runs on the int8
	// model's features and maps, nil without Int8.
	HeadInt8, FineTuneInt8 *rundir.Metrics
	// Extraction is the tutorial's extraction pass over the images;
	// ExtractionInt8 the int8 model's over the same images (zero without
	// Int8).
	Extraction, ExtractionInt8 ExtractionPass
	// Quantization is the int8 model's record of how it was made, nil
	// without Int8; QuantizeSeconds is what making it took.
	Quantization    *models.QuantizationSpec
	QuantizeSeconds float64
	// Report and Curves are the paths of report.md and curves.png.
	Report, Curves string

	histories map[string]head.History // by run folder
}

// ExtractionPass is what one extraction stage took.
type ExtractionPass struct {
	// Images is the number of images (views) in its caches.
	Images int
	// Seconds is the stage's time; for a pass that resumed an interrupted
	// one, the time of the rest.
	Seconds float64
	// ImagesPerSecond is the speed of the images the stage ran through the
	// model (all, or the rest) in Seconds.
	ImagesPerSecond float64
	// Reused is set when an earlier call ran the pass (this one found the
	// caches up to date).
	Reused bool
}

// compareRecord is stages.json.
type compareRecord struct {
	Stages []Stage `json:"stages"`
}

func (r *compareRecord) find(name string) *Stage {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return nil
}

func (r *compareRecord) put(s Stage) {
	if old := r.find(s.Name); old != nil {
		*old = s
		return
	}
	r.Stages = append(r.Stages, s)
}

// seconds is the recorded time of a stage, 0 when it never ran.
func (r *compareRecord) seconds(name string) float64 {
	if s := r.find(name); s != nil {
		return s.Seconds
	}
	return 0
}

// Compare runs the reference experiment into s.Out, stage by stage: one
// extraction pass over the images (pooled features and block4_pool maps),
// head-only training, block5 fine-tuning from a fresh head, the export of
// both runs as classifiers; then, unless s.NoBest, the recommended
// recipe's own extraction, head, fine-tuning from that head and export
// (the "tlearn best" row); with s.Int8, among the tutorial's stages, the
// quantization of the model, the int8 model's extraction of the same
// images and the tutorial's two runs and exports on its features and maps
// (the int8 rows); then report.md and curves.png. Every stage is
// what one tlearn command does, and stages.json records those commands.
// A later call reuses the stages that finished with the same commands
// (the extraction only checks its caches; an interrupted extraction or
// fine-tuning resumes); s.Force redoes everything. The caller initializes
// ONNX Runtime.
func Compare(ctx context.Context, s CompareSettings, p CompareProgress) (*CompareResult, error) {
	if p == nil {
		p = nopCompare{}
	}
	if err := fsutil.CheckOutput(s.Out, s.Model, s.TrainData, s.ValData); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	// Each stage locks its own cache or run too; this lock keeps a second
	// comparison out of stages.json and the report, and clears their
	// temporaries and the curves' that a killed comparison left.
	lock, err := lockOutput(s.Out, p, filepath.Join(s.Out, compareStagesFile),
		filepath.Join(s.Out, compareReportFile), filepath.Join(s.Out, compareCurvesFile))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	c, err := newComparison(s.resolve())
	if err != nil {
		return nil, err
	}
	stages := c.stages()
	for i, st := range stages {
		if err := c.runStage(ctx, i, len(stages), st, p); err != nil {
			return nil, err
		}
	}
	return c.report()
}

// comparison is a Compare call in progress.
type comparison struct {
	s        CompareSettings // resolved, with absolute paths
	spec     *models.Spec
	size     int
	rec      *compareRecord
	redone   map[string]bool // stages run again by this call
	computed map[string]int  // images each extraction stage of this call ran through the model
}

// newComparison checks the settings and the model, makes the report
// folder and reads what an earlier call recorded there.
func newComparison(s CompareSettings) (*comparison, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	var err error
	for _, p := range []*string{&s.Model, &s.TrainData, &s.ValData, &s.Out} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, fmt.Errorf("experiment: %w", err)
			}
		}
	}
	spec, err := models.ReadSpec(s.Model)
	if err != nil {
		return nil, err
	}
	if spec.Maps == nil || spec.Block5 == nil {
		return nil, fmt.Errorf("%w: %s (preset %s): fine-tuning needs block5 and block4_pool maps", ErrNotVGG, s.Model, spec.Preset)
	}
	if s.Int8 && spec.Int8() {
		return nil, fmt.Errorf("%w: %s is an int8 model (%s, quantized from extractor %.12s…): the int8 rows set it beside the float32 model it was made from, so compare takes that one",
			quantize.ErrQuantized, s.Model, spec.Quantization.Scheme, spec.Quantization.FromSHA256)
	}
	if st, err := os.Stat(s.Out); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("experiment: %s is a file, not a folder", s.Out)
	}
	if err := fsutil.CheckCreatable(filepath.Join(s.Out, compareStagesFile)); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	c := &comparison{s: s, spec: spec, size: cmpOrInt(s.Size, spec.DefaultSize), rec: &compareRecord{},
		redone: map[string]bool{}, computed: map[string]int{}}
	if !s.Force {
		path := filepath.Join(s.Out, compareStagesFile)
		if err := readJSONFile(path, c.rec); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("experiment: %w (remove it, or force every stage to be redone)", err)
		}
	}
	return c, nil
}

// compareStage is one planned stage.
type compareStage struct {
	name   string
	cmds   [][]string
	output string   // a file that exists once the stage is done
	deps   []string // stages whose outputs it reads
	run    func(ctx context.Context, p progress.Reporter) error
	// current, when set, says whether the finished output still fits its
	// inputs (a check the command lines cannot make); nil: it does.
	current func() bool
}

// runStage runs stage i of n, or reuses it when an earlier call finished
// it with the same commands and nothing it reads was redone.
func (c *comparison) runStage(ctx context.Context, i, n int, st compareStage, p CompareProgress) error {
	prev := c.rec.find(st.name)
	same := !c.s.Force && prev != nil && sameCommands(prev.Commands, st.cmds)
	depsRedone := slices.ContainsFunc(st.deps, func(d string) bool { return c.redone[d] })
	ev := StageEvent{Index: i + 1, Count: n, Stage: Stage{Name: st.name, Commands: st.cmds}, Dir: filepath.Dir(st.output)}
	// The extraction always runs: it checks its caches against the images
	// and the model, and returns at once when they are up to date.
	if same && !depsRedone && !checksCaches(st.name) && fileExists(st.output) && (st.current == nil || st.current()) {
		prev.Reused = true
		ev.Stage = *prev
		p.Stage(ev)
		return nil
	}
	p.Stage(ev)
	if err := ctx.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := st.run(ctx, p); err != nil {
		return fmt.Errorf("experiment: compare: stage %s: %w", st.name, err)
	}
	done := Stage{Name: st.name, Commands: st.cmds, Seconds: time.Since(t0).Seconds(), Done: now()}
	if n := c.computed[st.name]; n > 0 && done.Seconds > 0 {
		done.ImagesPerSecond = float64(n) / done.Seconds
	}
	if same && checksCaches(st.name) && c.computed[st.name] == 0 {
		// The caches of an earlier finished pass were up to date (Extract
		// refuses caches that no longer match): keep that pass's time.
		done.Seconds, done.ImagesPerSecond, done.Done, done.Reused = prev.Seconds, prev.ImagesPerSecond, prev.Done, true
	} else {
		c.redone[st.name] = true
	}
	c.rec.put(done)
	if err := writeJSONFile(filepath.Join(c.s.Out, compareStagesFile), c.rec); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}

func sameCommands(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(withoutNearest(x), withoutNearest(y)) })
}

// withoutNearest drops "--interpolation nearest" from an extract command:
// comparisons recorded before extract's default filter changed (issue 11)
// wrote no --interpolation and meant nearest, so their stages stay reusable.
func withoutNearest(args []string) []string {
	i := slices.Index(args, "--interpolation")
	if len(args) == 0 || args[0] != "extract" || i < 0 || i+1 >= len(args) || args[i+1] != string(dataset.Nearest) {
		return args
	}
	return slices.Delete(slices.Clone(args), i, i+2)
}

// shellQuote leaves plain words alone and single-quotes the rest.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

func readJSONFile(path string, v any) error {
	b, err := fsutil.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeJSONFile(path string, v any) error {
	return fsutil.WriteWith(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
