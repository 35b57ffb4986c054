package finetune

import (
	"context"
	"testing"

	"github.com/tlearn/tlearn/head"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
)

// BenchmarkFineTuneStep runs FineTune end to end at VGG16's size (512
// channels, 14×14 maps, the tutorial's head, batch 32) on random maps and
// reports the train steps' images/s (Go's batch filling included), the
// figure to compare with ../shared/peers/torch_finetune.py.
func BenchmarkFineTuneStep(b *testing.B) {
	ortlibtest.Init(b)
	fx := newFTFixture(1, 512, 14, 10, 128, 32)
	s := Settings{Settings: head.Settings{Epochs: 1}, Runtime: ortlib.Options{Device: ortlib.DeviceCPU}}
	var ips float64
	for b.Loop() {
		res, err := FineTune(context.Background(), fx.train, fx.val, fx.start, s, nil)
		if err != nil {
			b.Fatal(err)
		}
		ips = res.ImagesPerSecond
	}
	b.ReportMetric(ips, "train-images/s")
}
