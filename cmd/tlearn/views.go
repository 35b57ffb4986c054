package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// flagTTA is the test-time augmentation flag of train, finetune and
// evaluate.
const flagTTA = "tta"

// ttaFlag averages the probabilities of a cache's views (extract --views)
// where a command validates or evaluates.
func ttaFlag(where string) cli.Flag {
	return &cli.BoolFlag{Name: flagTTA, Usage: fmt.Sprintf("test-time augmentation: %s on the mean probabilities of the cache's views (extract --views), not on the plain images alone", where)}
}

// scheduleFlag is --lr-schedule of train and finetune.
func scheduleFlag() cli.Flag {
	return &cli.StringFlag{Name: flagLRSchedule, Value: "constant", Usage: "learning-rate schedule: constant, or cosine (annealed to zero over --epochs, step by step)"}
}
