package main

import (
	"errors"
	"fmt"

	"github.com/tlearn/tlearn/internal/cache"
)

// advise adds to an error the tlearn command that mends it: the libraries
// name no commands or flags. Errors that only one command meets get their
// advice in that command's file (extractAdvice, dataOutError); these come
// from every command that reads a cache.
func advise(err error) error {
	switch {
	case errors.Is(err, cache.ErrCorrupt):
		return fmt.Errorf("%w (rebuild it with tlearn extract --force)", err)
	case errors.Is(err, cache.ErrIncomplete):
		return fmt.Errorf("%w (run the same tlearn extract command again to resume it)", err)
	case errors.Is(err, cache.ErrNotCache):
		return fmt.Errorf("%w (make one with tlearn extract)", err)
	}
	return err
}
