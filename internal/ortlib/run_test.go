package ortlib

import (
	"context"
	"errors"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// TestRunWithContext: a context cancelled before the call never reaches
// run. The terminate flag that a cancellation sets comes from another
// goroutine (context.AfterFunc), so relying on it alone let a short run
// finish first and succeed: before this check existed, the fine-tune
// evaluation with an already cancelled context returned a report instead
// of context.Canceled in 43 of 1,000 runs of TestEvaluateFineTunedErrors
// (now head/finetune's TestEvaluateErrors). A cancellation during the run
// wins over its result, and the options stay usable afterwards.
func TestRunWithContext(t *testing.T) {
	t.Parallel()
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	opts, err := ort.NewRunOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 1000 {
		calls := 0
		err := RunWithContext(cancelled, opts, func() error { calls++; return nil })
		if !errors.Is(err, context.Canceled) || calls != 0 {
			t.Fatalf("cancelled before: err %v after %d runs, want context.Canceled and none", err, calls)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	if err := RunWithContext(ctx, opts, func() error { cancel(); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during the run: %v, want context.Canceled", err)
	}
	boom := errors.New("boom")
	if err := RunWithContext(context.Background(), opts, func() error { return boom }); err != boom {
		t.Errorf("failed run: %v, want its error", err)
	}
	if err := RunWithContext(context.Background(), opts, func() error { return nil }); err != nil {
		t.Errorf("a later run: %v", err)
	}
}
