package progress

import (
	"slices"
	"testing"
)

func TestRecorder(t *testing.T) {
	t.Parallel()
	var r Recorder
	var rep Reporter = &r
	rep.Log("hello")
	rep.Start("extract", 10, 2)
	rep.Add(3)
	rep.Add(5)
	rep.Finish()
	want := []string{"log hello", "start extract 10 2", "add 3", "add 5", "finish"}
	if !slices.Equal(r.Events, want) {
		t.Fatalf("events %q, want %q", r.Events, want)
	}
	if r.Added != 8 {
		t.Fatalf("added %d, want 8", r.Added)
	}
	if got := r.Logs(); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("logs %q", got)
	}
}

func TestOrNop(t *testing.T) {
	t.Parallel()
	if _, ok := OrNop(nil).(Nop); !ok {
		t.Fatal("OrNop(nil) is not Nop")
	}
	r := &Recorder{}
	if OrNop(r) != Reporter(r) {
		t.Fatal("OrNop changed a non-nil reporter")
	}
}
