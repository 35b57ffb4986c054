package experiment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tlearn/tlearn/internal/fsutil"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
)

// FineTuneSettings say what one fine-tuning run trains on and where it is
// written. The zero Tuning is the reference experiment.
type FineTuneSettings struct {
	// Model is the prepared VGG model folder the caches were extracted with.
	Model string
	// Train and Val are feature caches with block4_pool maps.
	Train, Val string
	// Out is the run directory to write. The state after every epoch is
	// kept next to it (.NAME.finetune-checkpoint.safetensors) until the
	// run is written, so that the same call resumes an interrupted run.
	Out string
	// InitHead, when set, is a run directory (head or fine-tune) whose head
	// is the starting point instead of a fresh one: two-stage fine-tuning.
	// Its hidden size is used unless Tuning sets Hidden or NoHidden.
	InitHead string
	// Tuning are the training settings; its Checkpoint is set from Out.
	Tuning finetune.Settings
	// Overwrite replaces an existing run directory (and nothing else: see
	// rundir.CheckNew) and discards a checkpoint next to it that a run with
	// other settings left (without it, an error wrapping
	// finetune.ErrOtherRun). Without it an existing Out is an error wrapping
	// rundir.ErrExists. Out may not be, lie inside or hold one of the
	// inputs (an *fsutil.OverlapError). Both are checked before training.
	Overwrite bool
	// TTA validates on the mean probabilities of Val's views (test-time
	// augmentation) instead of its plain images.
	TTA bool
}

// fineTuneRunSettings is settings.json of a fine-tuning run.
type fineTuneRunSettings struct {
	rundir.Info
	finetune.Settings
	InitHead        string  `json:"init_head,omitempty"`
	ImagesPerSecond float64 `json:"images_per_second"`
	Device          string  `json:"device"`
}

// CheckpointPath is the hidden sibling file of the run directory out where
// FineTune keeps its state until the run is written.
func CheckpointPath(out string) string {
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+"."+finetune.CheckpointFile)
}

// FineTune trains block5 of the prepared model and the head on the cached
// block4_pool maps and writes the run directory, with block5's tensors in
// its weights. It logs the data, every epoch and a summary on p (nil:
// silent). On cancellation it returns ctx's error; the checkpoint of the
// last finished epoch stays for the next call. The caller initializes ONNX
// Runtime.
func FineTune(ctx context.Context, s FineTuneSettings, p progress.Reporter) (*Run, error) {
	p = progress.OrNop(p)
	if err := s.Tuning.Validate(); err != nil {
		return nil, err
	}
	out := filepath.Clean(s.Out)
	if err := checkNew(out, s.Overwrite, s.Model, s.Train, s.Val, s.InitHead); err != nil {
		return nil, tidyFinished(err, out, CheckpointPath(out))
	}
	// The checkpoint is out's too: two runs into out would otherwise race
	// on it, and one killed while writing it leaves its temporary.
	lock, err := lockOutput(out, p, CheckpointPath(out))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	spec, err := models.ReadSpec(s.Model)
	if err != nil {
		return nil, err
	}
	if spec.Block5 == nil || spec.Maps == nil {
		return nil, fmt.Errorf("%w: %s is a %q model without VGG's block5", ErrNotVGG, s.Model, spec.Preset)
	}
	modelSHA, err := models.ExtractorSHA256(s.Model)
	if err != nil {
		return nil, err
	}
	train, val, err := openMapsCaches(s.Train, s.Val, s.Model, spec, modelSHA)
	if err != nil {
		return nil, err
	}
	defer train.Close()
	defer val.Close()
	trainData, valData := mapsData(train.c), evalMapsData(val.c, s.TTA)

	start, err := finetune.StartWeights(s.Model, spec, modelSHA, s.InitHead)
	if err != nil {
		return nil, err
	}
	if spec.ExtractorSHA256 == "" {
		p.Log(models.NoSHA256Note(s.Model))
	}
	if spec.Int8() {
		p.Log(Int8MapsNote(s.Model))
	}
	if s.InitHead != "" {
		if info, err := rundir.ReadInfo(s.InitHead); err == nil && info.NoteUnchecked(s.InitHead) != "" {
			p.Log(info.NoteUnchecked(s.InitHead))
		}
	}
	t := s.Tuning
	if s.InitHead != "" && t.Hidden == 0 && !t.NoHidden {
		t.Hidden, t.NoHidden = start.HiddenSize(), start.HiddenSize() == 0
	}
	t.Checkpoint = CheckpointPath(out)
	held := ""
	if t.Holdout > 0 {
		held = fmt.Sprintf(" less a holdout of %g (seed %d) to select on", t.Holdout, t.HoldoutSeed)
	}
	p.Log(fmt.Sprintf("fine-tuning block5 (%d channels, %d×%d maps) and the head on %d maps%s, validating on %d",
		trainData.Shape[0], trainData.Shape[1], trainData.Shape[2], trainData.Len(), held, valData.Len()))
	res, err := finetune.FineTune(ctx, trainData, valData, start, t, p)
	if errors.Is(err, finetune.ErrOtherRun) && s.Overwrite {
		// Replacing the run means starting it over: the abandoned run's
		// checkpoint would otherwise stay for ever (no run resumes it).
		if err := os.Remove(t.Checkpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("experiment: remove the checkpoint of a run with other settings: %w", err)
		}
		p.Log("removed " + t.Checkpoint + ", the checkpoint of a run with other settings, to start over")
		res, err = finetune.FineTune(ctx, trainData, valData, start, t, p)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, ctx.Err()
		}
		return nil, err
	}
	m, err := writeFineTuneRun(out, s, spec, modelSHA, train, val, res)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(t.Checkpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("experiment: remove the finished run's checkpoint: %w", err)
	}
	p.Log(fmt.Sprintf("done in %s on %s (%.1f images/s): final val_accuracy %.4f, best %s (epoch %d); wrote %s",
		fsutil.FormatSeconds(res.Seconds), res.Device, res.ImagesPerSecond,
		m.Final.ValAccuracy, describeBest(m), m.Best.Epoch, out))
	return &Run{Dir: out, Metrics: m}, nil
}

// writeFineTuneRun writes the run directory of a finished fine-tuning.
func writeFineTuneRun(out string, s FineTuneSettings, spec *models.Spec, modelSHA string, train, val *mapsCache, res *finetune.Result) (*rundir.Metrics, error) {
	absModel, err := filepath.Abs(s.Model)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	absInit := ""
	if s.InitHead != "" {
		if absInit, err = filepath.Abs(s.InitHead); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
	}
	settings := fineTuneRunSettings{
		Info: rundir.Info{
			Mode: rundir.ModeFineTune, ModelDir: absModel, ModelSHA256: modelSHA, Preset: spec.Preset,
			Classes: train.c.Manifest.Classes, TrainCache: train.ref, ValCache: val.ref,
			Created: now(), Seconds: res.Seconds, HoldoutN: res.HoldoutN, TTA: s.TTA,
		},
		Settings:        res.Settings,
		InitHead:        absInit,
		ImagesPerSecond: res.ImagesPerSecond,
		Device:          string(res.Device),
	}
	m := rundir.NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, res.Validation)
	err = rundir.Write(out, &rundir.Contents{
		Settings: settings, Weights: res.Weights, History: res.History, Metrics: m,
		Title: filepath.Base(out) + " (block5 fine-tuned)", Overwrite: s.Overwrite,
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// mapsCache is an opened cache with maps and its reference for
// settings.json.
type mapsCache struct {
	c   *cache.Cache
	ref rundir.CacheRef
}

func (m *mapsCache) Close() error { return m.c.Close() }

// openMapsCaches opens the training and validation caches, each checked by
// openMapsCache, and checks that they fit each other.
func openMapsCaches(trainDir, valDir, modelDir string, spec *models.Spec, modelSHA string) (train, val *mapsCache, err error) {
	if train, err = openMapsCache(trainDir, modelDir, spec, modelSHA); err != nil {
		return nil, nil, err
	}
	if val, err = openMapsCache(valDir, modelDir, spec, modelSHA); err != nil {
		return nil, nil, errors.Join(err, train.Close())
	}
	tm, vm := train.c.Manifest, val.c.Manifest
	switch {
	case tm.BaseFingerprint() != vm.BaseFingerprint():
		err = fmt.Errorf("experiment: %s and %s were extracted with different settings (fingerprints differ); extract both with the same model and size", train.ref.Dir, val.ref.Dir)
	case !slices.Equal(tm.Classes, vm.Classes):
		err = fmt.Errorf("experiment: %s has classes %v, %s has %v", train.ref.Dir, tm.Classes, val.ref.Dir, vm.Classes)
	}
	if err != nil {
		return nil, nil, errors.Join(err, train.Close(), val.Close())
	}
	return train, val, nil
}

// openMapsCache opens a cache and checks that it has maps made by the
// prepared model (sha256 of its extractor.onnx) with its channel count.
func openMapsCache(dir, modelDir string, spec *models.Spec, modelSHA string) (*mapsCache, error) {
	cc, err := cache.Open(dir)
	if err != nil {
		return nil, err
	}
	m := cc.Manifest
	fail := func(format string, args ...any) (*mapsCache, error) {
		return nil, errors.Join(fmt.Errorf("experiment: "+format, args...), cc.Close())
	}
	switch {
	case !hasMaps(cc):
		return nil, errors.Join(&NoMapsError{Dir: dir}, cc.Close())
	case m.Model.ExtractorSHA256 != modelSHA:
		return fail("%s was extracted with another model (extractor.onnx sha256 %s, the model %s has %s); fine-tune with the model the maps came from",
			dir, shortSHA(m.Model.ExtractorSHA256), modelDir, shortSHA(modelSHA))
	case m.MapsShape[0] != spec.Block5.Channels:
		return fail("%s has maps of %d channels, the model's block5 takes %d (maps of another backbone?)", dir, m.MapsShape[0], spec.Block5.Channels)
	case m.MapsShape[1] < 2 || m.MapsShape[2] < 2:
		return fail("%s has %d×%d maps; block5's max pool needs at least 2×2 (extract at size 32 or more)", dir, m.MapsShape[1], m.MapsShape[2])
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return &mapsCache{cc, rundir.CacheRef{Dir: abs, Fingerprint: m.Fingerprint, N: m.N}}, nil
}

func mapsData(cc *cache.Cache) *finetune.MapsData {
	s := cc.Manifest.MapsShape
	return &finetune.MapsData{Maps: cc.Maps, Y: cc.Labels, Classes: cc.Manifest.Classes, Shape: [3]int{s[0], s[1], s[2]}, Views: cc.Manifest.Views}
}

// hasMaps reports whether the cache holds block4_pool maps.
func hasMaps(cc *cache.Cache) bool { return len(cc.Manifest.MapsShape) == 3 && cc.Maps != nil }

// Int8MapsNote is the note of a fine-tuning on the maps of an int8 model
// (models quantize). The decision (BENCHMARKS.md, issue 13): the maps come
// from the int8 graph, since three measurements, the last on 5,000
// validation images, found fine-tuning on them within seed noise of float32
// maps, with no sign of a loss; the note says so, with the numbers.
func Int8MapsNote(model string) string {
	return fmt.Sprintf("note: %s is an int8 model, so these maps are int8: fine-tuning on them measured within noise of float32 maps (on 5,000 validation images +0.2 points at the epoch the holdout chose, one seed; on 1,000 +0.4 and on 600 -0.8, means of 3 seeds; compare --int8 measures it on your images)", model)
}
