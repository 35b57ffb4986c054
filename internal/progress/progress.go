package progress

import (
	"fmt"
	"sync"
)

// Reporter receives a long job's progress. A job reports one or more phases
// (Start … Add … Finish) and one-line messages (Log) between or inside them.
// Calls come from one goroutine at a time unless the job's documentation
// says otherwise.
type Reporter interface {
	// Log is a one-line message for the user: a CPU fallback, a resumed
	// job, a skipped file, a finished epoch.
	Log(msg string)
	// Start begins a phase named phase of total units (images, bytes,
	// training steps; total < 0 when unknown), done of which were
	// finished by an earlier, interrupted run.
	Start(phase string, total, done int)
	// Add reports n more units of the phase done.
	Add(n int)
	// Finish ends the phase begun last, complete or not.
	Finish()
}

// Nop ignores every report.
type Nop struct{}

// Log does nothing.
func (Nop) Log(string) {}

// Start does nothing.
func (Nop) Start(string, int, int) {}

// Add does nothing.
func (Nop) Add(int) {}

// Finish does nothing.
func (Nop) Finish() {}

// OrNop returns r, or Nop when r is nil, so that jobs can call their
// reporter without checking.
func OrNop(r Reporter) Reporter {
	if r == nil {
		return Nop{}
	}
	return r
}

// Recorder keeps every report as a line of text, for tests. It is safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	Events []string // "log MSG", "start PHASE TOTAL DONE", "add N", "finish"
	Added  int      // the sum of every Add
}

// Log records msg.
func (r *Recorder) Log(msg string) { r.record("log " + msg) }

// Start records the phase.
func (r *Recorder) Start(phase string, total, done int) {
	r.record(fmt.Sprintf("start %s %d %d", phase, total, done))
}

// Add records n.
func (r *Recorder) Add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Added += n
	r.Events = append(r.Events, fmt.Sprintf("add %d", n))
}

// Finish records the end of a phase.
func (r *Recorder) Finish() { r.record("finish") }

// Logs returns the messages given to Log, in order.
func (r *Recorder) Logs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.Events {
		if len(e) > 4 && e[:4] == "log " {
			out = append(out, e[4:])
		}
	}
	return out
}

func (r *Recorder) record(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events = append(r.Events, e)
}
