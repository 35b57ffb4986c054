package extractor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/internal/extractortest"
	"github.com/tlearn/tlearn/internal/ortlib"
)

func TestMain(m *testing.M) {
	code := m.Run()
	extractortest.RemoveTinyModel()
	os.Exit(code)
}

func openSource(t testing.TB, dir string) *dataset.Source {
	t.Helper()
	src, err := dataset.Open(dir, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// openExtractor opens the tiny model at extractortest.Size.
func openExtractor(t testing.TB, o Options) *Extractor {
	t.Helper()
	dir := extractortest.TinyModel(t)
	if o.Size == 0 {
		o.Size = extractortest.Size
	}
	if o.ORT.Device == "" {
		o.ORT.Device = ortlib.DeviceCPU
	}
	if o.ORT.Threads == 0 {
		o.ORT.Threads = 1
	}
	e, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// recorder is a Progress that keeps what it is told; cancel, when set, is
// called once Add has counted cancelAt items of the extract phase.
type recorder struct {
	mu       sync.Mutex
	logs     []string
	phases   []string
	phase    string
	added    int // in the extract phase
	cancelAt int
	onCancel func()
}

func (r *recorder) Log(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, msg)
}

func (r *recorder) Start(phase string, total, done int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, fmt.Sprintf("%s %d/%d", phase, done, total))
	r.phase = phase
}

func (r *recorder) Add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.phase != "extract" {
		return
	}
	r.added += n
	if r.onCancel != nil && r.added >= r.cancelAt {
		r.onCancel()
		r.onCancel = nil
	}
}

func (r *recorder) Finish() {}

func (r *recorder) logged(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.logs {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// extract runs Extract on all of dir's images into cacheDir.
func extract(t testing.TB, e *Extractor, dataDir, cacheDir string, s Settings) (*Result, error) {
	t.Helper()
	return e.Extract(context.Background(), openSource(t, dataDir), nil, cacheDir, s)
}

// sameFiles fails unless the array files of two caches are byte-identical.
func sameFiles(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, n := range names {
		x, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between %s and %s", n, a, b)
		}
	}
}
