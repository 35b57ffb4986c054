package experiment

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
)

// reportTopK is the k of the top-k accuracy that a run's metrics record,
// and Evaluate's default.
const reportTopK = 5

// EvaluateSettings say which run is measured on which cache.
type EvaluateSettings struct {
	// Run is a run directory written by Train or FineTune.
	Run string
	// Cache is the feature cache to measure it on. It must come from the
	// model the run was trained on and have the run's classes, in the same
	// order; for a fine-tuned run it must hold block4_pool maps.
	Cache string
	// TopK is the k of the top-k accuracy; 0 means 5.
	TopK int
	// TTA measures the mean probabilities of the cache's views (test-time
	// augmentation) instead of its plain view 0; a cache of one view is
	// the same either way.
	TTA bool
	// Runtime is called for a fine-tuned run only, once the run and the
	// cache are found to fit each other, because its block5 runs under
	// ONNX Runtime: it loads ONNX Runtime if need be and says where it
	// runs. A head run needs no ONNX Runtime. nil means the default
	// ortlib.Options, with ONNX Runtime loaded by the caller.
	Runtime func() (ortlib.Options, error)
}

// CheckEvaluateOutput refuses a file for Evaluate's report or plot that is,
// lies inside or holds one of its inputs: the run's files, the cache, or
// the prepared model that the run records (an *fsutil.OverlapError). The
// file may go into the run folder next to the run's own files. Call it
// before Evaluate; a run that cannot be read is left for Evaluate to
// report.
func CheckEvaluateOutput(out string, s EvaluateSettings) error {
	inputs := append(rundir.Files(s.Run), s.Cache)
	if info, err := rundir.ReadInfo(s.Run); err == nil {
		inputs = append(inputs, info.ModelDir)
	}
	if err := fsutil.CheckOutput(out, inputs...); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}

// Evaluate measures the run's weights on every image of the cache:
// accuracy, top-k accuracy, loss, per-class precision, recall and F1, and
// the confusion matrix. A head run reads the cache's features; a fine-tuned
// run reads its block4_pool maps and runs block5 and the head as the
// evaluation graph that validated its epochs. It refuses a cache that the
// run cannot read (another backbone, feature size or channel count, other
// classes; *NoMapsError for a fine-tuned run's cache without maps), and
// logs a note on p (nil: silent) when the cache was extracted with other
// settings than the run's training cache.
func Evaluate(ctx context.Context, s EvaluateSettings, p progress.Reporter) (*head.Report, error) {
	p = progress.OrNop(p)
	info, err := rundir.ReadInfo(s.Run)
	if err != nil {
		return nil, err
	}
	w, err := rundir.LoadWeights(filepath.Join(s.Run, rundir.WeightsFile))
	if err != nil {
		return nil, err
	}
	if note := info.NoteUnchecked(s.Run); note != "" {
		p.Log(note)
	}
	fineTuned := info.Mode == rundir.ModeFineTune
	open := cache.OpenFeatures // a head run reads no maps: leave them unread
	if fineTuned {
		open = cache.Open
	}
	cc, err := open(s.Cache)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	if fineTuned && !hasMaps(cc) {
		return nil, &NoMapsError{Dir: s.Cache}
	}
	if err := checkEvalCache(info, w, cc, fineTuned); err != nil {
		return nil, err
	}
	if m := cc.Manifest; !sameExtraction(m, info) {
		p.Log(fmt.Sprintf("note: %s was extracted with other settings than the training cache (size %d, interpolation %s); the same backbone makes the features comparable, but accuracy may differ",
			s.Cache, m.Size, m.Interpolation))
	}
	k := cmp.Or(s.TopK, reportTopK)
	var rep *head.Report
	if fineTuned {
		var rt ortlib.Options
		if s.Runtime != nil {
			if rt, err = s.Runtime(); err != nil {
				return nil, err
			}
		}
		rep, err = finetune.Evaluate(ctx, w, evalMapsData(cc, s.TTA), k, rt)
	} else {
		rep, err = head.Evaluate(ctx, w, evalData(cc, s.TTA), k)
	}
	if err != nil {
		return nil, fmt.Errorf("experiment: evaluate %s on %s: %w", s.Run, s.Cache, err)
	}
	return rep, nil
}

// sameExtraction reports whether the cache of m holds features extracted
// as the run's training cache's were, views aside: a cache of views
// (extract --views) and a plain one of the same model and settings are.
// The run records fingerprints only, which hash the views; the base
// fingerprint of a training cache of views comes from its manifest, when
// it is still there unchanged.
func sameExtraction(m *cache.Manifest, info *rundir.Info) bool {
	base := m.BaseFingerprint()
	for _, ref := range []rundir.CacheRef{info.TrainCache, info.ValCache} {
		if ref.Fingerprint == m.Fingerprint || ref.Fingerprint == base {
			return true
		}
		if tm, err := cache.ReadManifest(ref.Dir); err == nil && tm.Fingerprint == ref.Fingerprint && tm.BaseFingerprint() == base {
			return true
		}
	}
	return false
}

// checkEvalCache refuses a cache whose features (for a fine-tuned run:
// maps) the run cannot read: another backbone, another feature size or
// channel count, other classes.
func checkEvalCache(info *rundir.Info, w *head.Weights, cc *cache.Cache, fineTuned bool) error {
	m := cc.Manifest
	dim, what := m.FeatureDim, "features per image"
	if fineTuned {
		dim, what = m.MapsShape[0], "channels in its maps"
	}
	switch {
	case info.ModelSHA256 != "" && m.Model.ExtractorSHA256 != info.ModelSHA256:
		return fmt.Errorf("experiment: %s was made with another backbone (extractor sha256 %s, the run was trained on %s from %s); extract it with that model",
			cc.Dir, shortSHA(m.Model.ExtractorSHA256), shortSHA(info.ModelSHA256), info.ModelDir)
	case dim != w.InputDim():
		return fmt.Errorf("experiment: %s has %d %s, the head expects %d", cc.Dir, dim, what, w.InputDim())
	case len(m.Classes) != w.NumClasses():
		return fmt.Errorf("experiment: %s has %d classes %v, the run has %d %v", cc.Dir, len(m.Classes), m.Classes, w.NumClasses(), w.Classes)
	case !slices.Equal(m.Classes, w.Classes):
		return fmt.Errorf("experiment: %s has classes %v, the run was trained on %v (same names in the same order needed)", cc.Dir, m.Classes, w.Classes)
	}
	return nil
}
