package ortlib

import (
	"context"

	ort "github.com/yalue/onnxruntime_go"
)

// RunWithContext calls run, which must run a session with opts, so that a
// cancelled ctx terminates the run in flight (ORT checks the flag between
// kernels). It returns ctx's error when ctx was cancelled before or during
// the run, and run's error otherwise. opts stays reusable: a terminated run
// unsets the flag again before returning.
func RunWithContext(ctx context.Context, opts *ort.RunOptions, run func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		opts.Terminate()
		close(fired)
	})
	err := run()
	if !stop() {
		<-fired
		opts.UnsetTerminate()
		return ctx.Err()
	}
	return err
}
