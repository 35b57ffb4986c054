package slurmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Task is one record of `scontrol show job`: a job, an array task, or the
// pending rest of an array (Index -1, Indices a range).
type Task struct {
	JobID      string // the record's own id
	ArrayJobID string // the array's id; "" for a job that is not an array
	Index      int    // the array index; -1 for a plain job or a record of several pending tasks
	Indices    string // ArrayTaskId as printed: "3", or "0-3", "1,3" for several pending tasks
	State      string // JobState: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
	Reason     string // why it waits or how it ended: Dependency, DependencyNeverSatisfied, NonZeroExitCode, ...
	ExitCode   int    // the batch script's exit status
	Signal     int    // the signal that ended it, 0 if none
}

// Done reports whether the task has ended (any state but PENDING,
// RUNNING, CONFIGURING, COMPLETING, SUSPENDED, REQUEUED, RESIZING).
func (k Task) Done() bool {
	switch k.State {
	case "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT":
		return false
	}
	return true
}

func (k Task) String() string {
	id := k.JobID
	if k.ArrayJobID != "" {
		id = k.ArrayJobID + "_" + k.Indices
	}
	return fmt.Sprintf("%s %s (%s) exit %d:%d", id, k.State, k.Reason, k.ExitCode, k.Signal)
}

// Tasks reads the records of job id (all its array tasks for an array)
// with `scontrol show job -o`, sorted by index as scontrol prints them.
func (c *Cluster) Tasks(t testing.TB, id string) []Task {
	t.Helper()
	tasks, err := c.tasks(id)
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

func (c *Cluster) tasks(id string) ([]Task, error) {
	cmd := c.Command("scontrol", "show", "job", "-o", id)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); ok && strings.Contains(errs.String(), "Invalid job id") {
			return nil, fmt.Errorf("%w: %s", ErrNoJob, id)
		}
		return nil, fmt.Errorf("slurmtest: scontrol show job %s: %v\n%s", id, err, errs.String())
	}
	var tasks []Task
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		k, err := parseRecord(line)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, k)
	}
	return tasks, nil
}

// parseRecord reads the fields of one `scontrol show job -o` line that
// Task holds. Values with spaces (a JobName, a Command) only ever split
// into words that are not these fields.
func parseRecord(line string) (Task, error) {
	k := Task{Index: -1}
	seen := map[string]bool{}
	for _, f := range strings.Fields(line) {
		key, v, ok := strings.Cut(f, "=")
		if !ok || seen[key] {
			continue
		}
		seen[key] = true
		switch key {
		case "JobId":
			k.JobID = v
		case "ArrayJobId":
			k.ArrayJobID = v
		case "ArrayTaskId":
			k.Indices = v
			if i, err := strconv.Atoi(v); err == nil {
				k.Index = i
			}
		case "JobState":
			k.State = v
		case "Reason":
			k.Reason = v
		case "ExitCode":
			code, sig, _ := strings.Cut(v, ":")
			k.ExitCode, _ = strconv.Atoi(code)
			k.Signal, _ = strconv.Atoi(sig)
		}
	}
	if k.JobID == "" || k.State == "" {
		return k, fmt.Errorf("slurmtest: scontrol printed a record without JobId or JobState: %q", line)
	}
	return k, nil
}

// WaitFor polls job id's records every 100 ms until ok holds of them and
// returns them; after timeout it fails t with the records and the end of
// slurmctld's log.
func (c *Cluster) WaitFor(t testing.TB, id string, timeout time.Duration, what string, ok func([]Task) bool) []Task {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tasks := c.Tasks(t, id)
		if ok(tasks) {
			return tasks
		}
		if time.Now().After(deadline) {
			t.Fatalf("slurmtest: job %s: not %s after %v: %v\n%s", id, what, timeout, tasks, c.daemons[1].logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Wait waits until every task of job id has ended and returns them.
func (c *Cluster) Wait(t testing.TB, id string, timeout time.Duration) []Task {
	t.Helper()
	return c.WaitFor(t, id, timeout, "finished", func(tasks []Task) bool {
		for _, k := range tasks {
			if !k.Done() {
				return false
			}
		}
		return len(tasks) > 0
	})
}

// ByIndex maps array indices to their tasks (a record of several pending
// tasks has none).
func ByIndex(tasks []Task) map[int]Task {
	m := map[int]Task{}
	for _, k := range tasks {
		if k.Index >= 0 {
			m[k.Index] = k
		}
	}
	return m
}

// CancelTask cancels task index of array job id as a user would (scancel:
// SIGTERM, then SIGKILL after KillWait); index -1 cancels a plain job.
func (c *Cluster) CancelTask(t testing.TB, id string, index int) {
	t.Helper()
	c.Run(t, "scancel", taskID(id, index))
}

// TaskPIDs are the pids of the processes of task index of array job id
// (index -1: of plain job id) on this node: the batch script and what it
// started, found by the job's variables in their environment.
func (c *Cluster) TaskPIDs(id string, index int) []int {
	want := [][]byte{[]byte("SLURM_JOB_ID=" + id + "\x00")}
	if index >= 0 {
		want = [][]byte{[]byte("SLURM_ARRAY_JOB_ID=" + id + "\x00"), []byte("SLURM_ARRAY_TASK_ID=" + strconv.Itoa(index) + "\x00")}
	}
	var pids []int
	for _, pid := range c.strays() {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err == nil && containsAll(env, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillTask kills every process of task index of array job id (index -1:
// of plain job id) with SIGKILL, by pid, as the kernel's out-of-memory
// killer or a lost node would: no chance to clean up. `scancel
// --signal=KILL` cannot do this: slurmctld takes SIGKILL as a cancel,
// which sends SIGTERM first. It returns the pids it killed; it fails t when
// it finds none (the task is not running on this node).
func (c *Cluster) KillTask(t testing.TB, id string, index int) []int {
	t.Helper()
	var killed []int
	for _, pid := range c.TaskPIDs(id, index) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	if len(killed) == 0 {
		t.Fatalf("slurmtest: no process of job %s found to kill", taskID(id, index))
	}
	return killed
}

func containsAll(env []byte, want [][]byte) bool {
	for _, w := range want {
		if !bytes.HasPrefix(env, w) && !bytes.Contains(env, append([]byte{0}, w...)) {
			return false
		}
	}
	return true
}

func taskID(id string, index int) string {
	if index < 0 {
		return id
	}
	return id + "_" + strconv.Itoa(index)
}
