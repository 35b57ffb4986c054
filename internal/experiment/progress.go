package experiment

import (
	"fmt"
	"strconv"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/progress"
)

// userEpoch is the number a person sees for head's epoch index: head
// counts epochs from 0 (as Keras' CSVLogger), tlearn shows them from 1
// everywhere (console, sweep.csv, the sweep table, report.md).
func userEpoch(index int) int { return index + 1 }

// epochLine is the one line printed after each epoch, for head runs and
// fine-tuning runs alike.
func epochLine(e head.Epoch, epochs int) string {
	width := len(strconv.Itoa(epochs))
	return fmt.Sprintf("epoch %*d/%d  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f  %s",
		width, userEpoch(e.Epoch), epochs, e.Loss, e.Accuracy, e.ValLoss, e.ValAccuracy, formatSeconds(e.Seconds))
}

// formatSeconds formats a short duration for progress lines: milliseconds
// below one second.
func formatSeconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", 1000*s)
	}
	return fmt.Sprintf("%.1f s", s)
}

// epochReporter adapts a progress.Reporter to head's Progress (and Noter):
// the steps of each epoch become a phase "epoch N/E" counted in examples,
// and each finished epoch one Log line (epochLine).
type epochReporter struct {
	r      progress.Reporter
	n      int // training examples per epoch
	batch  int
	epochs int
	open   int // head's index of the epoch whose phase is open, or -1
	sent   int // examples reported in that phase
}

func newEpochReporter(r progress.Reporter, n, batch, epochs int) *epochReporter {
	return &epochReporter{r: progress.OrNop(r), n: n, batch: batch, epochs: epochs, open: -1}
}

// Step is called after each training step: done of total steps of epoch.
func (p *epochReporter) Step(epoch, done, total int) {
	if epoch != p.open {
		p.finish()
		p.open, p.sent = epoch, 0
		p.r.Start(fmt.Sprintf("epoch %d/%d", userEpoch(epoch), p.epochs), p.n, 0)
	}
	now := min(done*p.batch, p.n)
	if done == total {
		now = p.n
	}
	p.r.Add(now - p.sent)
	p.sent = now
}

// EpochDone ends the epoch's phase and logs its line.
func (p *epochReporter) EpochDone(e head.Epoch, epochs int) {
	p.finish()
	p.r.Log(epochLine(e, epochs))
}

// Note passes FineTune's messages (a resumed checkpoint, a device
// fallback) on.
func (p *epochReporter) Note(msg string) { p.r.Log(msg) }

func (p *epochReporter) finish() {
	if p.open >= 0 {
		p.r.Finish()
		p.open = -1
	}
}

var (
	_ head.Progress = (*epochReporter)(nil)
	_ head.Noter    = (*epochReporter)(nil)
)

// prefixed puts prefix before every message of r (the phases keep their
// names), so that the runs of a sweep can be told apart.
type prefixed struct {
	progress.Reporter
	prefix string
}

func (p prefixed) Log(msg string) { p.Reporter.Log(p.prefix + msg) }
