package slurmtest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// jobWithin bounds every wait for a job of these tests: each lasts well
// under a second, and the scheduler starts one within about a second.
const jobWithin = 60 * time.Second

// TestArrayAndDependencies runs an array of four tasks on a real cluster,
// one of which fails, then shows why the runbook's merge job waits with
// afterany: a job after the array with afterany runs once every task has
// ended, failed or not, while one with afterok stays pending forever
// (DependencyNeverSatisfied) until cancelled.
func TestArrayAndDependencies(t *testing.T) {
	t.Parallel()
	c := Start(t)
	t.Logf("cluster of %d CPUs on %s started in %v", c.CPUs, c.Node, c.Started.Round(time.Millisecond))
	dir := t.TempDir()
	script := writeScript(t, dir, "task.sh", `#!/bin/bash
echo "$SLURM_ARRAY_TASK_ID" > "`+dir+`/seen.$SLURM_ARRAY_TASK_ID"
# Task 2 fails, as a shard whose machine broke.
[ "$SLURM_ARRAY_TASK_ID" != 2 ] || exit 3
`)
	after := writeScript(t, dir, "after.sh", "#!/bin/bash\necho ran > "+dir+"/after\n")

	array := c.Submit(t, "--array=0-3", "--output="+dir+"/%A_%a.out", script)
	anyJob := c.Submit(t, "--dependency=afterany:"+array, "--output=/dev/null", after)
	okJob := c.Submit(t, "--dependency=afterok:"+array, "--output=/dev/null", after)

	tasks := ByIndex(c.Wait(t, array, jobWithin))
	for i := range 4 {
		k, ok := tasks[i]
		if !ok {
			t.Fatalf("no record of task %d: %v", i, tasks)
		}
		wantState, wantExit := "COMPLETED", 0
		if i == 2 {
			wantState, wantExit = "FAILED", 3
		}
		if k.State != wantState || k.ExitCode != wantExit {
			t.Errorf("task %d: %v, want %s exit %d", i, k, wantState, wantExit)
		}
		b, err := os.ReadFile(filepath.Join(dir, "seen."+strconv.Itoa(i)))
		if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(i) {
			t.Errorf("task %d did not write its index: %q, %v", i, b, err)
		}
	}
	if k := c.Wait(t, anyJob, jobWithin)[0]; k.State != "COMPLETED" {
		t.Errorf("the afterany job: %v, want COMPLETED", k)
	}
	if _, err := os.Stat(filepath.Join(dir, "after")); err != nil {
		t.Errorf("the afterany job did not run: %v", err)
	}
	k := c.WaitFor(t, okJob, jobWithin, "pending with DependencyNeverSatisfied", func(ks []Task) bool {
		return len(ks) == 1 && ks[0].State == "PENDING" && ks[0].Reason == "DependencyNeverSatisfied"
	})[0]
	t.Logf("the afterok job after a failed task: %v", k)
	c.CancelTask(t, okJob, -1)
	if k := c.Wait(t, okJob, jobWithin)[0]; k.State != "CANCELLED" {
		t.Errorf("the cancelled afterok job: %v", k)
	}
}

// TestKillAndStop kills a running array task with SIGKILL (KillTask, as
// the sharded caching test does) and then checks that the cluster's
// cleanup leaves no daemon, slurmstepd or job process behind, with a job
// still running at the end. The second cluster, started while the first
// holds 16817 and 16818, takes other ports.
func TestKillAndStop(t *testing.T) {
	t.Parallel()
	c := Start(t)
	dir := t.TempDir()
	sleeper := writeScript(t, dir, "sleep.sh", "#!/bin/bash\necho started > "+dir+"/started.$SLURM_ARRAY_TASK_ID\nexec sleep 300\n")
	var inner *Cluster
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		inner = Start(t)
		if inner.Conf == c.Conf {
			t.Fatal("two clusters share a folder")
		}
		array := inner.Submit(t, "--array=0-1", "--output=/dev/null", sleeper)
		inner.WaitFor(t, array, jobWithin, "running", func(ks []Task) bool {
			running := 0
			for _, k := range ks {
				if k.State == "RUNNING" {
					running++
				}
			}
			return running == 2
		})
		waitFile(t, filepath.Join(dir, "started.0"))
		waitFile(t, filepath.Join(dir, "started.1"))
		killed := inner.KillTask(t, array, 0)
		k := inner.WaitFor(t, array, jobWithin, "task 0 ended", func(ks []Task) bool { return ByIndex(ks)[0].Done() })
		if k0 := ByIndex(k)[0]; k0.State != "FAILED" || k0.Signal != int(syscall.SIGKILL) {
			t.Errorf("task 0 after SIGKILL of pids %v: %v, want FAILED by signal 9", killed, k0)
		}
		for _, d := range inner.daemons {
			pids = append(pids, d.cmd.Process.Pid)
		}
		if len(inner.strays()) == 0 {
			t.Fatal("no process of the running task 1 found by its SLURM_CONF")
		}
		pids = append(pids, inner.strays()...)
	})
	if left := inner.strays(); len(left) > 0 {
		t.Errorf("processes left after the cluster stopped: %v", left)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
			t.Errorf("pid %d still runs after the cluster stopped", pid)
		}
	}
	if _, err := os.Stat(inner.Dir); !os.IsNotExist(err) {
		t.Errorf("the cluster's folder %s is still there: %v", inner.Dir, err)
	}
	// The first cluster still works.
	if out := c.Run(t, "sinfo", "-h", "-o", "%T"); strings.TrimSpace(out) != "idle" {
		t.Errorf("sinfo of the first cluster: %q", out)
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Task
	}{
		{"JobId=8 ArrayJobId=5 ArrayTaskId=2 JobName=a b.sh UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 Command=/x y",
			Task{JobID: "8", ArrayJobID: "5", Index: 2, Indices: "2", State: "FAILED", Reason: "NonZeroExitCode", ExitCode: 3}},
		{"JobId=5 ArrayJobId=5 ArrayTaskId=1-3,5 JobState=PENDING Reason=Resources ExitCode=0:0",
			Task{JobID: "5", ArrayJobID: "5", Index: -1, Indices: "1-3,5", State: "PENDING", Reason: "Resources"}},
		{"JobId=9 JobName=after JobState=CANCELLED Reason=DependencyNeverSatisfied ExitCode=0:9",
			Task{JobID: "9", Index: -1, State: "CANCELLED", Reason: "DependencyNeverSatisfied", Signal: 9}},
	} {
		got, err := parseRecord(tc.line)
		if err != nil || got != tc.want {
			t.Errorf("parseRecord(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	if _, err := parseRecord("slurm_load_jobs error: Invalid job id specified"); err == nil {
		t.Error("a line without JobId parsed")
	}
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(jobWithin)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written after %v", p, jobWithin)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie reports whether pid has exited and waits for a parent that is
// not the test (slurmstepd's children are reparented).
func zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && slices.Contains([]string{"Z", "X"}, f[0])
}

// BenchmarkStart starts and stops a cluster; start-ms is Start alone, from
// the first daemon to the node reported idle.
func BenchmarkStart(b *testing.B) {
	var started time.Duration
	n := 0
	for b.Loop() {
		c := Start(b)
		started += c.Started
		n++
		c.Stop(b)
	}
	b.ReportMetric(float64(started.Milliseconds())/float64(n), "start-ms")
}
