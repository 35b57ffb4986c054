package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// SweepFile is the ranked table that Sweep writes into its folder.
const SweepFile = "sweep.csv"

// Axis is one swept setting and its values, as written in a sweep spec
// ("lr=1e-3,1e-4" is Axis{"lr", []string{"1e-3", "1e-4"}}).
type Axis struct {
	Key    string
	Values []string
}

// sweepKeys are the settings a sweep may vary (named as tlearn train's
// flags), each with its parser.
var sweepKeys = map[string]func(s *head.Settings, v string) error{
	"hidden": func(s *head.Settings, v string) error {
		n, err := strconv.Atoi(v)
		s.Hidden, s.NoHidden = n, n == 0
		return err
	},
	"dropout": func(s *head.Settings, v string) error {
		x, err := strconv.ParseFloat(v, 64)
		s.Dropout, s.NoDropout = x, x == 0
		return err
	},
	"lr":              floatSetting(true, func(s *head.Settings) *float64 { return &s.LR }),
	"l2":              floatSetting(false, func(s *head.Settings) *float64 { return &s.L2 }),
	"label-smoothing": floatSetting(false, func(s *head.Settings) *float64 { return &s.LabelSmoothing }),
	"ema":             floatSetting(false, func(s *head.Settings) *float64 { return &s.EMA }),
	"batch":           intSetting(func(s *head.Settings) *int { return &s.Batch }),
	"epochs":          intSetting(func(s *head.Settings) *int { return &s.Epochs }),
	"class-weight": func(s *head.Settings, v string) error {
		cw, err := head.ParseClassWeighting(v)
		s.ClassWeights = cw
		return err
	},
	"seed": func(s *head.Settings, v string) error {
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

// ParseSweep reads sweep specs, each KEY=V1,V2,... with KEY one of hidden,
// dropout, lr, batch, epochs, l2, label-smoothing, ema, class-weight and seed.
// Repeated values are dropped; a key may appear in one spec only. Errors
// wrap ErrSettings.
func ParseSweep(specs []string) ([]Axis, error) {
	var axes []Axis
	for _, spec := range specs {
		key, vals, ok := strings.Cut(spec, "=")
		key = strings.TrimSpace(key)
		if !ok || vals == "" {
			return nil, fmt.Errorf("%w: sweep %q: want KEY=V1,V2 (more values allowed)", ErrSettings, spec)
		}
		parse, known := sweepKeys[key]
		if !known {
			keys := slices.Sorted(maps.Keys(sweepKeys))
			return nil, fmt.Errorf("%w: sweep %q: unknown key %q (one of %s)", ErrSettings, spec, key, strings.Join(keys, ", "))
		}
		if slices.ContainsFunc(axes, func(a Axis) bool { return a.Key == key }) {
			return nil, fmt.Errorf("%w: sweep: %s is swept twice; list all its values in one spec", ErrSettings, key)
		}
		a := Axis{Key: key}
		for _, v := range strings.Split(vals, ",") {
			v = strings.TrimSpace(v)
			var probe head.Settings
			if err := parse(&probe, v); err != nil || v == "" {
				return nil, fmt.Errorf("%w: sweep %s: bad value %q", ErrSettings, key, v)
			}
			if !slices.Contains(a.Values, v) {
				a.Values = append(a.Values, v)
			}
		}
		axes = append(axes, a)
	}
	return axes, nil
}

// SweepSettings say which caches a sweep trains on, its grid and where
// its runs go.
type SweepSettings struct {
	// Train and Val are the feature caches, as for TrainSettings.
	Train, Val string
	// Out is the folder of the runs: Out/NAME/ for each combination, and
	// Out/sweep.csv.
	Out string
	// Base are the settings that the axes vary.
	Base head.Settings
	// Axes span the grid: every combination of their values is one run,
	// the first axis varying slowest.
	Axes []Axis
	// Runs, when set, are the runs instead of the grid of Axes: each
	// names its folder and holds its settings (Auto's search).
	Runs []SweepRun
	// Overwrite replaces runs that exist with other settings or caches;
	// without it they are an error wrapping rundir.ErrExists, returned
	// before anything is trained.
	Overwrite bool
	// TTA validates and selects every run on the mean probabilities of the
	// caches' views, as TrainSettings.TTA.
	TTA bool
}

// SweepRun is one run of a sweep.
type SweepRun struct {
	// Name is the run's folder name in Out: "lr-1e-3_dropout-0.5".
	Name     string
	Settings head.Settings
	Run
}

// BestEpoch is the epoch (from 1) of the best accuracy on the set that
// selects (the holdout's, else the validation set's).
func (r *SweepRun) BestEpoch() int { return r.Metrics.Best.Epoch }

// SweepResult is a finished sweep.
type SweepResult struct {
	// Runs are ranked by rankRuns: by the best accuracy on the holdout
	// (with head.Settings.Holdout) or else on the validation set.
	Runs []SweepRun
	// CSV is the path of sweep.csv.
	CSV string
}

// combinations lists every combination of the axes' values applied to
// base, the first axis varying slowest.
func combinations(base head.Settings, axes []Axis) ([]SweepRun, error) {
	runs := []SweepRun{{Settings: base}}
	for _, a := range axes {
		parse, ok := sweepKeys[a.Key]
		if !ok {
			return nil, fmt.Errorf("%w: sweep: unknown key %q", ErrSettings, a.Key)
		}
		var next []SweepRun
		for _, r := range runs {
			for _, v := range a.Values {
				s := r.Settings
				if err := parse(&s, v); err != nil {
					return nil, fmt.Errorf("%w: sweep %s: bad value %q", ErrSettings, a.Key, v)
				}
				name := a.Key + "-" + safeName(v)
				if r.Name != "" {
					name = r.Name + "_" + name
				}
				next = append(next, SweepRun{Name: name, Settings: s})
			}
		}
		runs = next
	}
	for _, r := range runs {
		if err := r.Settings.Validate(); err != nil {
			return nil, fmt.Errorf("%w: sweep run %s: %w", ErrSettings, r.Name, err)
		}
	}
	return runs, nil
}

// listedRuns checks runs given by name and settings: valid settings and
// distinct folder names.
func listedRuns(runs []SweepRun) ([]SweepRun, error) {
	out := make([]SweepRun, 0, len(runs))
	seen := map[string]bool{}
	for _, r := range runs {
		if strings.Trim(r.Name, ".") == "" || r.Name != safeName(r.Name) || seen[r.Name] {
			return nil, fmt.Errorf("%w: sweep run name %q is empty, repeated or not a plain folder name", ErrSettings, r.Name)
		}
		seen[r.Name] = true
		if err := r.Settings.Validate(); err != nil {
			return nil, fmt.Errorf("%w: sweep run %s: %w", ErrSettings, r.Name, err)
		}
		out = append(out, SweepRun{Name: r.Name, Settings: r.Settings})
	}
	return out, nil
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

// Sweep trains one head per combination of the axes' values on one pair of
// caches, into s.Out/NAME/, and writes the ranked table to s.Out/sweep.csv.
// Runs that already exist with the same settings on the same caches are
// reused, so an interrupted sweep resumes. Each run's messages on p carry
// the prefix "[i/n NAME] ".
func Sweep(ctx context.Context, s SweepSettings, p progress.Reporter) (*SweepResult, error) {
	p = progress.OrNop(p)
	if len(s.Axes) == 0 && len(s.Runs) == 0 {
		return nil, fmt.Errorf("%w: a sweep needs at least one axis", ErrSettings)
	}
	runs, err := combinations(s.Base, s.Axes)
	if len(s.Runs) > 0 {
		runs, err = listedRuns(s.Runs)
	}
	if err != nil {
		return nil, err
	}
	// An output that cannot be made fails here, naming why, rather than
	// in the lock's making of its folder.
	if err := fsutil.CheckCreatable(filepath.Join(s.Out, SweepFile)); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	var dirs []string
	for _, r := range runs {
		dirs = append(dirs, filepath.Join(s.Out, r.Name))
	}
	lock, err := lockOutput(s.Out, p, append(dirs, filepath.Join(s.Out, SweepFile))...)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	c, err := openCaches(s.Train, s.Val)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.tta = s.TTA
	// A holdout that some class cannot give fails before any folder is
	// made (a sweep's runs all share the base's holdout).
	if _, _, err := s.Base.Rows(c.train.Labels, c.train.Manifest.Classes); err != nil {
		return nil, err
	}
	// Check every existing run before training anything, so that a
	// conflict does not surface after an hour of work.
	for i, r := range runs {
		runs[i].Dir = filepath.Join(s.Out, r.Name)
		if err := fsutil.CheckOutput(runs[i].Dir, s.Train, s.Val); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
		if _, err := os.Stat(runs[i].Dir); err != nil {
			continue
		}
		m, same := sameRun(runs[i].Dir, c, r.Settings)
		switch {
		case same:
			runs[i].Metrics, runs[i].Reused = m, true
		case !s.Overwrite:
			return nil, fmt.Errorf("%w: %s holds a run with other settings or caches", rundir.ErrExists, runs[i].Dir)
		default:
			if err := rundir.CheckNew(runs[i].Dir, true); err != nil {
				return nil, err
			}
		}
	}
	if err := fsutil.CheckCreatable(filepath.Join(s.Out, SweepFile)); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	p.Log(fmt.Sprintf("sweep: %d runs into %s", len(runs), s.Out))
	for i, r := range runs {
		rp := prefixed{p, fmt.Sprintf("[%d/%d %s] ", i+1, len(runs), r.Name)}
		if r.Reused {
			// A sweep killed between renaming this run into place and
			// unlocking it left the run's lock file; taking the lock and
			// releasing it removes that. Best effort: a live holder is a
			// train that will find the run finished.
			if rl, err := lockOutput(r.Dir, rp); err == nil {
				rl.Unlock()
			}
			rp.Log("reusing the finished run")
			continue
		}
		// The sweep's lock keeps other sweeps out; this one, a train
		// into the same run folder.
		rl, err := lockOutput(r.Dir, rp)
		if err != nil {
			return nil, err
		}
		m, err := trainRun(ctx, c, r.Settings, r.Dir, r.Name, s.Overwrite, rp)
		rl.Unlock()
		if err != nil {
			return nil, err
		}
		runs[i].Metrics = m
	}
	rankRuns(runs)
	res := &SweepResult{Runs: runs, CSV: filepath.Join(s.Out, SweepFile)}
	if err := fsutil.WriteWith(res.CSV, 0o644, res.WriteCSV); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return res, nil
}

// rankRuns sorts by the best epoch's accuracy on the set that selects
// (the holdout with one, else the validation set), highest first; among
// equals, by the lower loss of that epoch on that set, then the simpler
// run: fewer hidden units, then fewer epochs to the best one; then the
// order given.
func rankRuns(runs []SweepRun) {
	slices.SortStableFunc(runs, func(a, b SweepRun) int {
		ea, eb := a.Metrics.Best, b.Metrics.Best
		if c := cmp.Compare(eb.SelectionAccuracy(), ea.SelectionAccuracy()); c != 0 {
			return c
		}
		if c := cmp.Compare(ea.SelectionLoss(), eb.SelectionLoss()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Settings.Resolve().Hidden, b.Settings.Resolve().Hidden); c != 0 {
			return c
		}
		return cmp.Compare(ea.Epoch, eb.Epoch)
	})
}

// selectedOn is the set that ranked the runs (head.SelectedOnHoldout or
// head.SelectedOnValidation): all of a sweep's runs share the holdout.
func (r *SweepResult) selectedOn() string {
	if len(r.Runs) > 0 && r.Runs[0].Metrics.Best.HasHoldout {
		return head.SelectedOnHoldout
	}
	return head.SelectedOnValidation
}

// sameRun reports whether dir holds a finished run of the same settings
// on the same caches, and its metrics.
func sameRun(dir string, c *caches, s head.Settings) (*rundir.Metrics, bool) {
	rs, err := rundir.ReadHeadSettings(dir)
	if err != nil {
		return nil, false
	}
	if rs.Settings != s.Resolve() || rs.TTA != c.tta || rs.TrainCache.Fingerprint != c.train.Manifest.Fingerprint || rs.TrainCache.N != c.train.Len() ||
		rs.ValCache.N != c.val.Len() || !slices.Equal(rs.Classes, c.train.Manifest.Classes) {
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

// WriteTable prints the ranked runs as an aligned text table. With a
// holdout, the best epoch is the holdout's and the validation accuracy of
// that epoch follows it, for reporting only.
func (r *SweepResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	holdout := r.selectedOn() == head.SelectedOnHoldout
	if holdout {
		fmt.Fprintln(tw, "rank\trun\tbest holdout_accuracy\tholdout_loss\tbest epoch\tits val_accuracy\tfinal val_accuracy\tfinal val_loss\tseconds\t")
	} else {
		fmt.Fprintln(tw, "rank\trun\tbest val_accuracy\tbest epoch\tfinal val_accuracy\tfinal val_loss\tseconds\t")
	}
	for i, run := range r.Runs {
		note := ""
		if run.Reused {
			note = " (reused)"
		}
		m := run.Metrics
		if holdout {
			fmt.Fprintf(tw, "%d\t%s\t%.4f\t%.4f\t%d\t%.4f\t%.4f\t%.4f\t%.1f%s\t\n", i+1, run.Name, m.Best.HoldoutAccuracy, m.Best.HoldoutLoss, run.BestEpoch(), m.Best.ValAccuracy, m.Final.ValAccuracy, m.Final.ValLoss, m.Seconds, note)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%.4f\t%d\t%.4f\t%.4f\t%.1f%s\t\n", i+1, run.Name, m.Best.ValAccuracy, run.BestEpoch(), m.Final.ValAccuracy, m.Final.ValLoss, m.Seconds, note)
	}
	return tw.Flush()
}

// WriteCSV writes the ranked runs in the format of sweep.csv; with a
// holdout, the best epoch's holdout accuracy and loss and its validation
// accuracy replace best_val_accuracy.
func (r *SweepResult) WriteCSV(w io.Writer) error {
	var b strings.Builder
	holdout := r.selectedOn() == head.SelectedOnHoldout
	if holdout {
		b.WriteString("rank,run,best_holdout_accuracy,best_holdout_loss,best_epoch,best_epoch_val_accuracy,final_val_accuracy,final_val_loss,seconds\n")
	} else {
		b.WriteString("rank,run,best_val_accuracy,best_epoch,final_val_accuracy,final_val_loss,seconds\n")
	}
	for i, run := range r.Runs {
		m := run.Metrics
		if holdout {
			fmt.Fprintf(&b, "%d,%s,%g,%g,%d,%g,%g,%g,%.3f\n", i+1, run.Name, m.Best.HoldoutAccuracy, m.Best.HoldoutLoss, run.BestEpoch(), m.Best.ValAccuracy, m.Final.ValAccuracy, m.Final.ValLoss, m.Seconds)
			continue
		}
		fmt.Fprintf(&b, "%d,%s,%g,%d,%g,%g,%.3f\n", i+1, run.Name, m.Best.ValAccuracy, run.BestEpoch(), m.Final.ValAccuracy, m.Final.ValLoss, m.Seconds)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
