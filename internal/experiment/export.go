package experiment

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// ExportSettings say which run becomes which classifier file.
type ExportSettings struct {
	// Run is the run directory (Train or FineTune).
	Run string
	// Out is the classifier file to write; its folder must exist.
	Out string
	// Model is the prepared model folder; "" means the run's, recorded in
	// its settings.json. A model named here that is not the run's is
	// accepted when its features fit the weights (with a warning).
	Model string
	// Size is the input side recorded in the classifier; 0 means the one
	// the run's training cache was made at (else the model's default).
	Size int
	// Interpolation is the resize filter recorded; "" means the training
	// cache's.
	Interpolation dataset.Interpolation
	// Threads for the check run under ONNX Runtime; 0 means one per core.
	Threads int
}

// Export combines the prepared model a run was trained on with the run's
// weights into one ONNX classifier (classifier.Build), checks it with one run
// under ONNX Runtime and writes it to s.Out. It logs warnings and a
// summary on p (nil: silent) and returns what the classifier records about
// itself. The caller initializes ONNX Runtime. A cancelled ctx stops it
// (also within the check run) before s.Out is written; the error wraps
// ctx's.
func Export(ctx context.Context, s ExportSettings, p progress.Reporter) (*classifier.Info, error) {
	p = progress.OrNop(p)
	if fi, err := os.Stat(filepath.Dir(s.Out)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("experiment: the folder of %s does not exist", s.Out)
	}
	rs, err := rundir.ReadInfo(s.Run)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	modelDir := cmp.Or(s.Model, rs.ModelDir)
	if err := fsutil.CheckOutput(s.Out, append(rundir.Files(s.Run), modelDir)...); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	lock, err := lockOutput(s.Out, p)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	weightsPath := filepath.Join(s.Run, rundir.WeightsFile)
	hw, err := rundir.LoadWeights(weightsPath)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if note := rs.NoteUnchecked(s.Run); note != "" {
		p.Log(note)
	}
	if !slices.Equal(rs.Classes, hw.Classes) {
		return nil, fmt.Errorf("experiment: class mismatch in %s: %s lists %d classes (%s) but %s holds %d (%s)",
			s.Run, rundir.SettingsFile, len(rs.Classes), strings.Join(rs.Classes, ", "), rundir.WeightsFile, len(hw.Classes), strings.Join(hw.Classes, ", "))
	}
	ew, err := exportWeights(hw, rs.Mode, weightsPath)
	if err != nil {
		return nil, err
	}
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if spec.ExtractorSHA256 == "" {
		p.Log(models.NoSHA256Note(modelDir))
	}
	extPath := filepath.Join(modelDir, models.ExtractorFile)
	b, sha, err := models.ReadExtractor(modelDir)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if err := checkExportModel(p, s, rs, spec, hw, extPath, sha); err != nil {
		return nil, err
	}
	m, err := models.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("experiment: load %s: %w", extPath, err)
	}
	size, interp, from, err := resizing(p, s, rs, spec)
	if err != nil {
		return nil, err
	}
	cm, err := classifier.Build(ctx, spec, m, ew, classifier.Settings{
		Classes: hw.Classes, Size: size, Interpolation: interp, ExtractorSHA256: sha, Threads: s.Threads,
	})
	if err != nil {
		if errors.Is(err, classifier.ErrWeightsMismatch) {
			return nil, fmt.Errorf("experiment: %s and model %s: %w", weightsPath, modelDir, err)
		}
		return nil, fmt.Errorf("experiment: model %s: %w", modelDir, err)
	}
	// Build's check run is where an interrupt usually lands; one that
	// arrives after it still keeps the output from being written.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := models.Save(s.Out, cm); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return logExportSummary(p, s.Out, cm, modelDir, spec, from)
}

// checkExportModel checks that the model with extractor.onnx sha256 sha is
// the one the run was trained on, or (named explicitly) one whose features
// fit the weights.
func checkExportModel(p progress.Reporter, s ExportSettings, rs *rundir.Info, spec *models.Spec, hw *head.Weights, extPath, sha string) error {
	switch {
	case rs.ModelSHA256 == "":
		p.Log(fmt.Sprintf("warning: %s records no model_sha256: cannot check that %s is the model the run was trained on", filepath.Join(s.Run, rundir.SettingsFile), extPath))
	case sha == rs.ModelSHA256:
	case s.Model == "":
		return fmt.Errorf("%w: %s has sha256 %.12s… but run %s was trained on %.12s… (%s model_sha256)",
			ErrModelChanged, extPath, sha, s.Run, rs.ModelSHA256, rundir.SettingsFile)
	case spec.Features.Dim != hw.InputDim():
		return fmt.Errorf("experiment: the model %s is not the model run %s was trained on (sha256 %.12s…, want %.12s…), and its %d features do not fit the weights' %d inputs",
			s.Model, s.Run, sha, rs.ModelSHA256, spec.Features.Dim, hw.InputDim())
	default:
		p.Log(fmt.Sprintf("warning: the model %s is not the model run %s was trained on (sha256 %.12s…, want %.12s…); its %d features fit the weights, so the export goes on: check the classifier's accuracy",
			s.Model, s.Run, sha, rs.ModelSHA256, spec.Features.Dim))
	}
	return nil
}

// resizing finds the size and filter the run's features were made with:
// the settings, else the training cache's manifest, else the model's
// default (with a warning); from says where the size came from.
func resizing(p progress.Reporter, s ExportSettings, ri *rundir.Info, spec *models.Spec) (size int, interp dataset.Interpolation, from string, err error) {
	size, interp, from = s.Size, s.Interpolation, "the explicit setting"
	if size != 0 && interp != "" {
		return size, interp, from, nil
	}
	m, err := cache.ReadManifest(ri.TrainCache.Dir)
	switch {
	case err == nil:
		if size == 0 {
			size, from = m.Size, "the training cache "+ri.TrainCache.Dir
		}
		if interp == "" {
			if interp, err = dataset.ParseInterpolation(m.Interpolation); err != nil {
				return 0, "", "", fmt.Errorf("experiment: %s: %w", ri.TrainCache.Dir, err)
			}
		}
	case size == 0:
		size, from = spec.DefaultSize, "the model's default"
		p.Log(fmt.Sprintf("warning: the run's training cache is not readable (%v): recording the model's default size %d and filter %s; give the size and filter explicitly if the run was trained on other ones",
			err, size, cmp.Or(interp, dataset.Nearest)))
	}
	return size, interp, from, nil
}

// exportWeights converts the run's weights to models' plain tensors and
// checks them against the run's mode.
func exportWeights(w *head.Weights, mode, path string) (classifier.Weights, error) {
	var ew classifier.Weights
	if k, b, ok := w.Hidden(); ok {
		ew.Hidden = &classifier.Dense{In: k.Shape[0], Out: k.Shape[1], Kernel: k.Data, Bias: b.Data}
	}
	k, b := w.Output()
	ew.Output = classifier.Dense{In: k.Shape[0], Out: k.Shape[1], Kernel: k.Data, Bias: b.Data}
	var p classifier.Block5Params
	var have, missing []string
	for i := range 3 {
		for j, name := range []string{models.Block5WeightName(i + 1), models.Block5BiasName(i + 1)} {
			t, ok := w.Tensors[name]
			if !ok {
				missing = append(missing, name)
				continue
			}
			have = append(have, name)
			if j == 0 {
				p.ConvWeights[i] = t.Data
			} else {
				p.ConvBiases[i] = t.Data
			}
		}
	}
	switch {
	case len(have) > 0 && len(missing) > 0:
		return ew, fmt.Errorf("experiment: %s holds only some of block5's tensors: %s missing", path, strings.Join(missing, ", "))
	case mode == rundir.ModeFineTune && len(have) == 0:
		return ew, fmt.Errorf("experiment: %s has no block5 tensors, but %s says mode %q", path, rundir.SettingsFile, mode)
	case mode == rundir.ModeHead && len(have) > 0:
		return ew, fmt.Errorf("experiment: %s holds fine-tuned block5 tensors, but %s says mode %q", path, rundir.SettingsFile, mode)
	case len(have) > 0:
		ew.Block5 = &p
	}
	return ew, nil
}

func logExportSummary(p progress.Reporter, out string, m *onnxpb.ModelProto, modelDir string, spec *models.Spec, from string) (*classifier.Info, error) {
	info, err := classifier.ReadInfo(m)
	if err != nil {
		return nil, fmt.Errorf("experiment: %s: %w", out, err)
	}
	var size int64
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	in, outs := info.Summary()
	p.Log(fmt.Sprintf("wrote %s (%.1f MB): %s classifier, %s backbone from %s", out, float64(size)/1e6, info.Mode, spec.Preset, modelDir))
	p.Log("  input:  " + in)
	p.Log("  output: " + outs)
	p.Log("  size from " + from)
	// The check run is ortlib.Probe's: always the CPU provider, whatever
	// --device says, since one short run gains nothing from a GPU.
	p.Log("  checked: one run of 2 images on cpu (ONNX Runtime " + ortlib.Version() + ")")
	return info, nil
}
