//go:build unix

package dataset

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process' user + system CPU time. On this project's shared
// machines a benchmark's wall time grows with the other jobs' load; its
// CPU time per op much less so.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start (a cpuTime).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
}
