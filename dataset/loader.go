package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Defaults of LoaderSettings.
const (
	DefaultSize    = 224
	DefaultBatch   = 32
	DefaultWorkers = 2
	// maxSize bounds Size so that one batch buffer stays allocatable.
	maxSize = 8192
)

// ErrLoaderClosed is returned by Next after Close.
var ErrLoaderClosed = errors.New("dataset: loader closed")

// LoaderSettings configures a Loader. The zero value means the defaults.
type LoaderSettings struct {
	// Size is the width and height images are resized to; 0 means
	// DefaultSize (224).
	Size int
	// Interpolation is the resize filter; "" means Nearest.
	Interpolation Interpolation
	// Preprocessing turns pixels into input values; the zero value means
	// TorchvisionPreprocessing. Use the prepared model's spec.
	Preprocessing Preprocessing
	// Batch is the number of images per batch; 0 means DefaultBatch (32).
	Batch int
	// Workers decode and resize in parallel; 0 means DefaultWorkers (2).
	// Nearest (nfnt/resize) already spreads each resize over GOMAXPROCS,
	// the other filters run one image per worker, and the backbone needs
	// the cores too: keep it small.
	Workers int
	// SkipBad leaves images that fail to decode out of their batch (listed
	// in Batch.Bad) instead of stopping with the *DecodeError.
	SkipBad bool
	// Views is the number of views of each image, 1..MaxViews; 0 means 1.
	// With K views the Loader's positions are the K views of each item in
	// turn (position p is view p%K of item idx[p/K]); view 0 is the plain
	// image, views 1..K-1 are drawn by Augment.Draw with AugmentSeed and
	// the item's path. More than one view needs an Augment.
	Views       int
	Augment     Augment
	AugmentSeed uint64
}

// Batch describes the images Next wrote into its destination.
type Batch struct {
	// Start is the position in the Loader's index list of the batch's first
	// item (with views, of its first view: see LoaderSettings.Views): batch
	// k covers positions [k*Batch, (k+1)*Batch), whatever was skipped, so a
	// caller can resume at a batch boundary.
	Start int
	// Count is the number of images written: dst[:Count*ImageLen()]. It is
	// smaller than the batch size for the last batch and when images were
	// skipped; it can be 0 when every image of the batch was bad.
	Count int
	// Indices are the Source item indices of the written images, in order.
	Indices []int
	// Labels are their labels (Source.Items[Indices[j]].Label).
	Labels []int
	// Views are the images' view numbers; nil with one view per image.
	Views []int
	// Bad lists the images of this batch left out (SkipBad only).
	Bad []*DecodeError
}

// Loader decodes, resizes and preprocesses a Source's images into batches.
// While the caller runs a batch, the Loader prepares the next one in the
// background (one batch ahead, Workers images at a time). Next and Close
// must be called from one goroutine; Close must be called.
type Loader struct {
	src      *Source
	idx      []int
	s        LoaderSettings
	imageLen int
	scratch  [][]uint8 // each worker's buffer for augmented views

	startOnce sync.Once
	closeOnce sync.Once
	results   chan loaded
	free      chan []float32
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the producer returns
	err       error         // sticky: io.EOF, the first failure, or ErrLoaderClosed
	decoders  []*decoder
	// reads bounds the reads of a Source in object storage: Close cancels
	// it, so that a worker waiting on the network does not hold Close up.
	reads       context.Context
	cancelReads context.CancelFunc
}

type loaded struct {
	b   Batch
	buf []float32
	err error
}

// NewLoader returns a Loader over the items idx of src (in that order; nil
// means all items). It checks the settings and indices; work starts with the
// first Next.
func NewLoader(src *Source, idx []int, s LoaderSettings) (*Loader, error) {
	if s.Size == 0 {
		s.Size = DefaultSize
	}
	if s.Size < 1 || s.Size > maxSize {
		return nil, fmt.Errorf("dataset: loader: size %d, want 1..%d", s.Size, maxSize)
	}
	if s.Interpolation == "" {
		s.Interpolation = Nearest
	}
	if err := s.Interpolation.check(); err != nil {
		return nil, err
	}
	if s.Preprocessing == (Preprocessing{}) {
		s.Preprocessing = TorchvisionPreprocessing
	}
	if err := s.Preprocessing.Validate(); err != nil {
		return nil, err
	}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.Batch < 1 {
		return nil, fmt.Errorf("dataset: loader: batch %d, want 1 or more", s.Batch)
	}
	if s.Workers == 0 {
		s.Workers = DefaultWorkers
	}
	if s.Workers < 1 {
		return nil, fmt.Errorf("dataset: loader: %d workers, want 1 or more", s.Workers)
	}
	if s.Views == 0 {
		s.Views = 1
	}
	switch {
	case s.Views < 1 || s.Views > MaxViews:
		return nil, fmt.Errorf("dataset: loader: %d views, want 1..%d", s.Views, MaxViews)
	case s.Views > 1 && s.Augment.IsZero():
		return nil, fmt.Errorf("dataset: loader: %d views need an augmentation (views 1..%d would repeat view 0)", s.Views, s.Views-1)
	}
	if err := s.Augment.Validate(); err != nil {
		return nil, err
	}
	if idx == nil {
		idx = make([]int, len(src.Items))
		for i := range idx {
			idx[i] = i
		}
	}
	for _, i := range idx {
		if i < 0 || i >= len(src.Items) {
			return nil, fmt.Errorf("dataset: loader: item index %d out of range [0, %d)", i, len(src.Items))
		}
	}
	l := &Loader{
		src: src, idx: idx, s: s, imageLen: 3 * s.Size * s.Size,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	l.reads, l.cancelReads = context.WithCancel(context.Background())
	return l, nil
}

// ImageLen is the number of float32 values of one image (3×Size×Size).
func (l *Loader) ImageLen() int { return l.imageLen }

// BatchLen is the length Next needs in dst (Batch×ImageLen()).
func (l *Loader) BatchLen() int { return l.s.Batch * l.imageLen }

// Len is the number of batches Next returns before io.EOF.
func (l *Loader) Len() int { return (l.positions() + l.s.Batch - 1) / l.s.Batch }

// positions is the number of images the Loader yields: items × views.
func (l *Loader) positions() int { return len(l.idx) * l.s.Views }

// Settings returns the settings in use, defaults filled in.
func (l *Loader) Settings() LoaderSettings { return l.s }

// Next writes the next batch into dst (at least BatchLen() values; the
// images in the preprocessing's layout, one after another) and describes it.
// After the last batch it returns io.EOF. A bad image without SkipBad stops
// the Loader with its *DecodeError; Next keeps returning the error that
// stopped it. A cancelled ctx returns ctx.Err() and leaves the prepared
// batch for the next call.
func (l *Loader) Next(ctx context.Context, dst []float32) (Batch, error) {
	if len(dst) < l.BatchLen() {
		panic(fmt.Sprintf("dataset: loader: destination of %d values, want %d", len(dst), l.BatchLen()))
	}
	if l.err != nil {
		return Batch{}, l.err
	}
	if err := ctx.Err(); err != nil {
		return Batch{}, err
	}
	l.startOnce.Do(l.start)
	select {
	case <-ctx.Done():
		return Batch{}, ctx.Err()
	case r, ok := <-l.results:
		if !ok {
			l.err = io.EOF
			return Batch{}, l.err
		}
		if r.err != nil {
			l.err = r.err
			return Batch{}, l.err
		}
		// Copying costs a few milliseconds per batch, next to seconds of
		// inference, and lets the caller keep one input tensor.
		copy(dst, r.buf[:r.b.Count*l.imageLen])
		l.free <- r.buf
		return r.b, nil
	}
}

// Close stops the background work and waits for it. It is idempotent.
func (l *Loader) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		l.cancelReads()
		l.startOnce.Do(func() { close(l.done) }) // never started: nothing to wait for
		<-l.done
		if l.err == nil {
			l.err = ErrLoaderClosed
		}
	})
	return nil
}

func (l *Loader) start() {
	l.results = make(chan loaded)
	l.free = make(chan []float32, 1)
	l.free <- make([]float32, l.BatchLen())
	l.decoders = make([]*decoder, l.s.Workers)
	for i := range l.decoders {
		l.decoders[i] = &decoder{maxPixels: l.src.maxPixels}
	}
	l.scratch = make([][]uint8, l.s.Workers)
	go l.produce()
}

func (l *Loader) produce() {
	defer close(l.done)
	defer close(l.results)
	for start := 0; start < l.positions(); start += l.s.Batch {
		var buf []float32
		select {
		case buf = <-l.free:
		case <-l.stop:
			return
		}
		b, err := l.fill(buf, start)
		if errors.Is(err, ErrLoaderClosed) {
			return
		}
		select {
		case l.results <- loaded{b: b, buf: buf, err: err}:
		case <-l.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// fill prepares the batch starting at position start into buf. A worker
// takes all the batch's views of one item at a time, decoding it once.
func (l *Loader) fill(buf []float32, start int) (Batch, error) {
	k := l.s.Views
	end := min(start+l.s.Batch, l.positions())
	n := end - start
	// groups[g] is the first batch slot of the g-th item of the batch.
	var groups []int
	for j := range n {
		if j == 0 || (start+j)%k == 0 {
			groups = append(groups, j)
		}
	}
	groups = append(groups, n)
	errs := make([]*DecodeError, n)
	var fatal error // not the image's fault: stops the Loader even with SkipBad
	var fatalOnce sync.Once
	var next atomic.Int64
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for w := range min(l.s.Workers, len(groups)-1) {
		d := l.decoders[w]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				g := int(next.Add(1) - 1)
				if g >= len(groups)-1 {
					return
				}
				select {
				case <-l.stop:
					stopped.Store(true)
					return
				default:
				}
				j0, j1 := groups[g], groups[g+1]
				item := l.idx[(start+j0)/k]
				img, err := d.decodeItem(l.reads, l.src, item)
				if err != nil {
					de, ok := err.(*DecodeError)
					if !ok {
						fatalOnce.Do(func() { fatal = err })
						continue
					}
					for j := j0; j < j1; j++ {
						errs[j] = de
					}
					continue
				}
				for j := j0; j < j1; j++ {
					v := (start + j) % k
					if v == 0 {
						Preprocess(buf, j, Resize(img, l.s.Size, l.s.Interpolation), l.s.Preprocessing)
						continue
					}
					vw := l.s.Augment.Draw(l.s.AugmentSeed, l.src.Items[item].Path, v, img.Bounds())
					Preprocess(buf, j, ApplyView(img, vw, l.s.Size, l.s.Interpolation, &l.scratch[w]), l.s.Preprocessing)
				}
			}
		}()
	}
	wg.Wait()
	if stopped.Load() || (fatal != nil && l.reads.Err() != nil) {
		return Batch{}, ErrLoaderClosed
	}
	if fatal != nil {
		return Batch{}, fatal
	}
	b := Batch{Start: start, Indices: make([]int, 0, n), Labels: make([]int, 0, n)}
	if k > 1 {
		b.Views = make([]int, 0, n)
	}
	for j := range n {
		i := l.idx[(start+j)/k]
		if errs[j] != nil {
			if !l.s.SkipBad {
				return Batch{}, errs[j]
			}
			if j == 0 || (start+j)%k == 0 { // once per item, not per view
				b.Bad = append(b.Bad, errs[j])
			}
			continue
		}
		if m := len(b.Indices); m != j { // close the gap left by skipped images
			copy(buf[m*l.imageLen:(m+1)*l.imageLen], buf[j*l.imageLen:(j+1)*l.imageLen])
		}
		b.Indices = append(b.Indices, i)
		b.Labels = append(b.Labels, l.src.Items[i].Label)
		if k > 1 {
			b.Views = append(b.Views, (start+j)%k)
		}
	}
	b.Count = len(b.Indices)
	return b, nil
}
