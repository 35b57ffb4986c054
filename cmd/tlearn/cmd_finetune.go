package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/tlearn/tlearn/head"
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
			&cli.IntFlag{Name: flagFTEpochs, Value: head.DefaultFineTuneEpochs, Usage: "passes over the training maps"},
			&cli.Float64Flag{Name: flagFTLR, Value: head.DefaultLR, Usage: "learning rate (of the head, and of block5 unless --block5-lr)"},
			&cli.Float64Flag{Name: flagFTBlock5LR, Usage: "block5's learning rate", DefaultText: "--lr"},
			&cli.IntFlag{Name: flagFTBatch, Value: head.DefaultBatch, Usage: "maps per step"},
			&cli.IntFlag{Name: flagFTHidden, Value: head.DefaultHidden, Usage: "hidden units of the head (the --init-head's size when given)"},
			&cli.BoolFlag{Name: flagFTNoHidden, Usage: "no hidden layer (nor dropout)"},
			&cli.Float64Flag{Name: flagFTDropout, Value: head.DefaultDropout, Usage: "dropout after the hidden layer (0: none)"},
			&cli.Uint64Flag{Name: flagFTSeed, Usage: "seed of the head's initial weights, the shuffling and the dropout masks"},
			&cli.StringFlag{Name: flagFTInitHead, Usage: "start from the head of this `RUN` directory (tlearn train)"},
			&cli.StringFlag{Name: flagFTOptimizer, Value: head.OptimizerAdam, Usage: "adam or sgd"},
			&cli.Float64Flag{Name: flagFTMomentum, Value: head.DefaultMomentum, Usage: "SGD momentum (0: plain SGD)"},
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
	head.RunInfo
	head.FineTuneSettings
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
		return usageError{fmt.Errorf("%w: %s (choose another --%s, or --%s to replace it)", head.ErrRunExists, out, flagFTOut, flagFTForce)}
	}

	modelDir := c.String(flagFTModel)
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		return err
	}
	if spec.Block5 == nil || spec.Maps == nil {
		return fmt.Errorf("finetune: %s is a %q model without VGG's block5: fine-tuning needs a VGG16 (prepare one with `tlearn models prepare`); train a head on its features with `tlearn train` instead", modelDir, spec.Preset)
	}
	modelSHA, err := models.ExtractorSHA256(modelDir)
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	train, trainRef, err := openMapsCache(c.String(flagFTTrain), spec, modelSHA)
	if err != nil {
		return err
	}
	defer train.Close()
	val, valRef, err := openMapsCache(c.String(flagFTVal), spec, modelSHA)
	if err != nil {
		return err
	}
	defer val.Close()
	if trainRef.Fingerprint != valRef.Fingerprint {
		return fmt.Errorf("finetune: %s and %s were extracted with different settings (fingerprints differ); extract both with the same model and --size", trainRef.Dir, valRef.Dir)
	}
	trainData, valData := mapsData(train), mapsData(val)
	if strings.Join(trainData.Classes, "\x00") != strings.Join(valData.Classes, "\x00") {
		return fmt.Errorf("finetune: %s has classes %v, %s has %v", trainRef.Dir, trainData.Classes, valRef.Dir, valData.Classes)
	}

	if _, err := initORT(c); err != nil {
		return err
	}
	block5, err := models.ReadBlock5(modelDir, spec)
	if err != nil {
		return err
	}
	start := &head.Weights{Classes: trainData.Classes, Tensors: map[string]head.Tensor{}}
	for _, t := range block5 {
		start.Tensors[t.Name] = head.Tensor{Shape: t.Shape, Data: t.Data}
	}
	initHead := c.String(flagFTInitHead)
	if initHead != "" {
		w, err := head.LoadWeights(filepath.Join(initHead, head.WeightsFile))
		if err != nil {
			return err
		}
		info, err := head.ReadRunInfo(initHead)
		if err != nil {
			return err
		}
		if info.ModelSHA256 != "" && info.ModelSHA256 != modelSHA {
			return fmt.Errorf("finetune: --%s %s was trained on features of another model (its extractor.onnx sha256 %s, %s has %s)", flagFTInitHead, initHead, short(info.ModelSHA256), modelDir, short(modelSHA))
		}
		// The head's size is the init head's, unless --hidden asks for
		// another one explicitly (FineTune then explains the mismatch).
		if !c.IsSet(flagFTHidden) && !c.IsSet(flagFTNoHidden) {
			s.Hidden, s.NoHidden = w.HiddenSize(), w.HiddenSize() == 0
		}
		for _, name := range []string{head.HiddenWeight, head.HiddenBias, head.OutputWeight, head.OutputBias} {
			if t, ok := w.Tensors[name]; ok {
				start.Tensors[name] = t
			}
		}
		start.Classes = w.Classes
	}

	ckpt := checkpointPath(out)
	s.Checkpoint = ckpt
	errw := errWriter(c)
	prog := newFinetuneProgress(errw, s.Resolve())
	fmt.Fprintf(errw, "fine-tuning block5 (%d channels, %d×%d maps) and the head on %d maps, validating on %d\n",
		trainData.Shape[0], trainData.Shape[1], trainData.Shape[2], trainData.Len(), valData.Len())
	res, err := head.FineTune(c.Context, trainData, valData, start, s, prog)
	prog.finish()
	if err != nil {
		if errors.Is(err, c.Context.Err()) && c.Context.Err() != nil {
			return c.Context.Err()
		}
		return err
	}

	absModel, err := filepath.Abs(modelDir)
	if err != nil {
		return err
	}
	absInit := ""
	if initHead != "" {
		if absInit, err = filepath.Abs(initHead); err != nil {
			return err
		}
	}
	settings := finetuneRunSettings{
		RunInfo: head.RunInfo{
			Mode: head.ModeFineTune, ModelDir: absModel, ModelSHA256: modelSHA, Preset: spec.Preset,
			Classes: trainData.Classes, TrainCache: trainRef, ValCache: valRef,
			Created: time.Now().UTC(), Seconds: res.Seconds,
		},
		FineTuneSettings: res.Settings,
		InitHead:         absInit,
		ImagesPerSecond:  res.ImagesPerSecond,
		Device:           string(res.Device),
	}
	metrics := head.NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, res.Validation)
	if err := head.WriteRun(out, &head.Run{
		Settings: settings, Weights: res.Weights, History: res.History, Metrics: metrics,
		Title: filepath.Base(out) + " (block5 fine-tuned)", Overwrite: c.Bool(flagFTForce),
	}); err != nil {
		return err
	}
	if err := os.Remove(ckpt); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("finetune: remove the finished run's checkpoint: %w", err)
	}
	f, b := metrics.Final, metrics.Best
	fmt.Fprintf(errw, "done in %s on %s (%.1f images/s): final val_accuracy %.4f, best %.4f (epoch %d); wrote %s\n",
		time.Duration(res.Seconds*float64(time.Second)).Round(time.Second), res.Device, res.ImagesPerSecond,
		f.ValAccuracy, b.ValAccuracy, b.Epoch+1, out)
	return nil
}

// finetuneSettings reads the training flags.
func finetuneSettings(c *cli.Context) (head.FineTuneSettings, error) {
	cw, err := head.ParseClassWeighting(c.String(flagFTClassWeight))
	if err != nil {
		return head.FineTuneSettings{}, err
	}
	s := head.FineTuneSettings{
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
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+"."+head.CheckpointFile)
}

// openMapsCache opens a cache and checks that it has maps made by the
// prepared model (sha256 of its extractor.onnx) with its channel count.
func openMapsCache(dir string, spec *models.Spec, modelSHA string) (*cache.Cache, head.CacheRef, error) {
	cc, err := cache.Open(dir)
	if err != nil {
		return nil, head.CacheRef{}, err
	}
	m := cc.Manifest
	fail := func(format string, args ...any) (*cache.Cache, head.CacheRef, error) {
		cc.Close()
		return nil, head.CacheRef{}, fmt.Errorf("finetune: "+format, args...)
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
	return cc, head.CacheRef{Dir: abs, Fingerprint: m.Fingerprint, N: m.N}, nil
}

func mapsData(cc *cache.Cache) *head.MapsData {
	s := cc.Manifest.MapsShape
	return &head.MapsData{Maps: cc.Maps, Y: cc.Labels, Classes: cc.Manifest.Classes, Shape: [3]int{s[0], s[1], s[2]}}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// finetuneProgress draws a bar per epoch with images/s and the run's ETA
// on a terminal, or prints a line every plainLineEvery otherwise, and
// one summary line per epoch.
type finetuneProgress struct {
	w        io.Writer
	terminal bool
	batch    int
	epochs   int

	bar        *progressbar.ProgressBar
	barEpoch   int
	runStart   time.Time
	stepsDone  int // steps run by this process
	lastLine   time.Time
	epochStart time.Time
}

func newFinetuneProgress(w io.Writer, s head.FineTuneSettings) *finetuneProgress {
	p := &finetuneProgress{w: w, batch: s.Batch, epochs: s.Epochs, barEpoch: -1, runStart: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
	}
	p.lastLine = p.runStart
	return p
}

func (p *finetuneProgress) Note(msg string) {
	p.clear()
	fmt.Fprintln(p.w, msg)
}

func (p *finetuneProgress) Step(epoch, done, total int) {
	p.stepsDone++
	now := time.Now()
	if epoch != p.barEpoch {
		p.barEpoch, p.epochStart = epoch, now
		if p.terminal {
			p.clear()
			p.bar = progressbar.NewOptions(total*p.batch,
				progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch+1, p.epochs)),
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("images"),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionFullWidth(),
			)
		}
	}
	if p.bar != nil {
		p.bar.Set(done * p.batch)
		return
	}
	if now.Sub(p.lastLine) >= plainLineEvery {
		p.lastLine = now
		rate := float64(p.stepsDone*p.batch) / now.Sub(p.runStart).Seconds()
		left := (total - done) + (p.epochs-epoch-1)*total
		eta := time.Duration(float64(left*p.batch) / max(rate, 1e-9) * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(p.w, "epoch %d/%d: step %d/%d, %.1f images/s, ETA %s\n", epoch+1, p.epochs, done, total, rate, eta)
	}
}

func (p *finetuneProgress) EpochDone(e head.Epoch, epochs int) {
	p.clear()
	fmt.Fprintf(p.w, "epoch %d/%d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f (%s)\n",
		e.Epoch+1, epochs, e.Loss, e.Accuracy, e.ValLoss, e.ValAccuracy, time.Duration(e.Seconds*float64(time.Second)).Round(time.Second))
}

func (p *finetuneProgress) clear() {
	if p.bar != nil {
		p.bar.Exit()
		fmt.Fprintln(p.w)
		p.bar = nil
	}
}

func (p *finetuneProgress) finish() { p.clear() }
