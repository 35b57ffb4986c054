package run

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// runFileSeeds writes a small trained run with Write and returns its file
// name's bytes: the fuzzers' seeds come from the writer they must accept.
func runFileSeeds(f *testing.F, name string) []byte {
	f.Helper()
	dir := filepath.Join(f.TempDir(), "run")
	if err := Write(dir, trainedRun(f)); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzReadSettings feeds outside bytes to the settings.json readers: an
// accepted file passes its checks and reads back the same once written.
func FuzzReadSettings(f *testing.F) {
	valid := runFileSeeds(f, SettingsFile)
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"head"`), []byte(`"finetune"`), 1))
	f.Add([]byte(`{"mode":"head","model_dir":"m","classes":["a"],"epochs":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, SettingsFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if info, err := ReadInfo(dir); err == nil {
			if err := info.Check(); err != nil {
				t.Fatalf("ReadInfo accepted %+v: %v", info, err)
			}
		}
		s, err := ReadHeadSettings(dir)
		if err != nil {
			return
		}
		if s.Mode != ModeHead || s.Settings.Validate() != nil {
			t.Fatalf("ReadHeadSettings accepted %+v", s)
		}
		if err := WriteJSON(filepath.Join(dir, SettingsFile), s); err != nil {
			t.Fatal(err)
		}
		s2, err := ReadHeadSettings(dir)
		if err != nil || !slices.Equal(s.Classes, s2.Classes) || s.Settings.Hidden != s2.Settings.Hidden {
			t.Fatalf("written settings do not read back: %v", err)
		}
	})
}

// FuzzReadMetrics feeds outside bytes to ReadMetrics: what it returns
// reads back unchanged once written (the shift of old epoch numbers is
// applied once).
func FuzzReadMetrics(f *testing.F) {
	valid := runFileSeeds(f, MetricsFile)
	f.Add(valid)
	f.Add([]byte(`{"final":{"epoch":2},"best":{"epoch":1},"epochs_run":3,"weights_epoch":1}`))
	f.Add([]byte(`{"validation":{"classes":["a"],"confusion":[[1]]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, MetricsFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadMetrics(dir)
		if err != nil {
			return
		}
		first, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(filepath.Join(dir, MetricsFile), m); err != nil {
			t.Fatal(err)
		}
		m2, err := ReadMetrics(dir)
		if err != nil {
			t.Fatalf("written metrics do not read back: %v", err)
		}
		if again, _ := json.Marshal(m2); !bytes.Equal(first, again) {
			t.Fatalf("metrics changed on a second read:\n%s\n%s", first, again)
		}
	})
}

// FuzzReadHistory feeds outside bytes to the history.csv reader: an
// accepted history is written and read back the same.
func FuzzReadHistory(f *testing.F) {
	valid := runFileSeeds(f, HistoryFile)
	f.Add(valid)
	f.Add([]byte("val_loss,epoch,loss,accuracy,val_accuracy,lr\n0.5,0,1,0.5,0.5,0.001\n"))
	f.Add([]byte("epoch,accuracy,loss,val_accuracy,val_loss\n1,NaN,Inf,-0,1e-300\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readHistoryCSV(bytes.NewReader(b))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := writeHistoryCSV(&buf, h); err != nil {
			t.Fatal(err)
		}
		h2, err := readHistoryCSV(&buf)
		if err != nil || len(h2) != len(h) {
			t.Fatalf("written history does not read back: %v", err)
		}
		same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
		for i, e := range h {
			g := h2[i]
			if e.Epoch != g.Epoch || !same(e.Accuracy, g.Accuracy) || !same(e.Loss, g.Loss) ||
				!same(e.ValAccuracy, g.ValAccuracy) || !same(e.ValLoss, g.ValLoss) {
				t.Fatalf("epoch %d: %+v read back as %+v", i, e, g)
			}
		}
	})
}
