package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
)

// The holdout flags of train (and its sweeps) and finetune.
const (
	flagHoldout     = "holdout"
	flagHoldoutSeed = "holdout-seed"
)

func holdoutFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: flagHoldout, Usage: "set aside this fraction `F` (0 < F < 1) of --train, per class, to pick the best epoch, stop early and rank a sweep on; --val is then only reported"},
		&cli.Uint64Flag{Name: flagHoldoutSeed, Usage: "`SEED` of the holdout's choice of images (apart from --seed, so that runs with other seeds select on the same images)"},
	}
}

// readHoldout sets the holdout of s from the flags: --holdout, when given,
// must lie strictly between 0 and 1.
func readHoldout(c *cli.Context, s *head.Settings) error {
	if !c.IsSet(flagHoldout) {
		if c.IsSet(flagHoldoutSeed) {
			return usageError{fmt.Errorf("--%s needs --%s", flagHoldoutSeed, flagHoldout)}
		}
		return nil
	}
	f := c.Float64(flagHoldout)
	if !(f > 0 && f < 1) {
		return usageError{fmt.Errorf("--%s must lie strictly between 0 and 1 (a fraction of --train), got %g", flagHoldout, f)}
	}
	s.Holdout, s.HoldoutSeed = f, c.Uint64(flagHoldoutSeed)
	return nil
}

// holdoutError names --holdout in the library's refusal of a holdout that
// leaves a class without training or holdout images.
func holdoutError(err error) error {
	if errors.Is(err, head.ErrHoldout) {
		return usageError{fmt.Errorf("--%s: %w (lower --%s, or add images to that class)", flagHoldout, err, flagHoldout)}
	}
	return err
}

// selectionNote is the one note for settings that pick the epoch (or a
// sweep's winner) on --val, the images whose accuracy is then reported;
// "" when they do not.
func selectionNote(s head.Settings, sweep bool) string {
	if s.Holdout > 0 {
		return ""
	}
	var what string
	switch {
	case sweep:
		what = "the sweep ranks its runs"
	case s.SaveBest && s.EarlyStop > 0:
		what = "--save-best and --early-stop select the epoch"
	case s.SaveBest:
		what = "--save-best selects the epoch"
	case s.EarlyStop > 0:
		what = "--early-stop selects the epoch"
	default:
		return ""
	}
	return fmt.Sprintf("note: %s on --val, the images whose accuracy it then reports, so that accuracy is optimistic; --%s F selects on a part of --train instead", what, flagHoldout)
}
