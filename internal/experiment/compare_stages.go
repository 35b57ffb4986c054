package experiment

import (
	"context"
	"path/filepath"
	"strconv"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/progress"
)

// stages plans the tutorial's five stages and, unless NoBest, the "tlearn
// best" row's four: each with the tlearn commands that do the same
// (recorded, and compared with an earlier call's to decide on reuse) and
// the library calls that do it.
func (c *comparison) stages() []compareStage {
	s := c.s
	headDir, ftDir := filepath.Join(s.Out, compareHeadDir), filepath.Join(s.Out, compareFTDir)
	common := []string{"--lr", formatFloat(s.LR), "--batch", strconv.Itoa(s.Batch), "--seed", strconv.FormatUint(s.Seed, 10)}
	if s.NoShuffle {
		common = append(common, "--no-shuffle")
	}
	train := append([]string{"train", "--train", c.trainCache, "--val", c.valCache, "--out", headDir, "--force",
		"--epochs", strconv.Itoa(s.Epochs)}, common...)
	finetuneArgs := append([]string{"finetune", "--model", s.Model, "--train", c.trainCache, "--val", c.valCache, "--out", ftDir, "--force",
		"--epochs", strconv.Itoa(s.FineTuneEpochs)}, common...)
	extracts, extractCmds := c.extractions()
	tutorial := []compareStage{
		{stageExtract, extractCmds, filepath.Join(c.valCache, cache.ManifestFile), nil,
			func(ctx context.Context, p progress.Reporter) error {
				for _, e := range extracts {
					if _, err := Extract(ctx, e, p); err != nil {
						return err
					}
				}
				return nil
			}},
		{stageHead, [][]string{train}, filepath.Join(headDir, rundir.MetricsFile), []string{stageExtract},
			func(ctx context.Context, p progress.Reporter) error {
				_, err := Train(ctx, TrainSettings{Train: c.trainCache, Val: c.valCache, Out: headDir, Overwrite: true,
					Head: head.Settings{Epochs: s.Epochs, LR: s.LR, Batch: s.Batch, Seed: s.Seed, NoShuffle: s.NoShuffle}}, p)
				return err
			}},
		{stageFineTune, [][]string{finetuneArgs}, filepath.Join(ftDir, rundir.MetricsFile), []string{stageExtract},
			func(ctx context.Context, p progress.Reporter) error {
				_, err := FineTune(ctx, FineTuneSettings{Model: s.Model, Train: c.trainCache, Val: c.valCache, Out: ftDir, Overwrite: true,
					Tuning: finetune.Settings{
						Settings: head.Settings{Epochs: s.FineTuneEpochs, LR: s.LR, Batch: s.Batch, Seed: s.Seed, NoShuffle: s.NoShuffle},
						Runtime:  s.Runtime,
					}}, p)
				return err
			}},
		c.exportStage(stageExportHead, headDir, stageHead),
		c.exportStage(stageExportFineTune, ftDir, stageFineTune),
	}
	if s.NoBest {
		return tutorial
	}
	return append(tutorial, c.bestStages()...)
}

// extractions are the extraction stage's calls and commands: one per
// image folder, or one split of TrainData.
func (c *comparison) extractions() ([]ExtractSettings, [][]string) {
	s := c.s
	size, nearest := strconv.Itoa(c.size), string(dataset.Nearest)
	// Nearest, as the tutorial's load_img, whatever the extract command's
	// default: both rows reproduce the tutorial.
	base := ExtractSettings{Model: s.Model, Data: s.TrainData, Maps: true, Size: c.size, Interpolation: dataset.Nearest, Force: s.Force, Runtime: s.Runtime}
	var calls []ExtractSettings
	var cmds [][]string
	if s.ValData != "" {
		train, val := base, base
		train.Cache = c.trainCache
		val.Data, val.Cache = s.ValData, c.valCache
		calls = []ExtractSettings{train, val}
		cmds = [][]string{
			{"extract", "--model", s.Model, "--data", s.TrainData, "--cache", c.trainCache, "--maps", "--size", size, "--interpolation", nearest},
			{"extract", "--model", s.Model, "--data", s.ValData, "--cache", c.valCache, "--maps", "--size", size, "--interpolation", nearest},
		}
	} else {
		split := base
		split.Cache, split.Val, split.Seed = filepath.Dir(c.trainCache), s.Val, s.Seed
		calls = []ExtractSettings{split}
		cmds = [][]string{{"extract", "--model", s.Model, "--data", s.TrainData, "--val", formatFloat(s.Val),
			"--seed", strconv.FormatUint(s.Seed, 10), "--cache", split.Cache, "--maps", "--size", size, "--interpolation", nearest}}
	}
	if s.Force {
		for i := range cmds {
			cmds[i] = append(cmds[i], "--force")
		}
	}
	return calls, cmds
}

// exportStage exports the run in dir as dir/classifier.onnx.
func (c *comparison) exportStage(name, dir, dep string) compareStage {
	out := filepath.Join(dir, classifierFile)
	return compareStage{name, [][]string{{"export", "--run", dir, "--out", out}}, out, []string{dep},
		func(ctx context.Context, p progress.Reporter) error {
			_, err := Export(ctx, ExportSettings{Run: dir, Out: out, Threads: c.s.Runtime.Threads}, p)
			return err
		}}
}
