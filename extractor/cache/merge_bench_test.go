package cache

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchShards writes n shards of a cache of rows × dim random float32
// features quickly (straight into the arrays, chunk checksums computed as
// the Writer would), for the merge benchmark.
func benchShards(b *testing.B, dir string, rows, dim, batch, n int) []Shard {
	b.Helper()
	whole := testManifest(rows, dim, ChunkSize(rows, batch), nil)
	r := rand.New(rand.NewPCG(1, 2))
	var shards []Shard
	for i := range n {
		start, end := ShardRange(rows, batch, i, n)
		m := *whole
		m.Items = whole.Items[start:end]
		m.N = end - start
		m.ChunkSize = ChunkSize(m.N, batch)
		m.Shard = &ShardRef{Index: i, Count: n, Start: start, End: end, Total: rows, Batch: batch, Listing: "l"}
		d := filepath.Join(dir, ShardName(i, n))
		w, err := Create(d, &m)
		if err != nil {
			b.Fatal(err)
		}
		f := make([]float32, m.ChunkSize*dim)
		l := make([]int32, m.ChunkSize)
		for _, c := range m.Pending() {
			k := c.End - c.Start
			for j := range f[:k*dim] {
				f[j] = math.Float32frombits(r.Uint32() &^ (1 << 30)) // exponent below 255: no Inf or NaN
			}
			for j := range k {
				l[j] = int32(m.Items[c.Start+j].Label)
			}
			if err := w.Write(c.Start, f[:k*dim], l[:k], nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		sm, err := ReadManifest(d)
		if err != nil {
			b.Fatal(err)
		}
		shards = append(shards, Shard{Dir: d, Manifest: sm})
	}
	return shards
}

// BenchmarkMerge merges 16 shards of a cache of 200,000 rows × 512 float32
// features (410 MB) and, in the same run, copies the same files with cp
// (GNU cp uses copy_file_range) and with cp followed by sync of the copies:
// merge checks every shard chunk's CRC-32C, computes the merged chunks'
// and fsyncs before its manifest, so cp+sync is the like-for-like figure.
// It reports the MB/s of each, merge's ratio to both (the median of the
// iterations') and merge/cp-cpu, cp's CPU time over merge's (user and
// system: what each costs without the waits, steadier than the clock on a
// loaded machine, but blind to the writeback that cp leaves to the
// kernel's threads). The shards are in the page cache (written just
// before), as they are on a cluster's file server after the tasks wrote
// them. TLEARN_BENCH_DIR puts everything in a folder on another file
// system, e.g. /dev/shm: on a tmpfs fsync costs nothing, so the ratio
// there is merge's own work (reading, checking, writing, the manifest)
// against cp's copy.
func BenchmarkMerge(b *testing.B) {
	if _, err := exec.LookPath("cp"); err != nil {
		b.Skip("no cp:", err)
	}
	const rows, dim, batch, n = 200_000, 512, 64, 16
	dir := b.TempDir()
	if d := os.Getenv("TLEARN_BENCH_DIR"); d != "" {
		// Another filesystem than the temporary folder's (e.g. a tmpfs,
		// /dev/shm, where fsync costs nothing and both tools are bound by
		// memory): a fresh folder in it, removed at the end.
		var err error
		if dir, err = os.MkdirTemp(d, "tlearn-bench-merge-"); err != nil {
			b.Fatalf("TLEARN_BENCH_DIR: %v", err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	shards := benchShards(b, filepath.Join(dir, "shards"), rows, dim, batch, n)
	m, err := Merged(shards)
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	var bytes int64
	for _, s := range shards {
		for _, name := range []string{FeaturesFile, LabelsFile} {
			p := filepath.Join(s.Dir, name)
			st, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			files = append(files, p)
			bytes += st.Size()
		}
	}
	// Each phase starts after a sync (not timed), so that neither pays for
	// the other's writeback; the ratios are per iteration, and the median
	// is reported, since a shared machine's disk and cores vary from one
	// second to the next.
	syncAll := func() {
		if o, err := exec.Command("sync").CombinedOutput(); err != nil {
			b.Fatalf("sync: %v\n%s", err, o)
		}
	}
	// CPU time (user and system, of this process and of the cp
	// processes) varies less with the load than the time on the clock:
	// its ratio is what each tool costs, without the waits.
	cpuSelf := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var tMerge, tCp, tCpSync, cpuMerge, cpuCp time.Duration
	var vsCp, vsCpSync []float64
	out := filepath.Join(dir, "merged")
	cpOut := filepath.Join(dir, "cp")
	b.SetBytes(bytes)
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(out)
		os.RemoveAll(cpOut)
		if err := os.MkdirAll(cpOut, 0o755); err != nil {
			b.Fatal(err)
		}
		mm := *m
		syncAll()
		b.StartTimer()
		c0, t0 := cpuSelf(), time.Now()
		if err := Merge(context.Background(), out, &mm, shards); err != nil {
			b.Fatal(err)
		}
		dm := time.Since(t0)
		cpuMerge += cpuSelf() - c0
		b.StopTimer()
		var copies []string
		for i, f := range files {
			copies = append(copies, filepath.Join(cpOut, ShardName(i/2, n)+"-"+filepath.Base(f)))
		}
		syncAll()
		t0 = time.Now()
		for i, f := range files {
			cmd := exec.Command("cp", f, copies[i])
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("cp: %v\n%s", err, o)
			}
			cpuCp += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		dc := time.Since(t0)
		if o, err := exec.Command("sync", copies...).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v\n%s", err, o)
		}
		dcs := time.Since(t0)
		tMerge, tCp, tCpSync = tMerge+dm, tCp+dc, tCpSync+dcs
		vsCp, vsCpSync = append(vsCp, dc.Seconds()/dm.Seconds()), append(vsCpSync, dcs.Seconds()/dm.Seconds())
		b.StartTimer()
	}
	var each []string
	for i := range vsCp {
		each = append(each, fmt.Sprintf("%.2f/%.2f", vsCp[i], vsCpSync[i]))
	}
	la, _ := os.ReadFile("/proc/loadavg")
	b.Logf("%s: merge/cp and merge/(cp+sync) per iteration %s; load average %s", dir, strings.Join(each, " "), strings.Join(strings.Fields(string(la))[:min(3, len(strings.Fields(string(la))))], " "))
	mb := float64(bytes) / 1e6 * float64(b.N)
	b.ReportMetric(mb/tMerge.Seconds(), "merge-MB/s")
	b.ReportMetric(mb/tCp.Seconds(), "cp-MB/s")
	b.ReportMetric(mb/tCpSync.Seconds(), "cp+sync-MB/s")
	b.ReportMetric(median(vsCp), "merge/cp")
	b.ReportMetric(median(vsCpSync), "merge/cp+sync")
	b.ReportMetric(cpuCp.Seconds()/cpuMerge.Seconds(), "merge/cp-cpu")
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
