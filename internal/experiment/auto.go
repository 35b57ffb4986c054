package experiment

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// Auto's defaults.
const (
	// DefaultAutoHoldout is the fraction of the training images that Auto
	// holds out to rank its candidates when none is given.
	DefaultAutoHoldout = 0.1
	// DefaultAutoPatience is the early-stopping patience of every
	// candidate: how the search chooses the number of epochs. The
	// accuracy of a holdout of 1,000 images moves by a point or two from
	// epoch to epoch; with a patience of 5, runs on CIFAR-10's MobileNetV2
	// features stopped while still improving (best epochs 6 to 30, the
	// retrained winner 0.612 on the validation images), with 10 they ran
	// on (best epochs 13 to 47, 0.625).
	DefaultAutoPatience = 10
)

// AutoCandidate is one configuration of Auto's search: the settings it
// varies. The others come from AutoSettings.Base.
type AutoCandidate struct {
	Hidden  int     // 0: no hidden layer (and no dropout)
	Dropout float64 // 0: none
	LR      float64
	L2      float64
}

// Name is the candidate's folder name in the search, as a sweep names its
// runs: "hidden-256_dropout-0.5_lr-0.0003_l2-0".
func (c AutoCandidate) Name() string {
	return safeName(fmt.Sprintf("hidden-%d_dropout-%g_lr-%g_l2-%g", c.Hidden, c.Dropout, c.LR, c.L2))
}

// apply returns base with the candidate's settings.
func (c AutoCandidate) apply(base head.Settings) head.Settings {
	s := base
	s.Hidden, s.NoHidden = c.Hidden, c.Hidden == 0
	s.Dropout, s.NoDropout = c.Dropout, c.Dropout == 0
	s.LR, s.L2 = c.LR, c.L2
	return s
}

// AutoSpace is the default search: 16 configurations. On MobileNetV2
// features of CIFAR-10 (10,000 training images, a holdout of 1,000;
// BENCHMARKS.md) the learning rate mattered most (3e-3 and above lost 3 to
// 5 points with a hidden layer; 1e-4 to 1e-3 were within the holdout's
// noise of each other), then the hidden size (1024 ≥ 256 > none, by 1 to 2
// points); dropout 0.2 or 0.5 and L2 0 or 1e-4 moved it less than its
// noise. So the space covers the three good rates at both hidden sizes and
// both dropouts, keeps the cheap softmax regressions (the best choice on
// small sets) and two L2 variants, and leaves the number of epochs to
// early stopping on the holdout within every candidate (best epochs ran
// from 6 to 30 there).
var AutoSpace = []AutoCandidate{
	{Hidden: 0, LR: 1e-3},
	{Hidden: 0, LR: 3e-3},
	{Hidden: 256, Dropout: 0.2, LR: 1e-4},
	{Hidden: 256, Dropout: 0.5, LR: 1e-4},
	{Hidden: 256, Dropout: 0.2, LR: 3e-4},
	{Hidden: 256, Dropout: 0.5, LR: 3e-4},
	{Hidden: 256, Dropout: 0.2, LR: 1e-3},
	{Hidden: 256, Dropout: 0.5, LR: 1e-3},
	{Hidden: 256, Dropout: 0.5, LR: 1e-3, L2: 1e-4},
	{Hidden: 1024, Dropout: 0.2, LR: 1e-4},
	{Hidden: 1024, Dropout: 0.5, LR: 1e-4},
	{Hidden: 1024, Dropout: 0.2, LR: 3e-4},
	{Hidden: 1024, Dropout: 0.5, LR: 3e-4},
	{Hidden: 1024, Dropout: 0.5, LR: 3e-4, L2: 1e-4},
	{Hidden: 1024, Dropout: 0.2, LR: 1e-3},
	{Hidden: 1024, Dropout: 0.5, LR: 1e-3},
}

// AutoSettings say what Auto searches on and where it writes the run.
type AutoSettings struct {
	// Train and Val are the feature caches, as for TrainSettings. Val is
	// only reported: the search never ranks on it.
	Train, Val string
	// Out is the run directory of the winner, retrained. The search's runs
	// go into the hidden sibling folder SearchPath(Out) until Out is
	// written, so that an interrupted search resumes; then it is removed.
	Out string
	// Base are the settings the search does not vary (batch, seed, class
	// weights, label smoothing, shuffling), its Epochs the most epochs
	// any candidate runs (0: the head's default) and its EarlyStop the
	// patience (0: DefaultAutoPatience). Its Holdout (0:
	// DefaultAutoHoldout) and HoldoutSeed carve the holdout that ranks the
	// candidates; its SaveBest is ignored.
	Base head.Settings
	// Space are the candidates; nil means AutoSpace.
	Space []AutoCandidate
	// Overwrite replaces an existing run directory, as TrainSettings'.
	Overwrite bool
	// TTA ranks the candidates on, and reports, the mean probabilities of
	// the caches' views, as TrainSettings.TTA.
	TTA bool
}

// AutoResult is a finished search and the run of its winner.
type AutoResult struct {
	// Search are the candidates ranked as a sweep ranks its runs: by the
	// best holdout accuracy, then the lower holdout loss, then the
	// simpler (fewer hidden units, fewer epochs). Search.Runs[0] won.
	Search *SweepResult
	// Why says in one line why the winner won.
	Why string
	// Run is the winner retrained on all of Train for its best epoch's
	// number of epochs.
	Run *Run
	// Retrained are its settings.
	Retrained head.Settings
}

// AutoRecord is the "auto" object of the winner's settings.json: how it
// was chosen.
type AutoRecord struct {
	Holdout     float64     `json:"holdout"`
	HoldoutSeed uint64      `json:"holdout_seed"`
	HoldoutN    int         `json:"holdout_n"`
	Patience    int         `json:"patience"`
	MaxEpochs   int         `json:"max_epochs"`
	Tried       []AutoTrial `json:"tried"` // ranked, the winner first
	Chosen      string      `json:"chosen"`
	Why         string      `json:"why"`
}

// AutoTrial is one candidate's outcome on the holdout.
type AutoTrial struct {
	Name            string  `json:"name"`
	Hidden          int     `json:"hidden"`
	Dropout         float64 `json:"dropout"`
	LR              float64 `json:"lr"`
	L2              float64 `json:"l2"`
	BestEpoch       int     `json:"best_epoch"`
	EpochsRun       int     `json:"epochs_run"`
	HoldoutAccuracy float64 `json:"holdout_accuracy"`
	HoldoutLoss     float64 `json:"holdout_loss"`
	Seconds         float64 `json:"seconds"`
}

// autoRunSettings is settings.json of Auto's run.
type autoRunSettings struct {
	rundir.HeadSettings
	Auto *AutoRecord `json:"auto"`
}

// SearchPath is the hidden sibling folder of the run directory out where
// Auto keeps its search until out is written.
func SearchPath(out string) string {
	out = filepath.Clean(out)
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".auto-search")
}

// Auto searches head settings on a holdout of the training cache and
// writes the winner, retrained on all of it, as the run directory Out:
// every candidate of the space trains with early stopping on the holdout
// (the fast gonum trainer, as a sweep into SearchPath(Out), whose finished
// runs a later call reuses), the candidates are ranked on the holdout, and
// the winner trains again on every training image for the number of epochs
// that its holdout chose. Out's settings.json records the search
// (AutoRecord). Val is reported in every run and never ranks. It logs on p
// (nil: silent). On cancellation it returns ctx's error; the finished
// candidates stay for the next call.
func Auto(ctx context.Context, s AutoSettings, p progress.Reporter) (*AutoResult, error) {
	p = progress.OrNop(p)
	base := s.Base
	if base.Holdout == 0 {
		base.Holdout = DefaultAutoHoldout
	}
	if base.EarlyStop == 0 {
		base.EarlyStop = DefaultAutoPatience
	}
	base.SaveBest = false
	base = base.Resolve()
	space := s.Space
	if space == nil {
		space = AutoSpace
	}
	var runs []SweepRun
	for _, c := range space {
		runs = append(runs, SweepRun{Name: c.Name(), Settings: c.apply(base)})
	}
	if _, err := listedRuns(runs); err != nil {
		return nil, err
	}
	out := filepath.Clean(s.Out)
	search := SearchPath(out)
	if err := checkNew(out, s.Overwrite, s.Train, s.Val); err != nil {
		return nil, tidyFinished(err, out, search)
	}
	if err := fsutil.CheckOutput(search, s.Train, s.Val); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	lock, err := lockOutput(out, p, search)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	p.Log(fmt.Sprintf("auto: %d candidates, each up to %d epochs with early stopping (patience %d) on a holdout of %g (seed %d) of %s; %s is only reported",
		len(runs), base.Epochs, base.EarlyStop, base.Holdout, base.HoldoutSeed, s.Train, valName(s)))
	// The search is this run's scratch: runs in it with other settings
	// (an abandoned search) are replaced, not refused.
	res, err := Sweep(ctx, SweepSettings{Train: s.Train, Val: s.Val, Out: search, Base: base, Runs: runs, Overwrite: true, TTA: s.TTA}, p)
	if err != nil {
		return nil, err
	}
	win := res.Runs[0]
	retrain := win.Settings
	retrain.Holdout, retrain.HoldoutSeed, retrain.EarlyStop, retrain.SaveBest = 0, 0, 0, false
	retrain.Epochs = win.BestEpoch()
	why := whyWon(res.Runs)

	c, err := openCaches(s.Train, s.Val)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.tta = s.TTA
	rec := &AutoRecord{
		Holdout: base.Holdout, HoldoutSeed: base.HoldoutSeed, HoldoutN: holdoutN(base, c),
		Patience: base.EarlyStop, MaxEpochs: base.Epochs, Chosen: win.Name, Why: why,
	}
	for _, r := range res.Runs {
		rs := r.Settings.Resolve()
		rec.Tried = append(rec.Tried, AutoTrial{
			Name: r.Name, Hidden: rs.Hidden, Dropout: rs.Dropout, LR: rs.LR, L2: rs.L2,
			BestEpoch: r.BestEpoch(), EpochsRun: r.Metrics.EpochsRun,
			HoldoutAccuracy: r.Metrics.Best.HoldoutAccuracy, HoldoutLoss: r.Metrics.Best.HoldoutLoss, Seconds: r.Metrics.Seconds,
		})
	}
	p.Log(fmt.Sprintf("auto: retraining the winner, %s, on all %d training images for %d epochs", win.Name, c.train.Len(), retrain.Epochs))
	m, err := trainRunWith(ctx, c, retrain, out, filepath.Base(out)+" (auto: "+win.Name+")", s.Overwrite, rec, p)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(search); err != nil {
		return nil, fmt.Errorf("experiment: remove the finished search %s: %w", search, err)
	}
	return &AutoResult{Search: res, Why: why, Run: &Run{Dir: out, Metrics: m}, Retrained: retrain}, nil
}

func valName(s AutoSettings) string {
	if s.Val == "" {
		return filepath.Join(s.Train, "val")
	}
	return s.Val
}

// holdoutN is the size of the holdout that ranked the candidates, which
// the sweep checked could be carved.
func holdoutN(base head.Settings, c *caches) int {
	_, hold, _ := base.Rows(c.train.Labels, c.train.Manifest.Classes)
	return len(hold)
}

// whyWon says in one line why the first of the ranked runs won: by which
// of rankRuns' criteria it beat the second.
func whyWon(runs []SweepRun) string {
	w := runs[0]
	wb := w.Metrics.Best
	lead := fmt.Sprintf("%s (holdout accuracy %.4f, loss %.4f, best epoch %d)", w.Name, wb.HoldoutAccuracy, wb.HoldoutLoss, wb.Epoch)
	if len(runs) == 1 {
		return lead + ": the only candidate"
	}
	n := runs[1]
	nb := n.Metrics.Best
	ties := 0
	for _, r := range runs[1:] {
		if r.Metrics.Best.HoldoutAccuracy == wb.HoldoutAccuracy {
			ties++
		}
	}
	wh, nh := w.Settings.Resolve().Hidden, n.Settings.Resolve().Hidden
	switch {
	case wb.HoldoutAccuracy > nb.HoldoutAccuracy:
		return fmt.Sprintf("%s: the highest holdout accuracy, %.4f ahead of the next, %s (%.4f)",
			lead, wb.HoldoutAccuracy-nb.HoldoutAccuracy, n.Name, nb.HoldoutAccuracy)
	case wb.HoldoutLoss < nb.HoldoutLoss:
		return fmt.Sprintf("%s: tied on holdout accuracy with %d other(s), the lowest holdout loss of them (next: %s, %.4f)",
			lead, ties, n.Name, nb.HoldoutLoss)
	case wh < nh:
		return fmt.Sprintf("%s: tied on holdout accuracy and loss with %s, and simpler: %d hidden units against %d", lead, n.Name, wh, nh)
	case wb.Epoch < nb.Epoch:
		return fmt.Sprintf("%s: tied on holdout accuracy, loss and size with %s, and simpler: %d epochs against %d", lead, n.Name, wb.Epoch, nb.Epoch)
	}
	return fmt.Sprintf("%s: tied in every respect with %s, and first in the search's order", lead, n.Name)
}

// WriteTable prints what the search tried, ranked, as an aligned table:
// the settings, the best holdout accuracy and its loss and epoch, the
// epochs run and the time.
func (r *AutoResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rank\tcandidate\thidden\tdropout\tlr\tl2\tholdout_accuracy\tholdout_loss\tbest epoch\tepochs run\tseconds\t")
	for i, run := range r.Search.Runs {
		s, m := run.Settings.Resolve(), run.Metrics
		note := ""
		if run.Reused {
			note = " (reused)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%g\t%g\t%g\t%.4f\t%.4f\t%d\t%d\t%.1f%s\t\n", i+1, run.Name, s.Hidden, s.Dropout, s.LR, s.L2,
			m.Best.HoldoutAccuracy, m.Best.HoldoutLoss, run.BestEpoch(), m.EpochsRun, m.Seconds, note)
	}
	return tw.Flush()
}
