package experiment

import (
	"fmt"
	"time"

	"github.com/tlearn/tlearn/internal/progress"
)

// prefixed puts prefix before every message of r (the phases keep their
// names), so that the runs of a sweep can be told apart.
type prefixed struct {
	progress.Reporter
	prefix string
}

func (p prefixed) Log(msg string) { p.Reporter.Log(p.prefix + msg) }

// formatSeconds formats a duration in seconds for a progress line, a
// table or report.md: milliseconds below one second, seconds with one
// decimal below 90 s, else hours, minutes and seconds ("2m5s").
func formatSeconds(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%.0f ms", 1000*s)
	case s < 90:
		return fmt.Sprintf("%.1f s", s)
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
