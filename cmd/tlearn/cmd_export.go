package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/experiment"
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
		Action: onInterrupt("the classifier was not written; the same command exports it again from the start", exportAction),
	}
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
	var interp dataset.Interpolation
	if name := c.String(flagExportInterpolation); name != "" {
		var err error
		if interp, err = dataset.ParseInterpolation(name); err != nil {
			return usageError{err}
		}
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	p := newReporter(stderr(c))
	defer p.Finish()
	_, err := experiment.Export(c.Context, experiment.ExportSettings{
		Run: c.String(flagExportRun), Out: c.String(flagExportOut), Model: c.String(flagExportModel),
		Size: c.Int(flagExportSize), Interpolation: interp, Threads: c.Int(flagThreads),
	}, p)
	err = outputError(err, flagExportOut)
	if errors.Is(err, experiment.ErrModelChanged) {
		return fmt.Errorf("%w; extract and train again, or pass --%s DIR to export with another prepared model whose features fit the weights", err, flagExportModel)
	}
	return err
}
