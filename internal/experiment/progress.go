package experiment

import (
	"fmt"

	"github.com/tlearn/tlearn/internal/progress"
)

// prefixed puts prefix before every message of r (the phases keep their
// names), so that the runs of a sweep can be told apart.
type prefixed struct {
	progress.Reporter
	prefix string
}

func (p prefixed) Log(msg string) { p.Reporter.Log(p.prefix + msg) }

// formatSeconds formats a short duration for progress lines: milliseconds
// below one second.
func formatSeconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", 1000*s)
	}
	return fmt.Sprintf("%.1f s", s)
}
