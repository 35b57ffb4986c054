package run

import (
	"path/filepath"
	"testing"
)

// v1 holds run folders written by tlearn before epochs were counted from 1
// (scripts/gen-fixtures.sh); their history.csv and metrics.json count from
// 0, and the readers shift them.
var v1 = filepath.Join("..", "..", "testdata", "v1")

func TestReadOldRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		run                    string
		epochs                 int
		best, weights, bestIdx int
		firstValLoss           float64
	}{
		{"run-head", 3, 1, 3, 0, 2.607428524802655},
		{"run-ft", 2, 1, 2, 0, 2.589771546041102},
	} {
		t.Run(tc.run, func(t *testing.T) {
			dir := filepath.Join(v1, tc.run)
			h, err := ReadHistory(filepath.Join(dir, HistoryFile))
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != tc.epochs || h[0].ValLoss != tc.firstValLoss {
				t.Fatalf("history %+v", h)
			}
			for i, e := range h {
				if e.Epoch != i+1 {
					t.Errorf("line %d has epoch %d, want %d", i+1, e.Epoch, i+1)
				}
			}
			if h.Best() != tc.bestIdx {
				t.Errorf("best index %d, want %d", h.Best(), tc.bestIdx)
			}
			m, err := ReadMetrics(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.EpochsRun != tc.epochs || m.Final.Epoch != tc.epochs || m.Best.Epoch != tc.best || m.WeightsEpoch != tc.weights {
				t.Errorf("metrics: %d epochs run, final %d, best %d, weights of %d; want %d, %d, %d, %d",
					m.EpochsRun, m.Final.Epoch, m.Best.Epoch, m.WeightsEpoch, tc.epochs, tc.epochs, tc.best, tc.weights)
			}
			if _, err := ReadInfo(dir); err != nil {
				t.Error(err)
			}
			if _, err := LoadWeights(filepath.Join(dir, WeightsFile)); err != nil {
				t.Error(err)
			}
		})
	}
}
