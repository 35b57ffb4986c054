package head

import (
	"fmt"
	"runtime"
	"testing"
)

// TestTallyMemoryLinear: counting and reporting 10,000 one-image classes
// allocates memory linear in the class count, not a k×k matrix (800 MB of
// ints at 10,000 classes, the 6 GB that train once reached). Not
// parallel, so that no other test's allocations are counted.
func TestTallyMemoryLinear(t *testing.T) {
	const k = 10000
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("c%05d", i)
	}
	probs := make([]float32, k)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tally := NewTally(classes, 5)
	for i := range k {
		clear(probs)
		probs[(i+1)%k] = 1
		tally.AddProbs(i, probs)
	}
	r := tally.Report()
	runtime.ReadMemStats(&after)
	if got, most := after.TotalAlloc-before.TotalAlloc, uint64(64<<20); got > most {
		t.Errorf("a tally and report of %d classes allocated %d MB, want at most %d MB", k, got>>20, most>>20)
	}
	if len(r.PerClass) != k || r.Confusion != nil || len(r.TopConfusions) != MaxTopConfusions {
		t.Errorf("report of %d classes: %d per-class rows, confusion %v, %d top confusions", k, len(r.PerClass), r.Confusion != nil, len(r.TopConfusions))
	}
}
