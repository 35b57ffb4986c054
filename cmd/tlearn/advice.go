package main

import (
	"errors"
	"fmt"

	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// withAdvice adds what the user can do about an error that any command
// may meet, in terms of tlearn's commands: the libraries' errors say what
// is wrong, never which command or flag to use. Advice that depends on one
// command's flags is added by that command (withPrepareAdvice,
// withFetchAdvice).
func withAdvice(err error) error {
	for _, a := range []struct {
		err    error
		advice string
	}{
		{models.ErrNotPrepared, "prepare one with `tlearn models prepare`"},
		{classifier.ErrNotClassifier, "make one with `tlearn export`"},
	} {
		if errors.Is(err, a.err) {
			return fmt.Errorf("%w (%s)", err, a.advice)
		}
	}
	return err
}
