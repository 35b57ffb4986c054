package extractor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
)

// DefaultBatch is the batch size when Options.Batch is 0. On the 2-core
// development machine a bare session over the synthetic VGG16 at 224 ran
// fastest at 8 of 8, 16 and 32 in each of two runs of BenchmarkExtract
// (e.g. 6.3, 5.9 and 5.5 images/s): MLAS is compute-bound from batch 8 on,
// and larger batches only add memory, a larger chunk and more work lost to
// a kill.
const DefaultBatch = 8

// Options choose how an Extractor runs. The zero value means: device auto,
// one thread per core, the model's default input size, DefaultBatch, no
// maps, no progress reports.
type Options struct {
	ORT ortlib.Options
	// Size is the square input side; 0 means the model's DefaultSize. It
	// must be a multiple of the model's SizeMultiple.
	Size int
	// Batch is the number of images per ORT run; 0 means DefaultBatch.
	Batch int
	// Maps also stores block4_pool maps (float16) for fine-tuning; the
	// model must be VGG-shaped.
	Maps bool
	// Progress receives the reports of Open and Extract, from the
	// goroutine that called them: Log for a CPU fallback, a resumed cache
	// or a skipped image; the phases "check" and "extract", counting
	// images (an extract phase's done counts the rows of a resumed cache).
	Progress progress.Reporter
}

// Extractor owns one ORT session over a prepared model's extractor.onnx
// and the tensors it runs on. It is not safe for concurrent use.
type Extractor struct {
	dir    string // absolute path of the prepared model folder
	path   string // its extractor.onnx
	sha256 string // of extractor.onnx
	spec   *models.Spec
	size   int
	batch  int
	device ortlib.Device
	why    string // why auto fell back to CPU; "" otherwise
	prog   progress.Reporter

	session  *ort.AdvancedSession
	input    *ort.Tensor[float32]
	features *ort.Tensor[float32]
	maps     *ort.Tensor[float32] // nil without Options.Maps
	runOpts  *ort.RunOptions
}

// Open loads modelDir (a folder made by `tlearn models prepare`: spec.json
// and extractor.onnx) into a session. ORT must be initialized (ortlib.Init).
// The device actually used, and why auto fell back to CPU, are reported
// through o.Progress and by Device.
func Open(modelDir string, o Options) (*Extractor, error) {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return nil, fmt.Errorf("extractor: %w", err)
	}
	spec, err := models.ReadSpec(abs)
	if err != nil {
		return nil, fmt.Errorf("extractor: %w", err)
	}
	e := &Extractor{dir: abs, path: filepath.Join(abs, models.ExtractorFile), spec: spec, prog: progress.OrNop(o.Progress)}
	if e.size, err = inputSize(abs, spec, o.Size); err != nil {
		return nil, err
	}
	e.batch = o.Batch
	if e.batch == 0 {
		e.batch = DefaultBatch
	}
	if e.batch < 1 || e.batch > 4096 {
		return nil, fmt.Errorf("extractor: batch %d, want 1..4096", o.Batch)
	}
	if o.Maps && spec.Maps == nil {
		return nil, fmt.Errorf("extractor: %s has no maps output (the backbone is not VGG-shaped): fine-tuning needs a VGG16; extract without maps for head-only training", abs)
	}
	// Hash the bytes the session loads, so that the sha256 in the cache
	// names exactly the model that made it.
	onnx, sum, err := models.ReadExtractor(abs)
	if err != nil {
		return nil, fmt.Errorf("extractor: %w", err)
	}
	e.sha256 = sum
	if spec.ExtractorSHA256 == "" {
		e.prog.Log(models.NoSHA256Note(abs))
	}
	if err := e.newSession(onnx, o); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	if e.why != "" {
		e.prog.Log("extractor: " + e.why)
	}
	return e, nil
}

// SizeError is the error of Open and InputSize for an input side that the
// model does not accept.
type SizeError struct {
	Model string // the prepared model folder
	Size  int    // the side asked for
	Err   error  // why the model does not accept it
}

func (e *SizeError) Error() string { return "extractor: " + e.Model + ": " + e.Err.Error() }
func (e *SizeError) Unwrap() error { return e.Err }

// InputSize returns the input side that Open uses for a requested size
// (0: the model's default), or a *SizeError when the prepared model in
// modelDir does not accept it. It reads only spec.json, so that a caller
// can check a size before slower work.
func InputSize(modelDir string, size int) (int, error) {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return 0, fmt.Errorf("extractor: %w", err)
	}
	spec, err := models.ReadSpec(abs)
	if err != nil {
		return 0, fmt.Errorf("extractor: %w", err)
	}
	return inputSize(abs, spec, size)
}

// inputSize checks a requested input side against the constraints of the
// model in dir.
func inputSize(dir string, spec *models.Spec, want int) (int, error) {
	size := want
	if size == 0 {
		size = spec.DefaultSize
	}
	var why error
	switch m := spec.SizeMultiple; {
	case spec.FixedSize > 0 && size != spec.FixedSize:
		why = fmt.Errorf("the model takes only %d×%d inputs, not %d", spec.FixedSize, spec.FixedSize, size)
	case size <= 0 || size > 4096:
		why = fmt.Errorf("input size %d, want 1..4096", size)
	case m > 0 && size%m != 0:
		why = fmt.Errorf("input size %d is not a multiple of %d (the model halves it %d times); try %d", size, m, log2(m), max(m, (size+m/2)/m*m))
	case spec.Maps != nil && spec.Maps.Stride > 0 && size%spec.Maps.Stride != 0:
		why = fmt.Errorf("input size %d is not a multiple of the maps' stride %d", size, spec.Maps.Stride)
	}
	if why != nil {
		return 0, &SizeError{Model: dir, Size: want, Err: why}
	}
	return size, nil
}

func log2(n int) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}

func (e *Extractor) newSession(onnx []byte, o Options) error {
	so, used, why, err := ortlib.SessionOptions(o.ORT)
	if err != nil {
		return fmt.Errorf("extractor: %w", err)
	}
	defer so.Destroy()
	e.device, e.why = used, why

	b, s := int64(e.batch), int64(e.size)
	inShape := ort.NewShape(b, 3, s, s)
	if e.spec.Preprocessing.Layout == dataset.NHWC {
		inShape = ort.NewShape(b, s, s, 3)
	}
	if e.input, err = ort.NewEmptyTensor[float32](inShape); err != nil {
		return fmt.Errorf("extractor: input tensor: %w", err)
	}
	if e.features, err = ort.NewEmptyTensor[float32](ort.NewShape(b, int64(e.spec.Features.Dim))); err != nil {
		return fmt.Errorf("extractor: features tensor: %w", err)
	}
	outNames := []string{models.FeaturesOutput}
	outs := []ort.Value{e.features}
	if o.Maps {
		ms := e.spec.Maps
		side := s / int64(ms.Stride)
		if e.maps, err = ort.NewEmptyTensor[float32](ort.NewShape(b, int64(ms.Channels), side, side)); err != nil {
			return fmt.Errorf("extractor: maps tensor: %w", err)
		}
		outNames = append(outNames, models.MapsOutput)
		outs = append(outs, e.maps)
	}
	if e.runOpts, err = ort.NewRunOptions(); err != nil {
		return fmt.Errorf("extractor: run options: %w", err)
	}
	e.session, err = ort.NewAdvancedSessionWithONNXData(onnx, []string{e.spec.Input}, outNames, []ort.Value{e.input}, outs, so)
	if err != nil {
		return fmt.Errorf("extractor: load %s: %w", e.path, err)
	}
	return nil
}

// Close releases the session and tensors. It is idempotent and safe on a
// nil or half-built Extractor.
func (e *Extractor) Close() error {
	if e == nil {
		return nil
	}
	var errs []error
	// The session first: it refers to the tensors.
	if e.session != nil {
		errs = append(errs, e.session.Destroy())
		e.session = nil
	}
	for _, t := range []*ort.Tensor[float32]{e.input, e.features, e.maps} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	e.input, e.features, e.maps = nil, nil, nil
	if e.runOpts != nil {
		errs = append(errs, e.runOpts.Destroy())
		e.runOpts = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("extractor: close: %w", err)
	}
	return nil
}

// Device is where the session runs, and why auto fell back to CPU ("" when
// it did not).
func (e *Extractor) Device() (ortlib.Device, string) { return e.device, e.why }

// Spec is the prepared model's spec.
func (e *Extractor) Spec() *models.Spec { return e.spec }

// Size is the input side images are resized to.
func (e *Extractor) Size() int { return e.size }

// Batch is the number of images per run.
func (e *Extractor) Batch() int { return e.batch }

// ModelDir is the absolute path of the prepared model folder.
func (e *Extractor) ModelDir() string { return e.dir }

// ModelSHA256 is the sha256 of extractor.onnx as loaded.
func (e *Extractor) ModelSHA256() string { return e.sha256 }

// run runs the session on the input tensor. A cancelled ctx terminates a
// run in flight (ORT checks the flag between kernels).
func (e *Extractor) run(ctx context.Context) error {
	err := ortlib.RunWithContext(ctx, e.runOpts, func() error { return e.session.RunWithOptions(e.runOpts) })
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("extractor: run %s: %w", e.path, err)
	}
	return err
}
