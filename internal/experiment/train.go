package experiment

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// TrainSettings say what one head run trains on and where it is written.
// The zero Head is the reference head and optimizer.
type TrainSettings struct {
	// Train is the training feature cache, or, when Val is "", a folder
	// holding the train/ and val/ caches of a split extraction.
	Train string
	// Val is the validation feature cache.
	Val string
	// Out is the run directory to write.
	Out string
	// Title heads the plots, before the settings; "" means Out's base name.
	Title string
	// Head are the training settings.
	Head head.Settings
	// Overwrite replaces an existing run directory (and nothing else: see
	// rundir.CheckNew). Without it an existing Out is an error wrapping
	// rundir.ErrExists. Out may not be, lie inside or hold Train or Val
	// (an *fsutil.OverlapError). Both are checked before training.
	Overwrite bool
	// TTA validates on the mean probabilities of Val's views (test-time
	// augmentation) instead of its plain images.
	TTA bool
}

// Run is a finished run directory and its metrics.
type Run struct {
	Dir     string
	Metrics *rundir.Metrics
	// Reused is set when a finished run with the same settings was found
	// and kept instead of training again.
	Reused bool
}

// now is the creation time recorded in settings.json.
func now() time.Time { return time.Now().UTC() }

// Train trains one head on a pair of feature caches and writes its run
// directory (settings.json, weights, history, metrics, plots). It logs the
// data, every epoch and a summary on p (nil: silent). On cancellation it
// returns ctx's error and leaves no run directory behind.
func Train(ctx context.Context, s TrainSettings, p progress.Reporter) (*Run, error) {
	if err := s.Head.Validate(); err != nil {
		return nil, err
	}
	if err := checkNew(s.Out, s.Overwrite, s.Train, s.Val); err != nil {
		return nil, tidyFinished(err, s.Out)
	}
	lock, err := lockOutput(s.Out, p)
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
	title := s.Title
	if title == "" {
		title = filepath.Base(s.Out)
	}
	m, err := trainRun(ctx, c, s.Head, s.Out, title, s.Overwrite, progress.OrNop(p))
	if err != nil {
		return nil, err
	}
	return &Run{Dir: s.Out, Metrics: m}, nil
}

// checkNew refuses a run directory that would overwrite or delete one of
// the command's inputs, an existing folder that may not be replaced
// (rundir.CheckNew), and a run directory that could not be created (its
// parent a file, or a folder that cannot be written), so that the conflict
// shows before the work, not after it.
func checkNew(dir string, overwrite bool, inputs ...string) error {
	if err := fsutil.CheckOutput(dir, inputs...); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	if err := fsutil.CheckCreatable(dir); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return rundir.CheckNew(dir, overwrite)
}

// trainRun trains one head on c and writes its run directory out.
func trainRun(ctx context.Context, c *caches, s head.Settings, out, title string, overwrite bool, p progress.Reporter) (*rundir.Metrics, error) {
	return trainRunWith(ctx, c, s, out, title, overwrite, nil, p)
}

// trainRunWith is trainRun, with Auto's record of the search (nil: none)
// in settings.json.
func trainRunWith(ctx context.Context, c *caches, s head.Settings, out, title string, overwrite bool, auto *AutoRecord, p progress.Reporter) (*rundir.Metrics, error) {
	train, val := c.train, c.val
	r := s.Resolve()
	held := ""
	if r.Holdout > 0 {
		held = fmt.Sprintf(" less a holdout of %g (seed %d) to select on", r.Holdout, r.HoldoutSeed)
	}
	p.Log(fmt.Sprintf("training on %d images%s (%d features, %d classes), validating on %d; %s",
		train.Len(), held, train.Manifest.FeatureDim, len(train.Manifest.Classes), val.Len(), describeSettings(r)))
	trainD, valD := c.data()
	res, err := head.Train(ctx, trainD, valD, s, p)
	if err != nil {
		return nil, err
	}
	rep, err := head.Evaluate(ctx, res.Weights, valD, reportTopK)
	if err != nil {
		return nil, err
	}
	info, err := c.runInfo(res)
	if err != nil {
		return nil, err
	}
	info.HoldoutN = res.HoldoutN
	m := rundir.NewMetrics(res.History, res.WeightsEpoch, res.Seconds, res.EarlyStopped, rep)
	var settings any = rundir.HeadSettings{Info: info, Settings: res.Settings}
	if auto != nil {
		settings = autoRunSettings{HeadSettings: rundir.HeadSettings{Info: info, Settings: res.Settings}, Auto: auto}
	}
	err = rundir.Write(out, &rundir.Contents{
		Settings:  settings,
		Weights:   res.Weights,
		History:   res.History,
		Metrics:   m,
		Title:     title + ": " + describeSettings(res.Settings),
		Overwrite: overwrite,
	})
	if err != nil {
		return nil, err
	}
	n := len(res.History)
	stopped := ""
	if res.EarlyStopped {
		stopped = " (stopped early)"
	}
	p.Log(fmt.Sprintf("%d epochs%s in %s (%s per epoch, %s)", n, stopped, fsutil.FormatSeconds(res.Seconds), fsutil.FormatSeconds(res.Seconds/float64(n)), res.Backend))
	p.Log(fmt.Sprintf("final: val_accuracy %.4f val_loss %.4f; best: %s in epoch %d; saved the weights of epoch %d: val top-5 %.4f, macro F1 %.4f",
		m.Final.ValAccuracy, m.Final.ValLoss, describeBest(m), m.Best.Epoch, m.WeightsEpoch, rep.TopKAccuracy, rep.MacroF1))
	p.Log("wrote " + out)
	return m, nil
}

// describeBest is the best epoch's accuracy on the set that selected it,
// and, for a holdout, the validation accuracy of that epoch.
func describeBest(m *rundir.Metrics) string {
	if m.Best.HasHoldout {
		return fmt.Sprintf("holdout_accuracy %.4f (val_accuracy %.4f)", m.Best.HoldoutAccuracy, m.Best.ValAccuracy)
	}
	return fmt.Sprintf("val_accuracy %.4f", m.Best.ValAccuracy)
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
	if s.Schedule != head.ScheduleConstant {
		fmt.Fprintf(&b, " (%s lr schedule)", s.Schedule)
	}
	if s.L2 > 0 {
		fmt.Fprintf(&b, ", L2 %g", s.L2)
	}
	if s.LabelSmoothing > 0 {
		fmt.Fprintf(&b, ", label smoothing %g", s.LabelSmoothing)
	}
	if s.EMA > 0 {
		fmt.Fprintf(&b, ", weights averaged (EMA %g)", s.EMA)
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
	if s.Holdout > 0 {
		fmt.Fprintf(&b, ", holdout %g", s.Holdout)
	}
	fmt.Fprintf(&b, ", seed %d", s.Seed)
	return b.String()
}
