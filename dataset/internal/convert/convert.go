package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// Check rejects settings that no converter can follow; pkg prefixes the
// error ("cifar", "mnist").
func Check(pkg string, s dataset.ConvertSettings) error {
	if s.TrainPerClass < 0 || s.TestPerClass < 0 {
		return fmt.Errorf("%s: images per class must be 0 (all) or more, got %d train, %d test", pkg, s.TrainPerClass, s.TestPerClass)
	}
	return nil
}

// Begin takes the output's lock (see lockOutput) and prepares out for a
// conversion of src into its train and test folders (dataset.PrepareOutput
// with Origin's record), as both converters start. restarted says that out
// was an incomplete dataset of the same conversion, now started over. The
// caller defers the lock's Unlock.
func Begin(pkg, src, out string, s dataset.ConvertSettings) (lock *fsutil.Lock, restarted bool, err error) {
	if lock, err = lockOutput(pkg, out, s.Progress); err != nil {
		return nil, false, err
	}
	if restarted, err = dataset.PrepareOutput(src, out, s.Overwrite, origin(pkg, src, s), "train", "test"); err != nil {
		lock.Unlock()
		return nil, false, err
	}
	return lock, restarted, nil
}

// origin is what a converter records in the dataset's marker: pkg, the
// absolute source path and the settings that choose the images, so that
// only a rerun that would write the same images restarts an incomplete
// output without overwrite.
func origin(pkg, src string, s dataset.ConvertSettings) dataset.Origin {
	if abs, err := filepath.Abs(src); err == nil {
		src = abs
	}
	return dataset.Origin{
		Made:    fmt.Sprintf("%s %s, train per class %s, test per class %s", pkg, src, perClass(s.TrainPerClass), perClass(s.TestPerClass)),
		Command: s.Command,
	}
}

func perClass(n int) string {
	if n == 0 {
		return "all"
	}
	return strconv.Itoa(n)
}

// ClassDirs creates out/<split>/<class> for the classes with images.
func ClassDirs(pkg, out, split string, classes []string, counts []int) error {
	for c, n := range counts {
		if n == 0 {
			continue
		}
		if err := os.MkdirAll(filepath.Join(out, split, classes[c]), 0o755); err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
	}
	return nil
}

// Truncated turns the EOF errors of a short read into one that says the
// file is truncated.
func Truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("file is truncated: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// writers is the number of goroutines of a PNGWriter: encoding overlaps
// the fsync before each rename.
const writers = 4

// PNGWriter encodes and writes PNG files atomically with a few goroutines:
// each file is synced before its rename, and the waits overlap. Every file
// written counts one on the reporter, whose Add calls it serialises.
type PNGWriter struct {
	pkg    string
	jobs   chan pngJob
	wg     sync.WaitGroup
	mu     sync.Mutex // guards err and the reporter
	err    error
	failed chan struct{}
	prog   progress.Reporter
}

type pngJob struct {
	path string
	img  image.Image
}

// NewPNGWriter starts the writer's goroutines; Close stops them. pkg
// prefixes its errors; r (nil: silent) gets one Add per file written.
func NewPNGWriter(pkg string, r progress.Reporter) *PNGWriter {
	w := &PNGWriter{pkg: pkg, jobs: make(chan pngJob, 2*writers), failed: make(chan struct{}), prog: progress.OrNop(r)}
	enc := png.Encoder{BufferPool: &pngPool{}}
	for range writers {
		w.wg.Add(1)
		go w.loop(&enc)
	}
	return w
}

func (w *PNGWriter) loop(enc *png.Encoder) {
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
			w.fail(fmt.Errorf("%s: write %s: %w", w.pkg, j.path, err))
			continue
		}
		w.mu.Lock()
		w.prog.Add(1)
		w.mu.Unlock()
	}
}

func (w *PNGWriter) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *PNGWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.failed)
	}
}

// Write queues one image; it returns the first write error or ctx's error.
func (w *PNGWriter) Write(ctx context.Context, path string, img image.Image) error {
	select {
	case w.jobs <- pngJob{path, img}:
		return nil
	case <-w.failed:
		return w.error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close waits for the queued images and returns the first error.
func (w *PNGWriter) Close() error {
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

// lockOutput takes the one-writer lock of the dataset folder out (a
// *fsutil.LockedError naming the holder when another process writes it)
// and removes the temporary of a MarkerFile that a killed earlier writer
// left in out: a kill between making out and renaming the first marker
// leaves only that file, which would make out a non-empty folder without
// a marker that no rerun could restart. pkg prefixes the error. The
// caller defers Unlock.
func lockOutput(pkg, out string, p progress.Reporter) (*fsutil.Lock, error) {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	l, err := fsutil.LockOutput(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	removed, err := l.RemoveStale(filepath.Join(out, dataset.MarkerFile))
	for _, r := range removed {
		progress.OrNop(p).Log("removed " + r + ", left by an interrupted earlier run")
	}
	if err != nil {
		l.Unlock()
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	return l, nil
}
