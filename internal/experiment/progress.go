package experiment

import (
	"github.com/tlearn/tlearn/internal/progress"
)

// prefixed puts prefix before every message of r (the phases keep their
// names), so that the runs of a sweep can be told apart.
type prefixed struct {
	progress.Reporter
	prefix string
}

func (p prefixed) Log(msg string) { p.Reporter.Log(p.prefix + msg) }
