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

// tutorialRun is one set of the tutorial's stages: over the model's
// caches, the head-only run, the fine-tuned run and their exports; the
// float32 model's (always) and the int8 model's (with Int8).
type tutorialRun struct {
	model, cacheDir, headDir, ftDir                  string
	extract, head, finetune, exportHead, exportTuned string // stage names
	extractDeps                                      []string
}

// stages plans the tutorial's five stages, with Int8 the six of the int8
// rows among them (quantize and extract-int8 after the float32
// extraction, so that both passes run under a like load; each int8 run
// after its float32 twin), and unless NoBest the "tlearn best" row's four:
// each with the tlearn commands that do the same (recorded, and compared
// with an earlier call's to decide on reuse) and the library calls that
// do it.
func (c *comparison) stages() []compareStage {
	s := c.s
	f32 := c.tutorialStages(tutorialRun{
		model: s.Model, cacheDir: filepath.Join(s.Out, compareCacheDir),
		headDir: filepath.Join(s.Out, compareHeadDir), ftDir: filepath.Join(s.Out, compareFTDir),
		extract: stageExtract, head: stageHead, finetune: stageFineTune, exportHead: stageExportHead, exportTuned: stageExportFineTune,
	})
	stages := f32
	if s.Int8 {
		i8 := c.tutorialStages(tutorialRun{
			model: c.int8Model(), cacheDir: filepath.Join(s.Out, compareCacheInt8Dir),
			headDir: filepath.Join(s.Out, compareHeadInt8Dir), ftDir: filepath.Join(s.Out, compareFTInt8Dir),
			extract: stageExtractInt8, head: stageHeadInt8, finetune: stageFTInt8, exportHead: stageExportHeadInt8, exportTuned: stageExportFTInt8,
			extractDeps: []string{stageQuantize},
		})
		stages = []compareStage{f32[0], c.quantizeStage(), i8[0], f32[1], i8[1], f32[2], i8[2], f32[3], f32[4], i8[3], i8[4]}
	}
	if s.NoBest {
		return stages
	}
	return append(stages, c.bestStages()...)
}

// tutorialStages plans one set of the tutorial's five stages.
func (c *comparison) tutorialStages(t tutorialRun) []compareStage {
	s := c.s
	trainCache, valCache := filepath.Join(t.cacheDir, "train"), filepath.Join(t.cacheDir, "val")
	common := []string{"--lr", formatFloat(s.LR), "--batch", strconv.Itoa(s.Batch), "--seed", strconv.FormatUint(s.Seed, 10)}
	if s.NoShuffle {
		common = append(common, "--no-shuffle")
	}
	train := append([]string{"train", "--train", trainCache, "--val", valCache, "--out", t.headDir, "--force",
		"--epochs", strconv.Itoa(s.Epochs)}, common...)
	finetuneArgs := append([]string{"finetune", "--model", t.model, "--train", trainCache, "--val", valCache, "--out", t.ftDir, "--force",
		"--epochs", strconv.Itoa(s.FineTuneEpochs)}, common...)
	extracts, extractCmds := c.extractions(t.model, t.cacheDir)
	return []compareStage{
		{name: t.extract, cmds: extractCmds, output: filepath.Join(valCache, cache.ManifestFile), deps: t.extractDeps,
			run: c.extractRun(t.extract, extracts)},
		{name: t.head, cmds: [][]string{train}, output: filepath.Join(t.headDir, rundir.MetricsFile), deps: []string{t.extract},
			run: func(ctx context.Context, p progress.Reporter) error {
				_, err := Train(ctx, TrainSettings{Train: trainCache, Val: valCache, Out: t.headDir, Overwrite: true,
					Head: head.Settings{Epochs: s.Epochs, LR: s.LR, Batch: s.Batch, Seed: s.Seed, NoShuffle: s.NoShuffle}}, p)
				return err
			}},
		{name: t.finetune, cmds: [][]string{finetuneArgs}, output: filepath.Join(t.ftDir, rundir.MetricsFile), deps: []string{t.extract},
			run: func(ctx context.Context, p progress.Reporter) error {
				_, err := FineTune(ctx, FineTuneSettings{Model: t.model, Train: trainCache, Val: valCache, Out: t.ftDir, Overwrite: true,
					Tuning: finetune.Settings{
						Settings: head.Settings{Epochs: s.FineTuneEpochs, LR: s.LR, Batch: s.Batch, Seed: s.Seed, NoShuffle: s.NoShuffle},
						Runtime:  s.Runtime,
					}}, p)
				return err
			}},
		c.exportStage(t.exportHead, t.headDir, t.head),
		c.exportStage(t.exportTuned, t.ftDir, t.finetune),
	}
}

// extractRun runs an extraction stage's calls and counts, in c.computed,
// the images they ran through the model.
func (c *comparison) extractRun(stage string, extracts []ExtractSettings) func(context.Context, progress.Reporter) error {
	return func(ctx context.Context, p progress.Reporter) error {
		for _, e := range extracts {
			res, err := Extract(ctx, e, p)
			for _, r := range res {
				c.computed[stage] += r.Computed
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// extractions are the calls and commands of an extraction stage of the
// tutorial's rows with model into cacheDir/train and cacheDir/val: one
// per image folder, or one split of TrainData.
func (c *comparison) extractions(model, cacheDir string) ([]ExtractSettings, [][]string) {
	s := c.s
	trainCache, valCache := filepath.Join(cacheDir, "train"), filepath.Join(cacheDir, "val")
	size, nearest := strconv.Itoa(c.size), string(dataset.Nearest)
	// Nearest, as the tutorial's load_img, whatever the extract command's
	// default: both rows reproduce the tutorial.
	base := ExtractSettings{Model: model, Data: s.TrainData, Maps: true, Size: c.size, Interpolation: dataset.Nearest, Force: s.Force, Runtime: s.Runtime}
	var calls []ExtractSettings
	var cmds [][]string
	if s.ValData != "" {
		train, val := base, base
		train.Cache = trainCache
		val.Data, val.Cache = s.ValData, valCache
		calls = []ExtractSettings{train, val}
		cmds = [][]string{
			{"extract", "--model", model, "--data", s.TrainData, "--cache", trainCache, "--maps", "--size", size, "--interpolation", nearest},
			{"extract", "--model", model, "--data", s.ValData, "--cache", valCache, "--maps", "--size", size, "--interpolation", nearest},
		}
	} else {
		split := base
		split.Cache, split.Val, split.Seed = cacheDir, s.Val, s.Seed
		calls = []ExtractSettings{split}
		cmds = [][]string{{"extract", "--model", model, "--data", s.TrainData, "--val", formatFloat(s.Val),
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
	return compareStage{name: name, cmds: [][]string{{"export", "--run", dir, "--out", out}}, output: out, deps: []string{dep},
		run: func(ctx context.Context, p progress.Reporter) error {
			_, err := Export(ctx, ExportSettings{Run: dir, Out: out, Threads: c.s.Runtime.Threads}, p)
			return err
		}}
}
