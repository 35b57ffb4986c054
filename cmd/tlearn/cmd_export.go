package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/cache"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
	"github.com/tlearn/tlearn/models/onnxpb"
)

const (
	flagExportRun           = "run"
	flagExportOut           = "out"
	flagExportModel         = "model"
	flagExportSize          = "size"
	flagExportInterpolation = "interpolation"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a trained run as one ONNX classifier: uint8 pixels in, class probabilities out",
		Description: `Combines the prepared model a run was trained on (found through the run's
settings.json) with the run's weights into one ONNX file that any ONNX Runtime
runs:

   pixels uint8 [N,H,W,3] RGB 0..255 (images resized to the recorded size)
     -> preprocessing (layout, channel order, scale, mean, std: inside the graph)
     -> backbone up to block5_pool (fine-tuned block5 for finetune runs)
     -> global average pooling -> dense head (no dropout) -> softmax
     -> probabilities float32 [N,K]

Class names, input size, resize filter and preprocessing are stored in the
file's metadata (tlearn.classes, tlearn.size, tlearn.interpolation, ...), which
tlearn classify reads. The file is checked by one run under ONNX Runtime before
it is written.

The run must have been trained on this prepared model: its extractor.onnx must
have the sha256 recorded in settings.json. --model names another prepared
model folder; then a different model is accepted when its features and block5
fit the weights (a warning says so).

Example:
   tlearn export --run run-ft --out classifier.onnx
   tlearn export --run run-head --model /data/models/vgg16 --out head.onnx`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagExportRun, Usage: "run `DIR` written by tlearn train or finetune", Required: true},
			&cli.StringFlag{Name: flagExportOut, Usage: "classifier `FILE` to write (.onnx)", Required: true},
			&cli.StringFlag{Name: flagExportModel, Usage: "prepared model `DIR`", DefaultText: "the run's, from settings.json"},
			&cli.IntFlag{Name: flagExportSize, Usage: "input side recorded in the classifier", DefaultText: "the one the run's training cache was made at"},
			&cli.StringFlag{Name: flagExportInterpolation, Usage: "resize filter recorded in the classifier", DefaultText: "the run's training cache's"},
		),
		Action: exportAction,
	}
}

// resizing finds the size and filter the run's features were made with:
// the flags, else the training cache's manifest, else the model's default
// (with a warning); from says where the size came from.
func resizing(c *cli.Context, w io.Writer, ri *head.RunInfo, spec *models.Spec) (size int, interp dataset.Interpolation, from string, err error) {
	size, name := c.Int(flagExportSize), c.String(flagExportInterpolation)
	from = "--" + flagExportSize
	if size == 0 || name == "" {
		m, err := cache.ReadManifest(ri.TrainCache.Dir)
		switch {
		case err == nil:
			if size == 0 {
				size, from = m.Size, "the training cache "+ri.TrainCache.Dir
			}
			if name == "" {
				name = m.Interpolation
			}
		case size == 0:
			size, from = spec.DefaultSize, "the model's default"
			fmt.Fprintf(w, "warning: the run's training cache is not readable (%v): recording the model's default size %d and filter %s; pass --%s and --%s if the run was trained on other ones\n",
				err, size, cmp.Or(name, string(dataset.Nearest)), flagExportSize, flagExportInterpolation)
		}
	}
	if interp, err = dataset.ParseInterpolation(name); err != nil {
		return 0, "", "", usageError{err}
	}
	return size, interp, from, nil
}

func exportAction(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("export takes no arguments (got %q)", c.Args().First())}
	}
	if c.Int(flagExportSize) < 0 {
		return usageError{fmt.Errorf("--%s must be positive, got %d", flagExportSize, c.Int(flagExportSize))}
	}
	if _, err := sessionOptions(c); err != nil {
		return err
	}
	w := errWriter(c)
	runDir, out := c.String(flagExportRun), c.String(flagExportOut)
	if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
		return fmt.Errorf("export: the folder of --%s %s does not exist", flagExportOut, out)
	}
	rs, err := head.ReadRunInfo(runDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	weightsPath := filepath.Join(runDir, head.WeightsFile)
	hw, err := head.LoadWeights(weightsPath)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if !slices.Equal(rs.Classes, hw.Classes) {
		return fmt.Errorf("export: class mismatch in %s: %s lists %d classes (%s) but %s holds %d (%s)",
			runDir, head.SettingsFile, len(rs.Classes), strings.Join(rs.Classes, ", "), head.WeightsFile, len(hw.Classes), strings.Join(hw.Classes, ", "))
	}
	ew, err := exportWeights(hw, rs.Mode, weightsPath)
	if err != nil {
		return err
	}

	modelDir := rs.ModelDir
	if c.IsSet(flagExportModel) {
		modelDir = c.String(flagExportModel)
	}
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	extPath := filepath.Join(modelDir, models.ExtractorFile)
	b, sha, err := models.ReadExtractor(modelDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if rs.ModelSHA256 == "" {
		fmt.Fprintf(w, "warning: %s records no model_sha256: cannot check that %s is the model the run was trained on\n", filepath.Join(runDir, head.SettingsFile), extPath)
	} else if sha != rs.ModelSHA256 {
		fits := spec.Features.Dim == hw.InputDim()
		switch {
		case !c.IsSet(flagExportModel):
			return fmt.Errorf("export: %s has sha256 %.12s… but run %s was trained on %.12s… (%s model_sha256): the prepared model changed since training; "+
				"extract and train again, or pass --%s DIR to export with another prepared model whose features fit the weights",
				extPath, sha, runDir, rs.ModelSHA256, head.SettingsFile, flagExportModel)
		case !fits:
			return fmt.Errorf("export: --%s %s is not the model run %s was trained on (sha256 %.12s…, want %.12s…), and its %d features do not fit the weights' %d inputs",
				flagExportModel, modelDir, runDir, sha, rs.ModelSHA256, spec.Features.Dim, hw.InputDim())
		}
		fmt.Fprintf(w, "warning: --%s %s is not the model run %s was trained on (sha256 %.12s…, want %.12s…); its %d features fit the weights, so the export goes on: check the classifier's accuracy\n",
			flagExportModel, modelDir, runDir, sha, rs.ModelSHA256, spec.Features.Dim)
	}
	m, err := models.Unmarshal(b)
	if err != nil {
		return fmt.Errorf("export: load %s: %w", extPath, err)
	}
	size, interp, from, err := resizing(c, w, rs, spec)
	if err != nil {
		return err
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	cm, err := classifier.Build(spec, m, ew, classifier.Settings{
		Classes: hw.Classes, Size: size, Interpolation: interp, ExtractorSHA256: sha, Threads: c.Int(flagThreads),
	})
	if err != nil {
		if errors.Is(err, classifier.ErrWeightsMismatch) {
			return fmt.Errorf("export: %s and model %s: %w", weightsPath, modelDir, err)
		}
		return fmt.Errorf("export: model %s: %w", modelDir, err)
	}
	if err := models.Save(out, cm); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return printExportSummary(w, out, cm, modelDir, spec, from)
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
		return ew, fmt.Errorf("export: %s holds only some of block5's tensors: %s missing", path, strings.Join(missing, ", "))
	case mode == head.ModeFineTune && len(have) == 0:
		return ew, fmt.Errorf("export: %s has no block5 tensors, but %s says mode %q", path, head.SettingsFile, mode)
	case mode == head.ModeHead && len(have) > 0:
		return ew, fmt.Errorf("export: %s holds fine-tuned block5 tensors, but %s says mode %q", path, head.SettingsFile, mode)
	case len(have) > 0:
		ew.Block5 = &p
	}
	return ew, nil
}

func printExportSummary(w io.Writer, out string, m *onnxpb.ModelProto, modelDir string, spec *models.Spec, from string) error {
	info, err := classifier.ReadInfo(m)
	if err != nil {
		return fmt.Errorf("export: %s: %w", out, err)
	}
	var size int64
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	in, outs := info.Summary()
	fmt.Fprintf(w, "wrote %s (%.1f MB): %s classifier, %s backbone from %s\n", out, float64(size)/1e6, info.Mode, spec.Preset, modelDir)
	fmt.Fprintf(w, "  input:  %s\n", in)
	fmt.Fprintf(w, "  output: %s\n", outs)
	fmt.Fprintf(w, "  size from %s\n", from)
	return nil
}
