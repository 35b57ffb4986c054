package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// ErrNotEmpty is returned when an output folder already has content and
// overwriting was not asked for.
var ErrNotEmpty = errors.New("dataset: output folder is not empty")

// Progress receives the progress of long work (conversions, copies). Total
// is called once, before the first Add, with the number of items to
// expect. Calls come from one goroutine at a time.
type Progress interface {
	Total(n int)
	Add(n int)
}

// ConvertSettings controls ConvertCIFAR10 and ConvertMNIST. The zero value
// converts everything into an empty or new folder.
type ConvertSettings struct {
	// TrainPerClass and TestPerClass keep only the first N images of each
	// class (in the order of the source files); 0 keeps all.
	TrainPerClass int
	TestPerClass  int
	// Overwrite lets the output folder be non-empty: its train and test
	// folders are deleted first (other content is left alone).
	Overwrite bool
	// Progress, when set, counts images written.
	Progress Progress
}

// ConvertSummary says what a conversion wrote.
type ConvertSummary struct {
	Format  string   // "cifar10-python", "cifar10-binary" or "mnist-idx"
	Classes []string // class folder names, in label order
	Train   []int    // images written per class under train/
	Test    []int    // images written per class under test/
}

func (s ConvertSettings) check() error {
	if s.TrainPerClass < 0 || s.TestPerClass < 0 {
		return fmt.Errorf("dataset: images per class must be 0 (all) or more, got %d train, %d test", s.TrainPerClass, s.TestPerClass)
	}
	return nil
}

// prepareOut makes out or checks that it is empty; with overwrite it
// removes out/<part> for each part instead. It refuses an out that holds
// src, or lies inside it, so that removing parts never touches the input.
func PrepareOutput(src, out string, overwrite bool, parts ...string) error {
	if err := checkNotNested(src, out, parts); err != nil {
		return err
	}
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("dataset: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("dataset: output %s is a file, not a folder", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%w: %s", ErrNotEmpty, out)
	}
	for _, p := range parts {
		if err := os.RemoveAll(filepath.Join(out, p)); err != nil {
			return fmt.Errorf("dataset: clear %s: %w", filepath.Join(out, p), err)
		}
	}
	return nil
}

func checkNotNested(src, out string, parts []string) error {
	s, err1 := filepath.Abs(src)
	o, err2 := filepath.Abs(out)
	if err1 != nil || err2 != nil {
		return nil // nothing to compare; the later steps report the real problem
	}
	s, o = realPath(s), realPath(o)
	for _, p := range parts {
		if within(s, filepath.Join(o, p)) {
			return fmt.Errorf("dataset: input %s is inside the output %s, which would be replaced", src, filepath.Join(out, p))
		}
	}
	return nil
}

// Within reports whether path is dir or lies inside it, after resolving
// symbolic links.
func Within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	return err1 == nil && err2 == nil && within(realPath(p), realPath(d))
}

// realPath resolves symbolic links of the longest existing prefix of p.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if dir == p || dir == "" {
		return p
	}
	return filepath.Join(realPath(filepath.Clean(dir)), base)
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// syncProgress serialises calls from several goroutines.
type syncProgress struct {
	mu sync.Mutex
	p  Progress
}

func (s *syncProgress) total(n int) {
	if s.p != nil {
		s.p.Total(n)
	}
}

func (s *syncProgress) add(n int) {
	if s.p == nil {
		return
	}
	s.mu.Lock()
	s.p.Add(n)
	s.mu.Unlock()
}

// pngWriter encodes and writes PNG files atomically with a few goroutines:
// each file is synced before its rename, and the waits overlap.
type pngWriter struct {
	jobs     chan pngJob
	wg       sync.WaitGroup
	mu       sync.Mutex
	err      error
	failed   chan struct{}
	progress *syncProgress
}

type pngJob struct {
	path string
	img  image.Image
}

const pngWriters = 4

func newPNGWriter(p *syncProgress) *pngWriter {
	w := &pngWriter{jobs: make(chan pngJob, 2*pngWriters), failed: make(chan struct{}), progress: p}
	enc := png.Encoder{BufferPool: &pngPool{}}
	for range pngWriters {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			var buf bytes.Buffer
			for j := range w.jobs {
				if w.error() != nil {
					continue // drain
				}
				buf.Reset()
				err := enc.Encode(&buf, j.img)
				if err == nil {
					err = fsutil.WriteWith(j.path, 0o644, func(f io.Writer) error {
						_, err := f.Write(buf.Bytes())
						return err
					})
				}
				if err != nil {
					w.fail(fmt.Errorf("dataset: write %s: %w", j.path, err))
					continue
				}
				w.progress.add(1)
			}
		}()
	}
	return w
}

func (w *pngWriter) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *pngWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.failed)
	}
}

// write queues one image; it returns the first write error or ctx's error.
func (w *pngWriter) write(ctx context.Context, path string, img image.Image) error {
	select {
	case w.jobs <- pngJob{path, img}:
		return nil
	case <-w.failed:
		return w.error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close waits for the queued images and returns the first error.
func (w *pngWriter) close() error {
	close(w.jobs)
	w.wg.Wait()
	return w.error()
}

type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}
func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// classDirs creates out/<split>/<class> for classes with images.
func classDirs(out, split string, classes []string, counts []int) error {
	for c, n := range counts {
		if n == 0 {
			continue
		}
		if err := os.MkdirAll(filepath.Join(out, split, classes[c]), 0o755); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
	}
	return nil
}

// checkClassNames rejects class names that cannot be folder names.
func checkClassNames(where string, classes []string) error {
	seen := map[string]bool{}
	for i, c := range classes {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\\x00") || strings.HasPrefix(c, ".") {
			return fmt.Errorf("dataset: %s: class %d is named %q, which cannot be a folder name", where, i, c)
		}
		if seen[c] {
			return fmt.Errorf("dataset: %s: class name %q appears twice", where, c)
		}
		seen[c] = true
	}
	return nil
}
