package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/cache"
	"github.com/tlearn/tlearn/models"
)

const (
	flagFTModel       = "model"
	flagFTTrain       = "train"
	flagFTVal         = "val"
	flagFTOut         = "out"
	flagFTEpochs      = "epochs"
	flagFTLR          = "lr"
	flagFTBlock5LR    = "block5-lr"
	flagFTBatch       = "batch"
	flagFTHidden      = "hidden"
	flagFTNoHidden    = "no-hidden"
	flagFTDropout     = "dropout"
	flagFTSeed        = "seed"
	flagFTInitHead    = "init-head"
	flagFTOptimizer   = "optimizer"
	flagFTMomentum    = "momentum"
	flagFTWeightDecay = "weight-decay"
	flagFTL2          = "l2"
	flagFTSmoothing   = "label-smoothing"
	flagFTClassWeight = "class-weights"
	flagFTFreeze      = "freeze-block5"
	flagFTNoShuffle   = "no-shuffle"
	flagFTEarlyStop   = "early-stop"
	flagFTSaveBest    = "save-best"
	flagFTForce       = "force"
)

func finetuneCommand() *cli.Command {
	return &cli.Command{
		Name:  "finetune",
		Usage: "train VGG16's block5 and the head on cached block4_pool maps",
		Description: `Trains block5_conv1..3 of the prepared VGG model together with the dense head
(GAP → Dense(hidden, ReLU) → Dropout → Dense(classes)) on the block4_pool maps
that ` + "`tlearn extract --maps`" + ` cached, with a training graph that tlearn generates
and ONNX Runtime runs (CPU, or CUDA with a GPU build of the library). Adam by
default, as the Keras tutorial; --init-head starts from a head trained with
` + "`tlearn train`" + ` (two-stage fine-tuning, usually with a smaller --lr).

The run directory has the same files as ` + "`tlearn train`" + `'s (settings.json with
mode "finetune", weights.safetensors with block5's tensors added, history.csv,
metrics.json, curves.png, confusion.png); ` + "`tlearn export --run`" + ` builds a classifier
with the fine-tuned block5. After every epoch the state is saved next to the run
directory (.RUN.finetune-checkpoint.safetensors): Ctrl-C and the same command
again resumes from the last finished epoch.

Example:
   tlearn extract --model model --data images --val 0.2 --cache cache --maps
   tlearn train --train cache/train --val cache/val --out run-head
   tlearn finetune --model model --train cache/train --val cache/val --out run-ft \
       --epochs 10 --lr 1e-5 --init-head run-head`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagFTModel, Usage: "prepared VGG model `DIR` the caches were extracted with", Required: true},
			&cli.StringFlag{Name: flagFTTrain, Usage: "training cache `DIR` with maps (extract --maps)", Required: true},
			&cli.StringFlag{Name: flagFTVal, Usage: "validation cache `DIR` with maps", Required: true},
			&cli.StringFlag{Name: flagFTOut, Usage: "run `DIR` to write", Required: true},
			&cli.IntFlag{Name: flagFTEpochs, Value: finetune.DefaultEpochs, Usage: "passes over the training maps"},
			&cli.Float64Flag{Name: flagFTLR, Value: head.DefaultLR, Usage: "learning rate (of the head, and of block5 unless --block5-lr)"},
			&cli.Float64Flag{Name: flagFTBlock5LR, Usage: "block5's learning rate", DefaultText: "--lr"},
			&cli.IntFlag{Name: flagFTBatch, Value: head.DefaultBatch, Usage: "maps per step"},
			&cli.IntFlag{Name: flagFTHidden, Value: head.DefaultHidden, Usage: "hidden units of the head (the --init-head's size when given)"},
			&cli.BoolFlag{Name: flagFTNoHidden, Usage: "no hidden layer (nor dropout)"},
			&cli.Float64Flag{Name: flagFTDropout, Value: head.DefaultDropout, Usage: "dropout after the hidden layer (0: none)"},
			&cli.Uint64Flag{Name: flagFTSeed, Usage: "seed of the head's initial weights, the shuffling and the dropout masks"},
			&cli.StringFlag{Name: flagFTInitHead, Usage: "start from the head of this `RUN` directory (tlearn train)"},
			&cli.StringFlag{Name: flagFTOptimizer, Value: finetune.OptimizerAdam, Usage: "adam or sgd"},
			&cli.Float64Flag{Name: flagFTMomentum, Value: finetune.DefaultMomentum, Usage: "SGD momentum (0: plain SGD)"},
			&cli.Float64Flag{Name: flagFTWeightDecay, Usage: "decoupled weight decay (AdamW-style: θ ← (1−lr·wd)·θ, every parameter)"},
			&cli.Float64Flag{Name: flagFTL2, Usage: "coupled L2 on the kernels (added to the gradient, as tlearn train's --l2)"},
			&cli.Float64Flag{Name: flagFTSmoothing, Usage: "label smoothing (0..1)"},
			&cli.StringFlag{Name: flagFTClassWeight, Value: "none", Usage: "none or balanced"},
			&cli.BoolFlag{Name: flagFTFreeze, Usage: "keep block5 fixed (trains only the head, on the graph)"},
			&cli.BoolFlag{Name: flagFTNoShuffle, Usage: "keep the cache's order in every epoch (the tutorial's shuffle=False)"},
			&cli.IntFlag{Name: flagFTEarlyStop, Usage: "stop after this many epochs without a better validation accuracy (0: off)"},
			&cli.BoolFlag{Name: flagFTSaveBest, Usage: "keep the weights of the epoch with the best validation accuracy"},
			&cli.BoolFlag{Name: flagFTForce, Usage: "replace an existing run directory"},
		),
		Action: finetuneAction,
	}
}

// finetuneRunSettings is settings.json of a fine-tuning run.
type finetuneRunSettings struct {
	rundir.Info
	finetune.Settings
	InitHead        string  `json:"init_head,omitempty"`
	ImagesPerSecond float64 `json:"images_per_second"`
	Device          string  `json:"device"`
}

func finetuneAction(c *cli.Context) error {
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	s, err := finetuneSettings(c)
	if err != nil {
		return usageError{err}
	}
	s.Runtime = opts
	out := filepath.Clean(c.String(flagFTOut))
	if _, err := os.Stat(out); err == nil && !c.Bool(flagFTForce) {
		return usageError{fmt.Errorf("%w: %s (choose another --%s, or --%s to replace it)", rundir.ErrExists, out, flagFTOut, flagFTForce)}
	}
	in, err := openFinetuneInputs(c)
	if err != nil {
		return err
	}
	defer in.Close()
	if _, err := initORT(c); err != nil {
		return err
	}
	initHead := c.String(flagFTInitHead)
	start, err := finetune.StartWeights(in.modelDir, in.spec, in.modelSHA, initHead)
	if errors.Is(err, finetune.ErrOtherModel) {
		return fmt.Errorf("%w; give --%s a run trained on %s's features", err, flagFTInitHead, in.modelDir)
	}
	if err != nil {
		return err
	}
	// The head's size is the init head's, unless --hidden asks for another
	// one explicitly (FineTune then explains the mismatch).
	if initHead != "" && !c.IsSet(flagFTHidden) && !c.IsSet(flagFTNoHidden) {
		s.Hidden, s.NoHidden = start.HiddenSize(), start.HiddenSize() == 0
	}

	ckpt := checkpointPath(out)
	s.Checkpoint = ckpt
	errw := errWriter(c)
	prog := newEpochBar(errw)
	td, vd := in.trainData, in.valData
	fmt.Fprintf(errw, "fine-tuning block5 (%d channels, %d×%d maps) and the head on %d maps, validating on %d\n",
		td.Shape[0], td.Shape[1], td.Shape[2], td.Len(), vd.Len())
	res, err := finetune.FineTune(c.Context, td, vd, start, s, prog)
	prog.Finish()
	var diverged *head.DivergedError
	if errors.As(err, &diverged) {
		return fmt.Errorf("%w; lower --%s (and --%s)", err, flagFTLR, flagFTBlock5LR)
	}
	if err != nil {
		if errors.Is(err, c.Context.Err()) && c.Context.Err() != nil {
			return c.Context.Err()
		}
		return err
	}

	settings, err := in.runSettings(res, initHead)
	if err != nil {
		return err
	}
	metrics := rundir.NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, res.Validation)
	if err := rundir.Write(out, &rundir.Contents{
		Settings: settings, Weights: res.Weights, History: res.History, Metrics: metrics,
		Title: filepath.Base(out) + " (block5 fine-tuned)", Overwrite: c.Bool(flagFTForce),
	}); errors.Is(err, rundir.ErrExists) {
		return fmt.Errorf("%w (choose another --%s, or --%s to replace it)", err, flagFTOut, flagFTForce)
	} else if err != nil {
		return err
	}
	if err := os.Remove(ckpt); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("finetune: remove the finished run's checkpoint: %w", err)
	}
	f, b := metrics.Final, metrics.Best
	fmt.Fprintf(errw, "done in %s on %s (%.1f images/s): final val_accuracy %.4f, best %.4f (epoch %d); wrote %s\n",
		time.Duration(res.Seconds*float64(time.Second)).Round(time.Second), res.Device, res.ImagesPerSecond,
		f.ValAccuracy, b.ValAccuracy, b.Epoch, out)
	return nil
}

// finetuneInputs are the prepared model and the two map caches of a
// fine-tuning run, opened and checked against each other.
type finetuneInputs struct {
	modelDir, modelSHA string
	spec               *models.Spec
	train, val         *cache.Cache
	trainRef, valRef   rundir.CacheRef
	trainData, valData *finetune.MapsData
}

// openFinetuneInputs reads --model and opens --train and --val.
func openFinetuneInputs(c *cli.Context) (_ *finetuneInputs, err error) {
	in := &finetuneInputs{modelDir: c.String(flagFTModel)}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	if in.spec, err = models.ReadSpec(in.modelDir); err != nil {
		return nil, err
	}
	if in.spec.Block5 == nil || in.spec.Maps == nil {
		return nil, fmt.Errorf("finetune: %s is a %q model without VGG's block5: fine-tuning needs a VGG16 (prepare one with `tlearn models prepare`); train a head on its features with `tlearn train` instead", in.modelDir, in.spec.Preset)
	}
	if in.modelSHA, err = fileSHA256(filepath.Join(in.modelDir, models.ExtractorFile)); err != nil {
		return nil, err
	}
	if in.train, in.trainRef, err = openMapsCache(c.String(flagFTTrain), in.spec, in.modelSHA); err != nil {
		return nil, err
	}
	if in.val, in.valRef, err = openMapsCache(c.String(flagFTVal), in.spec, in.modelSHA); err != nil {
		return nil, err
	}
	if in.trainRef.Fingerprint != in.valRef.Fingerprint {
		return nil, fmt.Errorf("finetune: %s and %s were extracted with different settings (fingerprints differ); extract both with the same model and --size", in.trainRef.Dir, in.valRef.Dir)
	}
	in.trainData, in.valData = mapsData(in.train), mapsData(in.val)
	if strings.Join(in.trainData.Classes, "\x00") != strings.Join(in.valData.Classes, "\x00") {
		return nil, fmt.Errorf("finetune: %s has classes %v, %s has %v", in.trainRef.Dir, in.trainData.Classes, in.valRef.Dir, in.valData.Classes)
	}
	return in, nil
}

// Close closes the caches.
func (in *finetuneInputs) Close() error {
	var errs []error
	for _, cc := range []*cache.Cache{in.train, in.val} {
		if cc != nil {
			errs = append(errs, cc.Close())
		}
	}
	return errors.Join(errs...)
}

// runSettings is settings.json of the finished run.
func (in *finetuneInputs) runSettings(res *finetune.Result, initHead string) (finetuneRunSettings, error) {
	absModel, err := filepath.Abs(in.modelDir)
	if err != nil {
		return finetuneRunSettings{}, err
	}
	absInit := ""
	if initHead != "" {
		if absInit, err = filepath.Abs(initHead); err != nil {
			return finetuneRunSettings{}, err
		}
	}
	return finetuneRunSettings{
		Info: rundir.Info{
			Mode: rundir.ModeFineTune, ModelDir: absModel, ModelSHA256: in.modelSHA, Preset: in.spec.Preset,
			Classes: in.trainData.Classes, TrainCache: in.trainRef, ValCache: in.valRef,
			Created: time.Now().UTC(), Seconds: res.Seconds,
		},
		Settings:        res.Settings,
		InitHead:        absInit,
		ImagesPerSecond: res.ImagesPerSecond,
		Device:          string(res.Device),
	}, nil
}

// finetuneSettings reads the training flags.
func finetuneSettings(c *cli.Context) (finetune.Settings, error) {
	cw, err := head.ParseClassWeighting(c.String(flagFTClassWeight))
	if err != nil {
		return finetune.Settings{}, err
	}
	s := finetune.Settings{
		Settings: head.Settings{
			Hidden: c.Int(flagFTHidden), NoHidden: c.Bool(flagFTNoHidden),
			Dropout: c.Float64(flagFTDropout), NoDropout: c.IsSet(flagFTDropout) && c.Float64(flagFTDropout) == 0,
			LR: c.Float64(flagFTLR), Batch: c.Int(flagFTBatch), Epochs: c.Int(flagFTEpochs),
			L2: c.Float64(flagFTL2), LabelSmoothing: c.Float64(flagFTSmoothing), ClassWeights: cw,
			Seed: c.Uint64(flagFTSeed), NoShuffle: c.Bool(flagFTNoShuffle),
			EarlyStop: c.Int(flagFTEarlyStop), SaveBest: c.Bool(flagFTSaveBest),
		},
		Block5LR:     c.Float64(flagFTBlock5LR),
		FreezeBlock5: c.Bool(flagFTFreeze),
		Optimizer:    strings.ToLower(c.String(flagFTOptimizer)),
		Momentum:     c.Float64(flagFTMomentum),
		NoMomentum:   c.IsSet(flagFTMomentum) && c.Float64(flagFTMomentum) == 0,
		WeightDecay:  c.Float64(flagFTWeightDecay),
	}
	// In head.Settings 0 means "default"; on the command line an explicit 0
	// is a mistake (or, for --hidden, a request that --no-hidden states).
	for _, f := range []string{flagFTEpochs, flagFTBatch, flagFTHidden} {
		if c.IsSet(f) && c.Int(f) <= 0 {
			return s, fmt.Errorf("--%s must be positive", f)
		}
	}
	if c.IsSet(flagFTLR) && c.Float64(flagFTLR) <= 0 {
		return s, fmt.Errorf("--%s must be positive", flagFTLR)
	}
	if c.IsSet(flagFTBlock5LR) && c.Float64(flagFTBlock5LR) <= 0 {
		return s, fmt.Errorf("--%s must be positive (use --%s to keep block5 fixed)", flagFTBlock5LR, flagFTFreeze)
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// checkpointPath is the hidden sibling file of the run directory where
// FineTune keeps its state until the run is written.
func checkpointPath(out string) string {
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+"."+finetune.CheckpointFile)
}

// openMapsCache opens a cache and checks that it has maps made by the
// prepared model (sha256 of its extractor.onnx) with its channel count.
func openMapsCache(dir string, spec *models.Spec, modelSHA string) (*cache.Cache, rundir.CacheRef, error) {
	cc, err := cache.Open(dir)
	if err != nil {
		return nil, rundir.CacheRef{}, err
	}
	m := cc.Manifest
	fail := func(format string, args ...any) (*cache.Cache, rundir.CacheRef, error) {
		cc.Close()
		return nil, rundir.CacheRef{}, fmt.Errorf("finetune: "+format, args...)
	}
	switch {
	case len(m.MapsShape) != 3 || cc.Maps == nil:
		return fail("%s has no block4_pool maps; extract it again with --maps", dir)
	case m.Model.ExtractorSHA256 != modelSHA:
		return fail("%s was extracted with another model (extractor.onnx sha256 %s, the --%s has %s); fine-tune with the model the maps came from",
			dir, short(m.Model.ExtractorSHA256), flagFTModel, short(modelSHA))
	case m.MapsShape[0] != spec.Block5.Channels:
		return fail("%s has maps of %d channels, the model's block5 takes %d (maps of another backbone?)", dir, m.MapsShape[0], spec.Block5.Channels)
	case m.MapsShape[1] < 2 || m.MapsShape[2] < 2:
		return fail("%s has %d×%d maps; block5's max pool needs at least 2×2 (extract at --size 32 or more)", dir, m.MapsShape[1], m.MapsShape[2])
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return cc, rundir.CacheRef{Dir: abs, Fingerprint: m.Fingerprint, N: m.N}, nil
}

func mapsData(cc *cache.Cache) *finetune.MapsData {
	s := cc.Manifest.MapsShape
	return &finetune.MapsData{Maps: cc.Maps, Y: cc.Labels, Classes: cc.Manifest.Classes, Shape: [3]int{s[0], s[1], s[2]}}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("finetune: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("finetune: read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
