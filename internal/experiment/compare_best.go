package experiment

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/progress"
)

// The "tlearn best" row's folders and stages: the recommended recipe
// (Recommended, or CompareSettings.Recipe) beside the tutorial's rows.
const (
	compareBestCacheDir = "cache-best"
	compareHeadBestDir  = "head-best"
	compareFTBestDir    = "finetune-best"

	stageExtractBest = "extract-best"
	stageHeadBest    = "head-best"
	stageFTBest      = "finetune-best"
	stageExportBest  = "export-best"
)

// checksCaches says whether a stage always runs: an extraction checks its
// caches against the images and the model, and returns at once when they
// are up to date.
func checksCaches(stage string) bool {
	return stage == stageExtract || stage == stageExtractBest || stage == stageExtractInt8
}

// recipe is the comparison's recipe of the "tlearn best" row.
func (c *comparison) recipe() Recipe {
	if c.s.Recipe != nil {
		return *c.s.Recipe
	}
	return Recommended
}

// bestStages plans the "tlearn best" row: an extraction of its own
// (views, the recipe's filter), the head on the holdout, block5
// fine-tuned from that head, the export of the fine-tuned run. Batch,
// seed and fine-tuning epochs are the comparison's, and so are the head's
// epochs unless the recipe sets them; learning rates, shuffling and the
// rest are the recipe's or the defaults, not the tutorial's.
func (c *comparison) bestStages() []compareStage {
	s, r := c.s, c.recipe()
	aug, _ := r.validate() // newComparison validated it
	dir := filepath.Join(s.Out, compareBestCacheDir)
	trainCache, valCache := filepath.Join(dir, "train"), filepath.Join(dir, "val")
	headDir, ftDir := filepath.Join(s.Out, compareHeadBestDir), filepath.Join(s.Out, compareFTBestDir)
	seed := strconv.FormatUint(s.Seed, 10)

	base := ExtractSettings{Model: s.Model, Data: s.TrainData, Maps: true, Size: c.size, Interpolation: r.Interpolation,
		Force: s.Force, Runtime: s.Runtime}
	flags := []string{"--maps", "--size", strconv.Itoa(c.size), "--interpolation", string(r.Interpolation)}
	if r.Views > 1 {
		base.Views, base.Augment, base.AugmentSeed = r.Views, aug, s.Seed
		flags = append(flags, "--views", strconv.Itoa(r.Views), "--augment", r.Augment, "--augment-seed", seed)
	}
	if s.Force {
		flags = append(flags, "--force")
	}
	var extracts []ExtractSettings
	var extractCmds [][]string
	if s.ValData != "" {
		train, val := base, base
		train.Cache = trainCache
		val.Data, val.Cache = s.ValData, valCache
		extracts = []ExtractSettings{train, val}
		extractCmds = [][]string{
			append([]string{"extract", "--model", s.Model, "--data", s.TrainData, "--cache", trainCache}, flags...),
			append([]string{"extract", "--model", s.Model, "--data", s.ValData, "--cache", valCache}, flags...),
		}
	} else {
		split := base
		split.Cache, split.Val, split.Seed = dir, s.Val, s.Seed
		extracts = []ExtractSettings{split}
		extractCmds = [][]string{append([]string{"extract", "--model", s.Model, "--data", s.TrainData, "--val", formatFloat(s.Val),
			"--seed", seed, "--cache", dir}, flags...)}
	}

	selection := []string{"--holdout", formatFloat(r.Holdout)}
	if r.SaveBest {
		selection = append(selection, "--save-best")
	}
	var tta []string
	if r.TTA {
		tta = []string{"--tta"}
	}
	selection = append(selection, tta...)
	ftSelection := selection
	if r.FineTuneLastEpoch {
		ftSelection = tta // every training image, the last epoch kept
	}
	headEpochs := s.Epochs
	if r.HeadEpochs > 0 {
		headEpochs = r.HeadEpochs
	}
	ftEpochs := s.FineTuneEpochs
	if r.FineTuneEpochs > 0 {
		ftEpochs = r.FineTuneEpochs
	}
	common := []string{"--batch", strconv.Itoa(s.Batch), "--seed", seed}
	train := []string{"train", "--train", trainCache, "--val", valCache, "--out", headDir, "--force",
		"--epochs", strconv.Itoa(headEpochs), "--lr", formatFloat(r.HeadLR)}
	if r.HeadEMA > 0 {
		train = append(train, "--ema", formatFloat(r.HeadEMA))
	}
	train = append(append(train, common...), selection...)
	ft := []string{"finetune", "--model", s.Model, "--train", trainCache, "--val", valCache, "--out", ftDir, "--force"}
	initHead, ftAfter := headDir, []string{stageExtractBest, stageHeadBest}
	if r.FreshHead {
		initHead, ftAfter = "", []string{stageExtractBest}
	} else {
		ft = append(ft, "--init-head", headDir)
	}
	ft = append(ft, "--epochs", strconv.Itoa(ftEpochs), "--lr", formatFloat(r.FineTuneLR), "--block5-lr", formatFloat(r.Block5LR))
	if r.FineTuneSchedule != head.ScheduleConstant {
		ft = append(ft, "--lr-schedule", r.FineTuneSchedule.String())
	}
	ft = append(append(ft, common...), ftSelection...)
	headSettings := func(epochs int, lr float64) head.Settings {
		return head.Settings{Epochs: epochs, LR: lr, Batch: s.Batch, Seed: s.Seed, SaveBest: r.SaveBest, Holdout: r.Holdout}
	}
	headOnly := headSettings(headEpochs, r.HeadLR)
	headOnly.EMA = r.HeadEMA
	ftSettings := headSettings(ftEpochs, r.FineTuneLR)
	ftSettings.Schedule = r.FineTuneSchedule
	if r.FineTuneLastEpoch {
		ftSettings.Holdout, ftSettings.SaveBest = 0, false
	}

	stages := []compareStage{
		{name: stageExtractBest, cmds: extractCmds, output: filepath.Join(valCache, cache.ManifestFile),
			run: c.extractRun(stageExtractBest, extracts)},
		{name: stageHeadBest, cmds: [][]string{train}, output: filepath.Join(headDir, rundir.MetricsFile), deps: []string{stageExtractBest},
			run: func(ctx context.Context, p progress.Reporter) error {
				_, err := Train(ctx, TrainSettings{Train: trainCache, Val: valCache, Out: headDir, Overwrite: true,
					Head: headOnly, TTA: r.TTA}, p)
				return err
			}},
		{name: stageFTBest, cmds: [][]string{ft}, output: filepath.Join(ftDir, rundir.MetricsFile), deps: ftAfter,
			run: func(ctx context.Context, p progress.Reporter) error {
				_, err := FineTune(ctx, FineTuneSettings{Model: s.Model, Train: trainCache, Val: valCache, Out: ftDir, Overwrite: true,
					InitHead: initHead, TTA: r.TTA,
					Tuning: finetune.Settings{Settings: ftSettings, Block5LR: r.Block5LR, Runtime: s.Runtime}}, p)
				return err
			}},
		c.exportStage(stageExportBest, ftDir, stageFTBest),
	}
	if r.FreshHead {
		stages = slices.Delete(stages, 1, 2) // no head-only stage
	}
	return stages
}
