package head

import (
	"context"
	"math"
	"testing"
)

// The head's optimizer steps take LR × the schedule's factor: the full
// rate at the first step, annealed along half a cosine to the last step of
// the run (Epochs × batches per epoch), and the constant schedule keeps it.
func TestScheduleSetsEveryStepsRate(t *testing.T) {
	train, val := blobs(50, 6, 3, 2, 1), blobs(20, 6, 3, 2, 2)
	for _, sch := range []Schedule{ScheduleConstant, ScheduleCosine} {
		s := Settings{Hidden: 8, LR: 1e-2, Batch: 8, Epochs: 3, Schedule: sch}.Resolve()
		rows := make([]int32, train.Len())
		for i := range rows {
			rows[i] = int32(i)
		}
		m := newHeadModel(train, val, rows, s)
		total := 3 * 7 // 50 rows in batches of 8
		if m.o.totalSteps != total {
			t.Fatalf("%s: %d steps in the run, want %d", sch, m.o.totalSteps, total)
		}
		for step := 1; step <= total; step++ {
			if _, _, err := m.Step(context.Background(), rows[:8]); err != nil {
				t.Fatal(err)
			}
			want := 1e-2
			if sch == ScheduleCosine {
				want *= 0.5 * (1 + math.Cos(math.Pi*float64(step-1)/float64(total)))
			}
			if math.Abs(m.o.lr-want) > 1e-15 {
				t.Fatalf("%s: step %d took lr %g, want %g", sch, step, m.o.lr, want)
			}
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for v, want := range map[string]Schedule{"constant": ScheduleConstant, "": ScheduleConstant, "cosine": ScheduleCosine} {
		if got, err := ParseSchedule(v); err != nil || got != want {
			t.Errorf("ParseSchedule(%q) = %q, %v; want %q", v, got, err, want)
		}
	}
	if _, err := ParseSchedule("step"); err == nil {
		t.Error(`ParseSchedule("step") succeeded`)
	}
	if err := (Settings{Schedule: "linear"}).Validate(); err == nil {
		t.Error(`a "linear" schedule validated`)
	}
}
