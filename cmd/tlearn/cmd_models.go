package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/models"
)

// Flags of `tlearn models ...`.
const (
	flagModelsONNX          = "onnx"
	flagModelsPreset        = "preset"
	flagModelsFeatureTensor = "feature-tensor"
	flagModelsPreprocessing = "preprocessing"
	flagModelsDefaultSize   = "default-size"
	flagModelsOut           = "out"
	flagModelsJSON          = "json"
	flagModelsSeed          = "seed"
	flagModelsKeras         = "keras"
	flagModelsTiny          = "tiny"
	flagModelsClassifier    = "classifier"
	flagModelsZoo           = "zoo"
	flagModelsWidth         = "width"
)

func modelsCommand() *cli.Command {
	return &cli.Command{
		Name:  "models",
		Usage: "inspect, prepare and synthesize ONNX backbones",
		Description: `Work with the ONNX backbone that tlearn extracts features with.

Example:
   tlearn models synth vgg16 --seed 1 --out vgg16.onnx
   tlearn models info vgg16.onnx
   tlearn models prepare --onnx vgg16.onnx --out model
   tlearn models quantize --model model --calibrate images --out model-int8`,
		Subcommands: modelsSubcommands(),
	}
}

func modelsInfoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "show an ONNX file's inputs, outputs, opsets, ops, parameters and VGG16 blocks",
		ArgsUsage: "FILE.onnx|PREPARED_DIR",
		Description: `Summarizes any ONNX file, or a prepared model folder (its extractor.onnx and
spec.json). For VGG16-shaped graphs it lists the blocks found by walking the
graph, and the preset that prepare would choose.

Example:
   tlearn models info vgg16-12.onnx
   tlearn models info --json model/`,
		Flags:  withCommon(&cli.BoolFlag{Name: flagModelsJSON, Usage: "print JSON instead of text"}),
		Action: modelsInfoAction,
	}
}

func modelsInfoAction(c *cli.Context) error {
	// urfave/cli stops at the first argument; accept `info FILE --json` too.
	asJSON := c.Bool(flagModelsJSON)
	var args []string
	for _, a := range c.Args().Slice() {
		switch {
		case a == "--"+flagModelsJSON || a == "-"+flagModelsJSON:
			asJSON = true
		case strings.HasPrefix(a, "-"):
			return usageError{fmt.Errorf("models info: put flags such as %s before the file", a)}
		default:
			args = append(args, a)
		}
	}
	if len(args) != 1 {
		return usageError{fmt.Errorf("models info: want one FILE.onnx or prepared folder, got %d arguments", len(args))}
	}
	info, err := models.InspectPath(args[0])
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	return info.WriteText(c.App.Writer)
}

func modelsPrepareCommand() *cli.Command {
	return &cli.Command{
		Name:  "prepare",
		Usage: "cut a backbone into DIR/extractor.onnx (pooled features, block4 maps) and DIR/spec.json",
		Description: `Cuts a VGG16 at block5_pool: the extractor outputs "features" [N,512]
(global average pooling of block5_pool) and "maps" [N,512,H/16,W/16]
(block4_pool, NCHW), with free batch and image size; block5's weights stay in it
for fine-tuning. Accepts a full VGG16 or a conv base: torch.onnx exports of
torchvision (preset ` + models.PresetTorchvision + `, also the ONNX Model Zoo vgg16-7/12) and
tf2onnx exports of Keras (preset ` + models.PresetKeras + `, NHWC, BGR, caffe mean). The
preset is detected from the graph where that is unambiguous.

Any other backbone works in head-only mode: name the tensor to pool with
--feature-tensor (4-D tensors are average-pooled) and its input preprocessing.

Example:
   tlearn models prepare --onnx vgg16-12.onnx --out model
   tlearn models prepare --onnx vgg16-cifar5.onnx --default-size 32 --out model-cifar
   tlearn models prepare --onnx keras_vgg16.onnx --preset vgg16-keras --out model-keras
   tlearn models prepare --onnx mobilenetv2-12-int8.onnx --feature-tensor 627 --out mobilenet`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagModelsONNX, Usage: "the ONNX `FILE` to prepare", Required: true},
			&cli.StringFlag{Name: flagModelsOut, Usage: "output `DIR` (created)", Required: true},
			&cli.StringFlag{Name: flagModelsPreset, Usage: "VGG16 preset: " + strings.Join(models.Presets, " or "), DefaultText: "detected"},
			&cli.StringFlag{Name: flagModelsFeatureTensor, Usage: "for a backbone that is not a VGG16: the `TENSOR` to pool"},
			&cli.IntFlag{Name: flagModelsDefaultSize, Usage: "the image `SIDE` the backbone was trained at, recorded for extract", DefaultText: "the input's fixed side, else 224"},
			&cli.StringFlag{Name: flagModelsPreprocessing, Value: models.PreprocessingTorchvision, Usage: "with --feature-tensor: input preprocessing, " + models.PreprocessingTorchvision + " or " + models.PreprocessingCaffe},
		),
		Action: onInterrupt("the model folder was not written; the same command prepares it again from the start", modelsPrepareAction),
	}
}

func modelsPrepareAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError{fmt.Errorf("models prepare: unexpected arguments %q (the model goes in --%s)", c.Args().Slice(), flagModelsONNX)}
	}
	opts, err := sessionOptions(c)
	if err != nil {
		return err
	}
	if c.IsSet(flagModelsPreprocessing) && !c.IsSet(flagModelsFeatureTensor) {
		return usageError{fmt.Errorf("models prepare: --%s goes with --%s; VGG16 presets fix their preprocessing", flagModelsPreprocessing, flagModelsFeatureTensor)}
	}
	if c.Int(flagModelsDefaultSize) < 0 {
		return usageError{fmt.Errorf("models prepare: --%s must be positive", flagModelsDefaultSize)}
	}
	if _, err := initORT(c); err != nil {
		return err
	}
	s := models.PrepareSettings{
		Preset:        c.String(flagModelsPreset),
		FeatureTensor: c.String(flagModelsFeatureTensor),
		Preprocessing: c.String(flagModelsPreprocessing),
		DefaultSize:   c.Int(flagModelsDefaultSize),
		Threads:       opts.Threads,
	}
	spec, err := models.Prepare(c.Context, c.String(flagModelsONNX), s, c.String(flagModelsOut))
	if err != nil {
		return withPrepareAdvice(err, s)
	}
	w := stderr(c)
	fmt.Fprintf(w, "prepared %s (%s, %s %s input %q) -> %s\n", c.String(flagModelsONNX), spec.Preset,
		spec.Preprocessing.Layout, spec.Preprocessing.ChannelOrder, spec.Input, c.String(flagModelsOut))
	fmt.Fprintf(w, "  %s [N,%d]", spec.Features.Name, spec.Features.Dim)
	if spec.Maps != nil {
		fmt.Fprintf(w, ", %s [N,%d,H/%d,W/%d]", spec.Maps.Name, spec.Maps.Channels, spec.Maps.Stride, spec.Maps.Stride)
	}
	fmt.Fprintln(w)
	return nil
}

// withPrepareAdvice adds what the user can do about an error of Prepare
// with settings s, in terms of this command's flags (package models' errors
// do not know them).
func withPrepareAdvice(err error, s models.PrepareSettings) error {
	var advice string
	switch {
	case errors.Is(err, models.ErrNotVGG):
		advice = "for another backbone, name the tensor to pool with --" + flagModelsFeatureTensor
	case errors.Is(err, models.ErrPreset) && s.FeatureTensor != "":
		advice = "with --" + flagModelsFeatureTensor + " the preset is " + models.PresetCustom + ": leave out --" + flagModelsPreset
	case errors.Is(err, models.ErrPreset) && s.Preset == "":
		advice = "choose with --" + flagModelsPreset + " " + strings.Join(models.Presets, "|")
	case errors.Is(err, models.ErrPreset):
		advice = "leave out --" + flagModelsPreset + " to detect it from the graph"
	case errors.Is(err, models.ErrNoTensor):
		advice = "see `tlearn models info --json` for the graph's outputs, or Netron for all tensors"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, advice)
}

func modelsSynthCommand() *cli.Command {
	return &cli.Command{
		Name:  "synth",
		Usage: "write a model with seeded random weights (for tests and benchmarks)",
		Description: `Example:
   tlearn models synth vgg16 --seed 1 --tiny --out tiny.onnx`,
		Subcommands: []*cli.Command{modelsSynthVGG16Command()},
	}
}

func modelsSynthVGG16Command() *cli.Command {
	return &cli.Command{
		Name:  "vgg16",
		Usage: "write a VGG16 with seeded random weights",
		Description: `Writes the VGG16 conv-base architecture (13 Conv+Relu, 5 MaxPool) with seeded
He-initialized weights, in the layout and names of a torch.onnx export of
torchvision's vgg16().features, or with --keras of a tf2onnx export of
keras.applications.VGG16 (NHWC input). Real weights cannot be downloaded
everywhere; this stands in for them. --tiny divides channels by 16 (well
under 1 MB); --classifier adds the fully connected layers (full VGG16: 528 MB);
--zoo mimics the ONNX Model Zoo's vgg16-7 (fixed 1x3x224x224 input, classifier).
The graph mimics the exporter's, but the file's metadata says that tlearn made
it (key tlearn.synthetic: style, layout, seed, width; see models info --json).

Example:
   tlearn models synth vgg16 --seed 1 --out vgg16.onnx
   tlearn models synth vgg16 --seed 1 --keras --tiny --out tiny-keras.onnx`,
		Flags: withCommon(
			&cli.StringFlag{Name: flagModelsOut, Usage: "output `FILE`", Required: true},
			&cli.Int64Flag{Name: flagModelsSeed, Usage: "random seed of the weights"},
			&cli.BoolFlag{Name: flagModelsKeras, Usage: "tf2onnx Keras layout: NHWC input, Keras layer names"},
			&cli.BoolFlag{Name: flagModelsZoo, Usage: "ONNX Model Zoo vgg16-7 layout (fixed input, classifier)"},
			&cli.BoolFlag{Name: flagModelsTiny, Usage: "1/16 of the channels (same as --width 0.0625)"},
			&cli.Float64Flag{Name: flagModelsWidth, Value: 1, Usage: "channel multiplier"},
			&cli.BoolFlag{Name: flagModelsClassifier, Usage: "add the classifier after block5_pool (full VGG16)"},
		),
		Action: modelsSynthAction,
	}
}

func modelsSynthAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError{fmt.Errorf("models synth vgg16: unexpected arguments %q", c.Args().Slice())}
	}
	s := models.SynthSettings{
		Seed:       c.Int64(flagModelsSeed),
		Keras:      c.Bool(flagModelsKeras),
		Zoo:        c.Bool(flagModelsZoo),
		Width:      c.Float64(flagModelsWidth),
		Classifier: c.Bool(flagModelsClassifier),
	}
	if c.Bool(flagModelsTiny) {
		if c.IsSet(flagModelsWidth) {
			return usageError{fmt.Errorf("models synth: --%s and --%s both set the width", flagModelsTiny, flagModelsWidth)}
		}
		s.Width = 1.0 / 16
	}
	if s.Width <= 0 || s.Width > 4 {
		return usageError{fmt.Errorf("models synth: --%s %g, want a value in (0, 4]", flagModelsWidth, s.Width)}
	}
	if s.Keras && s.Zoo {
		return usageError{fmt.Errorf("models synth: --%s and --%s exclude each other", flagModelsKeras, flagModelsZoo)}
	}
	// Locked before the weights are drawn: a second writer of the file
	// fails at once, and a killed one's temporary goes.
	p := newReporter(stderr(c))
	defer p.Finish()
	lock, err := experiment.LockOutput(c.String(flagModelsOut), p)
	if err != nil {
		return fmt.Errorf("models synth: %w", err)
	}
	defer lock.Unlock()
	m := models.SynthVGG16(s)
	if err := models.Save(c.String(flagModelsOut), m); err != nil {
		return err
	}
	info := models.Inspect(m)
	fmt.Fprintf(stderr(c), "wrote %s: VGG16 (%s), %d parameters\n", c.String(flagModelsOut), info.Preset, info.Parameters)
	return nil
}

func modelsSubcommands() []*cli.Command {
	return []*cli.Command{
		modelsInfoCommand(),
		modelsPrepareCommand(),
		modelsQuantizeCommand(),
		modelsSynthCommand(),
		modelsFetchCommand(),
	}
}
