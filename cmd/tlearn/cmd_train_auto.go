package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/experiment"
	"github.com/tlearn/tlearn/internal/progress"
)

// autoAction runs train --auto: the search on a holdout, the winner
// retrained on all of --train. s are the training flags; the searched
// ones may not be given.
func autoAction(c *cli.Context, s head.Settings, sweep bool, p progress.Reporter) error {
	if sweep {
		return usageError{fmt.Errorf("--%s and --%s exclude each other: --%s runs its own search", flagTrainAuto, flagTrainSweep, flagTrainAuto)}
	}
	for _, f := range []string{flagTrainLR, flagTrainHidden, flagTrainDropout, flagTrainL2, flagTrainSaveBest} {
		if c.IsSet(f) {
			return usageError{fmt.Errorf("--%s chooses --%s itself; leave it out (--%s is the most epochs a candidate runs, --%s its patience)",
				flagTrainAuto, f, flagTrainEpochs, flagTrainEarlyStop)}
		}
	}
	res, err := experiment.Auto(c.Context, experiment.AutoSettings{
		Train: c.String(flagTrainTrain), Val: c.String(flagTrainVal), Out: c.String(flagTrainOut),
		Base: s, Overwrite: c.Bool(flagTrainForce), TTA: c.Bool(flagTTA),
	}, p)
	if err != nil {
		return trainError(err)
	}
	if err := res.WriteTable(c.App.Writer); err != nil {
		return err
	}
	m := res.Run.Metrics
	fmt.Fprintf(stderr(c), "auto: chose %s\nauto: wrote %s, retrained on all of --%s for %d epochs: val_accuracy %.4f (reported only; nothing was chosen on --%s)\n",
		res.Why, res.Run.Dir, flagTrainTrain, res.Retrained.Epochs, m.Final.ValAccuracy, flagTrainVal)
	return nil
}
