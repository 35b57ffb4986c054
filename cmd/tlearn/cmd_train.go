package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/cache"
	"github.com/tlearn/tlearn/internal/fsutil"
)

const (
	flagTrainTrain       = "train"
	flagTrainVal         = "val"
	flagTrainOut         = "out"
	flagTrainHidden      = "hidden"
	flagTrainDropout     = "dropout"
	flagTrainLR          = "lr"
	flagTrainBatch       = "batch"
	flagTrainEpochs      = "epochs"
	flagTrainL2          = "l2"
	flagTrainSmoothing   = "label-smoothing"
	flagTrainClassWeight = "class-weight"
	flagTrainSeed        = "seed"
	flagTrainNoShuffle   = "no-shuffle"
	flagTrainEarlyStop   = "early-stop"
	flagTrainSaveBest    = "save-best"
	flagTrainSweep       = "sweep"
	flagTrainForce       = "force"
)

// sweepFile is the ranked table a sweep writes into its --out folder.
const sweepFile = "sweep.csv"

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "train the dense head on a feature cache (seconds per epoch), or a sweep of heads",
		Description: `Trains the reference head (Dense(1024, ReLU) → Dropout(0.5) → Dense(K) →
softmax, Adam with lr 1e-4, batch 32, 50 epochs) on the features of --train,
validating on --val after every epoch, and writes the run directory --out:
settings.json, weights.safetensors, history.csv (Keras CSVLogger columns, epochs from 1),
metrics.json, curves.png and confusion.png. The run directory appears only when
it is complete; Ctrl-C leaves nothing behind.

--train may also name the folder that ` + "`extract --val`" + ` wrote (with train/ and val/
inside) when --val is left out. Both caches must come from the same model and
extraction settings.

--sweep KEY=V1,V2,... (repeatable) trains every combination of the listed
values from the one cache into --out/<name>/ and prints a table ranked by the
best validation accuracy; it is also written to --out/sweep.csv. Keys: hidden,
dropout, lr, batch, epochs, l2, label-smoothing, class-weight, seed. Runs that
already exist with the same settings are reused, so an interrupted sweep
resumes.

Example:
   tlearn train --train cache/train --val cache/val --out run-head
   tlearn train --train cache --out run-small --hidden 256 --epochs 20 --early-stop 5
   tlearn train --train cache --out sweep --sweep lr=1e-3,1e-4 --sweep dropout=0.3,0.5`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagTrainTrain, Usage: "training feature cache `DIR` (or a folder with train/ and val/)", Required: true},
			&cli.StringFlag{Name: flagTrainVal, Usage: "validation feature cache `DIR`"},
			&cli.StringFlag{Name: flagTrainOut, Usage: "run directory `DIR` to write (for --sweep: the folder of the runs)", Required: true},
			&cli.IntFlag{Name: flagTrainHidden, Value: head.DefaultHidden, Usage: "hidden ReLU units; 0 = plain softmax regression"},
			&cli.Float64Flag{Name: flagTrainDropout, Value: head.DefaultDropout, Usage: "dropout rate after the hidden layer; 0 = none"},
			&cli.Float64Flag{Name: flagTrainLR, Value: head.DefaultLR, Usage: "Adam's learning rate"},
			&cli.IntFlag{Name: flagTrainBatch, Value: head.DefaultBatch, Usage: "mini-batch size"},
			&cli.IntFlag{Name: flagTrainEpochs, Value: head.DefaultEpochs, Usage: "passes over the training set"},
			&cli.Float64Flag{Name: flagTrainL2, Usage: "L2 weight decay on the two kernels, added to the gradient (PyTorch's Adam weight_decay)"},
			&cli.Float64Flag{Name: flagTrainSmoothing, Usage: "label smoothing (0..1) of the cross-entropy targets"},
			&cli.StringFlag{Name: flagTrainClassWeight, Value: "none", Usage: "`MODE` of class weights in the training loss: none, or balanced (class c weighs N/(K·n_c))"},
			&cli.Uint64Flag{Name: flagTrainSeed, Usage: "`SEED` of the initial weights, shuffling and dropout"},
			&cli.BoolFlag{Name: flagTrainNoShuffle, Usage: "keep the cache's class-by-class order in every epoch (the Keras tutorial's shuffle=False)"},
			&cli.IntFlag{Name: flagTrainEarlyStop, Usage: "stop after `N` epochs without a better validation accuracy and keep the best epoch's weights; 0 = off"},
			&cli.BoolFlag{Name: flagTrainSaveBest, Usage: "save the weights of the epoch with the best validation accuracy, not the last"},
			&cli.GenericFlag{Name: flagTrainSweep, Value: &sweepFlag{}, Usage: "train one run per value `KEY=V1,V2,...` (repeatable: every combination)"},
			&cli.BoolFlag{Name: flagTrainForce, Usage: "replace existing run directories"},
		),
		Action: trainAction,
	}
}

// sweepFlag collects repeated --sweep values without urfave/cli's comma
// splitting, which would cut "lr=1e-3,1e-4" into "lr=1e-3" and "1e-4".
type sweepFlag struct{ values []string }

func (f *sweepFlag) Set(v string) error { f.values = append(f.values, v); return nil }
func (f *sweepFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(f.values, " ")
}

// sweepAxis is one --sweep KEY=V1,V2,...
type sweepAxis struct {
	key    string
	values []string
}

// sweepKeys are the settings a sweep may vary, each with its parser.
var sweepKeys = map[string]func(s *head.Settings, v string) error{
	flagTrainHidden: func(s *head.Settings, v string) error {
		n, err := strconv.Atoi(v)
		s.Hidden, s.NoHidden = n, n == 0
		return err
	},
	flagTrainDropout: func(s *head.Settings, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		s.Dropout, s.NoDropout = x, x == 0
		return err
	},
	flagTrainLR:        floatSetting(true, func(s *head.Settings) *float64 { return &s.LR }),
	flagTrainL2:        floatSetting(false, func(s *head.Settings) *float64 { return &s.L2 }),
	flagTrainSmoothing: floatSetting(false, func(s *head.Settings) *float64 { return &s.LabelSmoothing }),
	flagTrainBatch:     intSetting(func(s *head.Settings) *int { return &s.Batch }),
	flagTrainEpochs:    intSetting(func(s *head.Settings) *int { return &s.Epochs }),
	flagTrainClassWeight: func(s *head.Settings, v string) error {
		cw, err := head.ParseClassWeighting(v)
		s.ClassWeights = cw
		return err
	},
	flagTrainSeed: func(s *head.Settings, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		s.Seed = n
		return err
	},
}

// floatSetting parses a float setting; a positive one refuses 0, which in
// Settings means "the default".
func floatSetting(positive bool, field func(*head.Settings) *float64) func(*head.Settings, string) error {
	return func(s *head.Settings, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		if err == nil && positive && !(x > 0) {
			err = errors.New("must be positive")
		}
		*field(s) = x
		return err
	}
}

// intSetting parses a positive integer setting.
func intSetting(field func(*head.Settings) *int) func(*head.Settings, string) error {
	return func(s *head.Settings, v string) error {
		n, err := strconv.Atoi(v)
		if err == nil && n <= 0 {
			err = errors.New("must be positive")
		}
		*field(s) = n
		return err
	}
}

func parseSweep(specs []string) ([]sweepAxis, error) {
	var axes []sweepAxis
	for _, spec := range specs {
		key, vals, ok := strings.Cut(spec, "=")
		key = strings.TrimSpace(key)
		if !ok || vals == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=V1,V2 (more values allowed)", flagTrainSweep, spec)
		}
		if _, known := sweepKeys[key]; !known {
			keys := make([]string, 0, len(sweepKeys))
			for k := range sweepKeys {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return nil, fmt.Errorf("--%s %q: unknown key %q (one of %s)", flagTrainSweep, spec, key, strings.Join(keys, ", "))
		}
		if slices.ContainsFunc(axes, func(a sweepAxis) bool { return a.key == key }) {
			return nil, fmt.Errorf("--%s: %s is swept twice; list all its values in one --%s", flagTrainSweep, key, flagTrainSweep)
		}
		a := sweepAxis{key: key}
		for _, v := range strings.Split(vals, ",") {
			v = strings.TrimSpace(v)
			var probe head.Settings
			if err := sweepKeys[key](&probe, v); err != nil || v == "" {
				return nil, fmt.Errorf("--%s %s: bad value %q", flagTrainSweep, key, v)
			}
			if !slices.Contains(a.values, v) {
				a.values = append(a.values, v)
			}
		}
		axes = append(axes, a)
	}
	return axes, nil
}

// sweepRun is one combination of a sweep.
type sweepRun struct {
	name     string
	settings head.Settings
}

// combinations lists every combination of the axes' values applied to
// base, the first axis varying slowest.
func combinations(base head.Settings, axes []sweepAxis) ([]sweepRun, error) {
	runs := []sweepRun{{settings: base}}
	for _, a := range axes {
		var next []sweepRun
		for _, r := range runs {
			for _, v := range a.values {
				s := r.settings
				if err := sweepKeys[a.key](&s, v); err != nil {
					return nil, err
				}
				name := a.key + "-" + safeName(v)
				if r.name != "" {
					name = r.name + "_" + name
				}
				next = append(next, sweepRun{name: name, settings: s})
			}
		}
		runs = next
	}
	for _, r := range runs {
		if err := r.settings.Validate(); err != nil {
			return nil, fmt.Errorf("sweep run %s: %w", r.name, err)
		}
	}
	return runs, nil
}

// safeName keeps a value usable in a folder name.
func safeName(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+' {
			return r
		}
		return '_'
	}, v)
}

// trainSettings reads the training flags.
func trainSettings(c *cli.Context) (head.Settings, error) {
	s := head.Settings{
		Hidden: c.Int(flagTrainHidden), NoHidden: c.Int(flagTrainHidden) == 0,
		Dropout: c.Float64(flagTrainDropout), NoDropout: c.Float64(flagTrainDropout) == 0,
		LR: c.Float64(flagTrainLR), Batch: c.Int(flagTrainBatch), Epochs: c.Int(flagTrainEpochs),
		L2: c.Float64(flagTrainL2), LabelSmoothing: c.Float64(flagTrainSmoothing),
		Seed: c.Uint64(flagTrainSeed), NoShuffle: c.Bool(flagTrainNoShuffle),
		EarlyStop: c.Int(flagTrainEarlyStop), SaveBest: c.Bool(flagTrainSaveBest),
	}
	cw, err := head.ParseClassWeighting(c.String(flagTrainClassWeight))
	if err != nil {
		return s, usageError{err}
	}
	s.ClassWeights = cw
	// An explicit 0 would otherwise silently mean "the default".
	if c.Float64(flagTrainLR) <= 0 {
		return s, usageError{fmt.Errorf("--%s must be positive, got %g", flagTrainLR, c.Float64(flagTrainLR))}
	}
	for _, f := range []string{flagTrainBatch, flagTrainEpochs} {
		if c.Int(f) <= 0 {
			return s, usageError{fmt.Errorf("--%s must be positive, got %d", f, c.Int(f))}
		}
	}
	if err := s.Validate(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// trainCaches are the opened --train and --val caches.
type trainCaches struct {
	train, val *cache.Cache
}

func (tc *trainCaches) Close() error { return errors.Join(tc.train.Close(), tc.val.Close()) }

func (tc *trainCaches) data() (train, val *head.Data) {
	return cacheData(tc.train), cacheData(tc.val)
}

func cacheData(c *cache.Cache) *head.Data {
	return &head.Data{X: c.Features, Y: c.Labels, Classes: c.Manifest.Classes}
}

// openTrainCaches opens the two caches and checks that they hold
// comparable features of the same classes.
func openTrainCaches(trainDir, valDir string) (*trainCaches, error) {
	if valDir == "" {
		pair := filepath.Join(trainDir, "train")
		if _, err := os.Stat(filepath.Join(pair, cache.ManifestFile)); err != nil {
			return nil, usageError{fmt.Errorf("--%s is missing (and %s has no train/ and val/ caches)", flagTrainVal, trainDir)}
		}
		trainDir, valDir = pair, filepath.Join(trainDir, "val")
	}
	train, err := cache.Open(trainDir)
	if err != nil {
		return nil, err
	}
	val, err := cache.Open(valDir)
	if err != nil {
		return nil, errors.Join(err, train.Close())
	}
	tc := &trainCaches{train, val}
	tm, vm := train.Manifest, val.Manifest
	switch {
	case tm.Fingerprint != vm.Fingerprint:
		err = fmt.Errorf("train: %s and %s were extracted differently (model %s vs %s, size %d vs %d, interpolation %s vs %s): their features are not comparable; extract both with the same model and settings",
			trainDir, valDir, shortSHA(tm.Model.ExtractorSHA256), shortSHA(vm.Model.ExtractorSHA256), tm.Size, vm.Size, tm.Interpolation, vm.Interpolation)
	case !slices.Equal(tm.Classes, vm.Classes):
		err = fmt.Errorf("train: %s has classes %v but %s has %v", trainDir, tm.Classes, valDir, vm.Classes)
	case tm.FeatureDim != vm.FeatureDim:
		err = fmt.Errorf("train: %s has %d features per image but %s has %d", trainDir, tm.FeatureDim, valDir, vm.FeatureDim)
	}
	if err != nil {
		return nil, errors.Join(err, tc.Close())
	}
	return tc, nil
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func trainAction(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("train takes no arguments (got %q)", c.Args().First())}
	}
	s, err := trainSettings(c)
	if err != nil {
		return err
	}
	axes, err := parseSweep(c.Generic(flagTrainSweep).(*sweepFlag).values)
	if err != nil {
		return usageError{err}
	}
	var runs []sweepRun
	if len(axes) > 0 {
		if runs, err = combinations(s, axes); err != nil {
			return usageError{err}
		}
	}
	if t := c.Int(flagThreads); t > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t))
	} else if t < 0 {
		return usageError{fmt.Errorf("--%s must be 0 or more, got %d", flagThreads, t)}
	}
	out := c.String(flagTrainOut)
	force := c.Bool(flagTrainForce)
	if runs == nil {
		if _, err := os.Stat(out); err == nil && !force {
			return fmt.Errorf("train: %s exists (choose another --%s, or --%s to replace it)", out, flagTrainOut, flagTrainForce)
		}
	}
	tc, err := openTrainCaches(c.String(flagTrainTrain), c.String(flagTrainVal))
	if err != nil {
		return err
	}
	defer tc.Close()
	w := errWriter(c)
	if runs == nil {
		_, err := trainOne(c, tc, s, out, filepath.Base(out), "", force, w)
		return err
	}
	return trainSweep(c, tc, runs, out, force, w)
}

// trainOne trains one head and writes its run directory.
func trainOne(c *cli.Context, tc *trainCaches, s head.Settings, out, title, prefix string, force bool, w io.Writer) (*rundir.Metrics, error) {
	train, val := tc.train, tc.val
	fmt.Fprintf(w, "%straining on %d images (%d features, %d classes), validating on %d; %s\n",
		prefix, train.Len(), train.Manifest.FeatureDim, len(train.Manifest.Classes), val.Len(), describeSettings(s.Resolve()))
	trainD, valD := tc.data()
	bar := newEpochBar(w)
	res, err := head.Train(c.Context, trainD, valD, s, prefixed{bar, prefix})
	bar.Finish()
	var diverged *head.DivergedError
	if errors.As(err, &diverged) {
		return nil, fmt.Errorf("%w; lower --%s", err, flagTrainLR)
	}
	if err != nil {
		return nil, err
	}
	rep, err := head.Evaluate(res.Weights, valD, 5)
	if err != nil {
		return nil, err
	}
	info, err := runInfo(tc, res)
	if err != nil {
		return nil, err
	}
	m := rundir.NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, rep)
	err = rundir.Write(out, &rundir.Contents{
		Settings:  rundir.HeadSettings{Info: info, Settings: res.Settings},
		Weights:   res.Weights,
		History:   res.History,
		Metrics:   m,
		Title:     title + ": " + describeSettings(res.Settings),
		Overwrite: force,
	})
	if errors.Is(err, rundir.ErrExists) {
		return nil, fmt.Errorf("%w (choose another --%s, or --%s to replace it)", err, flagTrainOut, flagTrainForce)
	}
	if err != nil {
		return nil, err
	}
	n := len(res.History)
	stopped := ""
	if res.EarlyStopped {
		stopped = " (stopped early)"
	}
	fmt.Fprintf(w, "%s%d epochs%s in %s (%s per epoch, %s)\n", prefix, n, stopped, seconds(res.Seconds), seconds(res.Seconds/float64(n)), res.Backend)
	fmt.Fprintf(w, "%sfinal: val_accuracy %.4f val_loss %.4f; best: val_accuracy %.4f in epoch %d; saved the weights of epoch %d: val top-5 %.4f, macro F1 %.4f\n",
		prefix, m.Final.ValAccuracy, m.Final.ValLoss, m.Best.ValAccuracy, m.Best.Epoch, m.WeightsEpoch, rep.TopKAccuracy, rep.MacroF1)
	fmt.Fprintf(w, "%swrote %s\n", prefix, out)
	return m, nil
}

// runInfo is the common part of settings.json: the model comes from the
// cache manifest, which recorded the prepared model's folder and the
// sha256 of its extractor.onnx.
func runInfo(tc *trainCaches, res *head.Result) (rundir.Info, error) {
	ref := func(c *cache.Cache) (rundir.CacheRef, error) {
		dir, err := filepath.Abs(c.Dir)
		return rundir.CacheRef{Dir: dir, Fingerprint: c.Manifest.Fingerprint, N: c.Len()}, err
	}
	tr, err := ref(tc.train)
	if err != nil {
		return rundir.Info{}, err
	}
	va, err := ref(tc.val)
	if err != nil {
		return rundir.Info{}, err
	}
	m := tc.train.Manifest
	return rundir.Info{
		Mode: rundir.ModeHead, ModelDir: m.Model.Dir, ModelSHA256: m.Model.ExtractorSHA256, Preset: m.Model.Preset,
		Classes: m.Classes, TrainCache: tr, ValCache: va, Created: time.Now().UTC(),
		Backend: res.Backend, Seconds: res.Seconds,
	}, nil
}

// describeSettings is a one-line summary of the settings that matter most.
func describeSettings(s head.Settings) string {
	var b strings.Builder
	if s.NoHidden {
		b.WriteString("no hidden layer")
	} else {
		fmt.Fprintf(&b, "hidden %d, dropout %g", s.Hidden, s.Dropout)
	}
	fmt.Fprintf(&b, ", lr %g, batch %d, %d epochs", s.LR, s.Batch, s.Epochs)
	if s.L2 > 0 {
		fmt.Fprintf(&b, ", L2 %g", s.L2)
	}
	if s.LabelSmoothing > 0 {
		fmt.Fprintf(&b, ", label smoothing %g", s.LabelSmoothing)
	}
	if s.ClassWeights != head.Unweighted {
		fmt.Fprintf(&b, ", %s class weights", s.ClassWeights)
	}
	if s.NoShuffle {
		b.WriteString(", unshuffled")
	}
	if s.EarlyStop > 0 {
		fmt.Fprintf(&b, ", early stop %d", s.EarlyStop)
	}
	fmt.Fprintf(&b, ", seed %d", s.Seed)
	return b.String()
}

// seconds formats a duration for progress lines: milliseconds below one
// second.
func seconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", 1000*s)
	}
	return fmt.Sprintf("%.1f s", s)
}

// sweepResult is one line of the ranked table.
type sweepResult struct {
	name    string
	m       *rundir.Metrics
	reused  bool
	seconds float64
}

func trainSweep(c *cli.Context, tc *trainCaches, runs []sweepRun, out string, force bool, w io.Writer) error {
	// Check every existing run before training anything, so that a
	// conflict does not surface after an hour of work.
	reuse := make([]*rundir.Metrics, len(runs))
	for i, r := range runs {
		dir := filepath.Join(out, r.name)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		m, same := sameRun(dir, tc, r.settings)
		switch {
		case same:
			reuse[i] = m
		case !force:
			return fmt.Errorf("train: %s exists with other settings or caches (--%s replaces it)", dir, flagTrainForce)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(w, "sweep: %d runs into %s\n", len(runs), out)
	var results []sweepResult
	for i, r := range runs {
		prefix := fmt.Sprintf("[%d/%d %s] ", i+1, len(runs), r.name)
		if reuse[i] != nil {
			fmt.Fprintf(w, "%sreusing the finished run\n", prefix)
			results = append(results, sweepResult{name: r.name, m: reuse[i], reused: true, seconds: reuse[i].Seconds})
			continue
		}
		m, err := trainOne(c, tc, r.settings, filepath.Join(out, r.name), r.name, prefix, force, w)
		if err != nil {
			return err
		}
		results = append(results, sweepResult{name: r.name, m: m, seconds: m.Seconds})
	}
	// Best validation accuracy first; among equals, the lower validation
	// loss of that epoch.
	slices.SortStableFunc(results, func(a, b sweepResult) int {
		switch {
		case a.m.Best.ValAccuracy > b.m.Best.ValAccuracy:
			return -1
		case a.m.Best.ValAccuracy < b.m.Best.ValAccuracy:
			return 1
		}
		return cmp.Compare(a.m.Best.ValLoss, b.m.Best.ValLoss)
	})
	if err := writeSweepTable(c.App.Writer, results); err != nil {
		return err
	}
	p := filepath.Join(out, sweepFile)
	if err := fsutil.WriteWith(p, 0o644, func(f io.Writer) error { return writeSweepCSV(f, results) }); err != nil {
		return err
	}
	fmt.Fprintf(w, "sweep: best %s (val_accuracy %.4f); table in %s\n", results[0].name, results[0].m.Best.ValAccuracy, p)
	return nil
}

// sameRun reports whether dir holds a finished run of the same settings
// on the same caches, and its metrics.
func sameRun(dir string, tc *trainCaches, s head.Settings) (*rundir.Metrics, bool) {
	rs, err := rundir.ReadHeadSettings(dir)
	if err != nil {
		return nil, false
	}
	if rs.Settings != s.Resolve() || rs.TrainCache.Fingerprint != tc.train.Manifest.Fingerprint || rs.TrainCache.N != tc.train.Len() ||
		rs.ValCache.N != tc.val.Len() || !slices.Equal(rs.Classes, tc.train.Manifest.Classes) {
		return nil, false
	}
	m, err := rundir.ReadMetrics(dir)
	if err != nil {
		return nil, false
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.WeightsFile)); err != nil {
		return nil, false
	}
	return m, true
}

func writeSweepTable(out io.Writer, results []sweepResult) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rank\trun\tbest val_accuracy\tbest epoch\tfinal val_accuracy\tfinal val_loss\tseconds\t")
	for i, r := range results {
		note := ""
		if r.reused {
			note = " (reused)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.4f\t%d\t%.4f\t%.4f\t%.1f%s\t\n", i+1, r.name, r.m.Best.ValAccuracy, r.m.Best.Epoch, r.m.Final.ValAccuracy, r.m.Final.ValLoss, r.seconds, note)
	}
	return tw.Flush()
}

func writeSweepCSV(out io.Writer, results []sweepResult) error {
	var b strings.Builder
	// best_epoch counts from 1, as the table and history.csv do.
	b.WriteString("rank,run,best_val_accuracy,best_epoch,final_val_accuracy,final_val_loss,seconds\n")
	for i, r := range results {
		fmt.Fprintf(&b, "%d,%s,%g,%d,%g,%g,%.3f\n", i+1, r.name, r.m.Best.ValAccuracy, r.m.Best.Epoch, r.m.Final.ValAccuracy, r.m.Final.ValLoss, r.seconds)
	}
	_, err := io.WriteString(out, b.String())
	return err
}
