package fsutil

import (
	"fmt"
	"time"
)

// FormatSeconds formats a duration for people, as every tlearn progress
// line and report prints one: milliseconds below a second, seconds with
// one decimal below 90 s, then minutes and seconds ("1m35s"). It sits
// beside FormatBytes so that each is defined once.
func FormatSeconds(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%.0f ms", 1000*s)
	case s < 90:
		return fmt.Sprintf("%.1f s", s)
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
