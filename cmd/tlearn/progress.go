package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/tlearn/tlearn/internal/progress"
)

// plainLineEvery is how often progress prints a line when stderr is not a
// terminal (a log file, CI): often enough to show life, rarely enough to read.
const plainLineEvery = 10 * time.Second

// countBar shows progress over a known number of items: on a terminal a bar
// with the rate and ETA, otherwise a plain line when a phase starts and then
// every plainLineEvery; nothing at all on io.Discard (--quiet). Every
// counting progress display of the CLI (data, extract, classify) is one.
type countBar struct {
	w        io.Writer
	terminal bool
	unit     string

	bar         *progressbar.ProgressBar
	label       string
	total, done int // done counts earlier runs' items too
	fresh       int // items of this run
	start, last time.Time
}

func newCountBar(w io.Writer, unit string) *countBar {
	p := &countBar{w: w, unit: unit}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.terminal = true
	}
	return p
}

// Start begins a phase of total items of which doneBefore were finished by
// an earlier run; the bar counts only this run's, so that its rate and ETA
// are not inflated by them.
func (p *countBar) Start(label string, total, doneBefore int) {
	p.Finish()
	p.label, p.total, p.done, p.fresh = label, total, doneBefore, 0
	p.start = time.Now()
	p.last = p.start
	if p.w == io.Discard {
		return
	}
	if !p.terminal {
		// A training epoch's phase ends with its epoch line: a start line
		// per epoch would double the log.
		if !strings.HasPrefix(label, "epoch ") {
			fmt.Fprintf(p.w, "%s: %d %s to go\n", label, total-doneBefore, p.unit)
		}
		return
	}
	p.bar = progressbar.NewOptions(total-doneBefore,
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(p.unit),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionClearOnFinish(),
	)
}

// Add counts n finished items.
func (p *countBar) Add(n int) {
	p.fresh += n
	if p.bar != nil {
		p.bar.Add(n)
		return
	}
	if now := time.Now(); !p.terminal && p.w != io.Discard && now.Sub(p.last) >= plainLineEvery {
		p.last = now
		secs := now.Sub(p.start).Seconds()
		rate := float64(p.fresh) / max(secs, 1e-9)
		have := p.done + p.fresh
		fmt.Fprintf(p.w, "%s: %d/%d %s (%.0f%%), %.1f %s/s, ETA %s\n",
			p.label, have, p.total, p.unit, 100*float64(have)/float64(max(p.total, 1)), rate, p.unit, eta(float64(p.total-have), rate))
	}
}

// Clear takes the bar off the line so that a message can be printed.
func (p *countBar) Clear() {
	if p.bar != nil {
		p.bar.Clear()
	}
}

// Finish ends the phase and leaves the line clean.
func (p *countBar) Finish() {
	if p.bar != nil {
		if !p.bar.IsFinished() {
			p.bar.Exit()
		}
		p.bar.Clear()
		p.bar = nil
	}
}

// Log prints a one-line message on a line of its own, taking the bar off
// the line first (it comes back with the next Add).
func (p *countBar) Log(msg string) {
	p.Clear()
	if p.w != io.Discard {
		fmt.Fprintln(p.w, strings.TrimRight(msg, "\n"))
	}
}

// eta is the time that remaining units take at rate units per second,
// in whole seconds; "?" without a rate. Both plain-line displays (countBar
// and fetchLines) print it.
func eta(remaining, rate float64) string {
	if !(rate > 0) {
		return "?"
	}
	return (time.Duration(remaining/rate) * time.Second).Round(time.Second).String()
}

// newReporter prints a library job's reports on w: its phases as a bar or
// plain lines, its messages one per line. Every command that runs a job of
// internal/experiment hands it one.
func newReporter(w io.Writer) *countBar { return newCountBar(w, "images") }

var _ progress.Reporter = (*countBar)(nil)
