//go:build unix

package experiment

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tlearn/tlearn/head"
	rundir "github.com/tlearn/tlearn/head/run"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// killedWriterEnv makes the test binary a writer of the run folder the
// variable names: it takes the folder's lock, starts the folder as train
// does (rundir.Create's hidden .NAME.partial-*) with a file in it, says
// "writing" and waits to be killed.
const killedWriterEnv = "TLEARN_EXPERIMENT_KILLED_WRITER"

func TestKilledWriterHelperProcess(t *testing.T) {
	out := os.Getenv(killedWriterEnv)
	if out == "" {
		t.Skip("only a helper of TestRerunAfterSIGKILL")
	}
	if _, err := fsutil.LockOutput(out); err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	rd, err := rundir.Create(out, false)
	if err == nil {
		err = fsutil.WriteFile(rd.Path(rundir.WeightsFile), make([]byte, 1<<20), 0o644)
	}
	if err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("writing\n")
	// Not select{}: with no timer or other goroutine the runtime calls that
	// a deadlock and exits, dropping the lock before the test looks at it.
	for {
		time.Sleep(time.Hour)
	}
}

// TestRerunAfterSIGKILL kills a writer of a run folder with SIGKILL in the
// middle of writing it and checks that the next train into the folder
// gets the lock and removes the killed writer's .NAME.partial-* folder.
func TestRerunAfterSIGKILL(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	train, val := cachePair(t, filepath.Join(root, "cache"), []string{"cat", "dog"})
	out := filepath.Join(root, "run")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterHelperProcess$")
	cmd.Env = append(os.Environ(), killedWriterEnv+"="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "writing\n" {
		t.Fatalf("writer: %q, %v", line, err)
	}
	partials, _ := filepath.Glob(filepath.Join(root, ".run.partial-*"))
	if len(partials) != 1 {
		t.Fatalf("the writer's partial folders: %q, want one", partials)
	}
	s := TrainSettings{Train: train, Val: val, Out: out, Head: head.Settings{Hidden: 4, Epochs: 1}}
	if _, err := Train(context.Background(), s, nil); !errors.Is(err, fsutil.ErrLocked) {
		t.Fatalf("train while the writer lives: %v, want fsutil.ErrLocked", err)
	}
	if _, err := os.Stat(partials[0]); err != nil {
		t.Fatalf("the live writer's folder: %v, want it kept", err)
	}

	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := Train(context.Background(), s, nil); err != nil {
		t.Fatalf("train after the writer was killed: %v", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "cache" || names[1] != "run" {
		t.Errorf("%s holds %q, want cache and run only", root, names)
	}
}
