package main

import (
	"errors"
	"fmt"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/head/finetune"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// commonAdvice is what the user can do about an error that any command may
// meet, in terms of tlearn's commands: the libraries' errors say what is
// wrong, never which command or flag to use. Advice that depends on one
// command's flags is added by that command (extractAdvice, dataOutError,
// withPrepareAdvice, withFetchAdvice).
var commonAdvice = []struct {
	err    error
	advice string
}{
	{cache.ErrCorrupt, "rebuild it with tlearn extract --force"},
	{cache.ErrIncomplete, "run the same tlearn extract command again to resume it"},
	{cache.ErrNotCache, "make one with tlearn extract"},
	{models.ErrNotPrepared, "prepare one with `tlearn models prepare`"},
	{rundir.ErrChanged, "train the run again"},
	{finetune.ErrChanged, "delete the checkpoint to fine-tune from the start"},
	{extractor.ErrNonFinite, "check the model (`tlearn models info`) and prepare it again with `tlearn models prepare`"},
	{models.ErrChanged, "prepare the model again with `tlearn models prepare`"},
	{fsutil.ErrLocked, "wait for that command to finish, or stop it, then run this one again"},
	{classifier.ErrNotClassifier, "make one with `tlearn export`"},
	{ortlib.ErrNotFound, "run `make setup` in the tlearn checkout (it installs " + ortlib.LibName +
		" from the npm package onnxruntime-node), or point --ort-lib or $" + ortlib.EnvLibrary +
		" at a libonnxruntime.so (a GPU build enables --device cuda)"},
}

// withAdvice adds the first matching advice of commonAdvice to err, or
// the command that finishes an incomplete dataset.
func withAdvice(err error) error {
	var ie *dataset.IncompleteError
	if errors.As(err, &ie) {
		if ie.Command != "" {
			return fmt.Errorf("%w (run `%s` again to restart it, or use another dataset)", err, ie.Command)
		}
		return fmt.Errorf("%w (run the tlearn data command that made it again to restart it, or use another dataset)", err)
	}
	for _, a := range commonAdvice {
		if errors.Is(err, a.err) {
			return fmt.Errorf("%w (%s)", err, a.advice)
		}
	}
	return err
}

// withMapsAdvice tells how to make the cache with block4_pool maps that a
// fine-tuned run reads (evaluate and finetune meet *experiment.NoMapsError).
func withMapsAdvice(err error) error {
	return fmt.Errorf("%w: extract it with --%s", err, flagExtractMaps)
}

// outputError makes the refusals of an output that would overwrite one of
// the command's inputs, or replace a folder that tlearn did not make, usage
// errors (exit 2) that name the flag to change. Other errors pass through.
func outputError(err error, flag string) error {
	if errors.Is(err, fsutil.ErrOverlap) || errors.Is(err, fsutil.ErrForeign) {
		return usageError{fmt.Errorf("%w (choose another --%s)", err, flag)}
	}
	return err
}
