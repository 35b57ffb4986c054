package classify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/classifier"
)

// DefaultBatch is the batch size of a Classifier when Options.Batch is 0.
const DefaultBatch = 16

// Options choose how a Classifier runs. The zero value means: device auto,
// one thread per core, the classifier's recorded size and interpolation,
// DefaultBatch.
type Options struct {
	ORT ortlib.Options
	// Size is the square side images are resized to; 0 means the size
	// recorded at export.
	Size int
	// Interpolation is the resize filter; "" means the recorded one.
	Interpolation dataset.Interpolation
	// Batch is the number of images per ORT run; 0 means DefaultBatch.
	Batch int
	// Workers decode and resize in parallel with inference; 0 means
	// dataset.DefaultWorkers.
	Workers int
}

// Classifier owns an ORT session over an exported classifier (classifier.Build)
// and the buffers it runs on: one uint8 pixel batch and one probability
// batch, allocated once. It is not safe for concurrent use.
type Classifier struct {
	path    string
	info    *classifier.Info
	size    int
	batch   int
	workers int
	interp  dataset.Interpolation
	device  ortlib.Device
	why     string

	session *ort.DynamicAdvancedSession
	runOpts *ort.RunOptions
	pixels  []uint8
	probs   []float32
	// views are tensors over the first n images of pixels and probs, made
	// when a batch of n images first runs; the memory is shared, so a
	// short last batch costs no allocation and no wasted inference.
	views map[int][2]ort.Value
}

// Open loads a classifier written by classifier.Build (`tlearn export`). ORT
// must be initialized (ortlib.Init). A file that is not ONNX, or an ONNX model without
// tlearn's metadata, fails with an error naming the file (wrapping
// classifier.ErrNotClassifier in the second case).
func Open(path string, o Options) (*Classifier, error) {
	b, err := fsutil.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	m, err := models.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("classify: load %s: %w", path, err)
	}
	info, err := classifier.ReadInfo(m)
	if err != nil {
		return nil, fmt.Errorf("classify: %s: %w", path, err)
	}
	c := &Classifier{path: path, info: info, size: o.Size, batch: o.Batch, workers: o.Workers, interp: o.Interpolation}
	if c.size == 0 {
		c.size = info.Size
	}
	if err := info.CheckSize(c.size); err != nil {
		return nil, fmt.Errorf("classify: %s: %w", path, err)
	}
	if c.interp == "" {
		c.interp = info.Interpolation
	}
	if _, err := dataset.ParseInterpolation(string(c.interp)); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	if c.batch == 0 {
		c.batch = DefaultBatch
	}
	if c.batch < 1 || c.batch > 4096 {
		return nil, fmt.Errorf("classify: batch %d, want 1..4096", o.Batch)
	}
	so, used, why, err := ortlib.SessionOptions(o.ORT)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	defer so.Destroy()
	c.device, c.why = used, why
	if c.session, err = ort.NewDynamicAdvancedSessionWithONNXData(b, []string{classifier.Input}, []string{classifier.Output}, so); err != nil {
		return nil, fmt.Errorf("classify: load %s: %w", path, err)
	}
	if c.runOpts, err = ort.NewRunOptions(); err != nil {
		return nil, errors.Join(fmt.Errorf("classify: run options: %w", err), c.Close())
	}
	c.pixels = make([]uint8, c.batch*c.imageLen())
	c.probs = make([]float32, c.batch*len(info.Classes))
	c.views = make(map[int][2]ort.Value)
	return c, nil
}

func (c *Classifier) imageLen() int { return 3 * c.size * c.size }

// Close releases the session and tensors. It is idempotent and safe on a
// nil or half-built Classifier.
func (c *Classifier) Close() error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.session != nil {
		errs = append(errs, c.session.Destroy())
		c.session = nil
	}
	for n, v := range c.views {
		errs = append(errs, v[0].Destroy(), v[1].Destroy())
		delete(c.views, n)
	}
	if c.runOpts != nil {
		errs = append(errs, c.runOpts.Destroy())
		c.runOpts = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("classify: close %s: %w", c.path, err)
	}
	return nil
}

// Info is what the classifier records about itself.
func (c *Classifier) Info() *classifier.Info { return c.info }

// Classes are the names of the outputs, in order.
func (c *Classifier) Classes() []string { return c.info.Classes }

// Size is the side images are resized to.
func (c *Classifier) Size() int { return c.size }

// Interpolation is the resize filter in use.
func (c *Classifier) Interpolation() dataset.Interpolation { return c.interp }

// Batch is the number of images per run.
func (c *Classifier) Batch() int { return c.batch }

// Device is where the session runs, and why auto fell back to CPU ("" when
// it did not).
func (c *Classifier) Device() (ortlib.Device, string) { return c.device, c.why }

// Prediction is the result for one image.
type Prediction struct {
	// Index is the image's index in the Source's Items.
	Index int
	// Probs are the K class probabilities; nil when Err is set. The slice
	// is reused: it is valid until the callback returns.
	Probs []float32
	// Err is set when the image could not be decoded.
	Err *dataset.DecodeError
}

// Classify runs every image of src through the classifier, in the order
// of src.Items, and calls fn once per image with its probabilities, or with
// the decode error of an image that could not be read (classification goes
// on). An error returned by fn, or a cancelled ctx (which also stops a run
// in flight), stops Classify and is returned.
func (c *Classifier) Classify(ctx context.Context, src *dataset.Source, fn func(Prediction) error) error {
	// The dataset loader gives classify the decode and resize of extract,
	// hence the pixels a cache was made from. Its identity preprocessing
	// yields the 0..255 values exactly; preprocessing proper happens inside
	// the classifier's graph.
	identity := dataset.Preprocessing{ChannelOrder: dataset.RGB, Layout: dataset.NHWC, Scale: 1, Std: [3]float32{1, 1, 1}}
	l, err := dataset.NewLoader(src, nil, dataset.LoaderSettings{
		Size: c.size, Interpolation: c.interp, Preprocessing: identity,
		Batch: c.batch, Workers: c.workers, SkipBad: true,
	})
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	defer l.Close()
	staging := make([]float32, l.BatchLen())
	k := len(c.info.Classes)
	imageLen := c.imageLen()
	for {
		b, err := l.Next(ctx, staging)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for i, v := range staging[:b.Count*imageLen] {
			c.pixels[i] = uint8(v)
		}
		if b.Count > 0 {
			if err := c.run(ctx, b.Count); err != nil {
				return err
			}
		}
		bad := make(map[string]*dataset.DecodeError, len(b.Bad))
		for _, e := range b.Bad {
			bad[e.Path] = e
		}
		// Items in source order: the good ones are b.Indices, in order;
		// the others of the batch's range are the bad ones.
		next := 0
		for pos := b.Start; pos < min(b.Start+c.batch, len(src.Items)); pos++ {
			p := Prediction{Index: pos}
			if next < len(b.Indices) && b.Indices[next] == pos {
				p.Probs = c.probs[next*k : (next+1)*k]
				next++
			} else if p.Err = bad[src.Path(pos)]; p.Err == nil {
				return fmt.Errorf("classify: image %s is neither classified nor reported bad", src.Path(pos))
			}
			if err := fn(p); err != nil {
				return err
			}
		}
	}
}

// run classifies the first n images of the pixel buffer into probs.
func (c *Classifier) run(ctx context.Context, n int) error {
	v, ok := c.views[n]
	if !ok {
		s := int64(c.size)
		in, err := ort.NewTensor(ort.NewShape(int64(n), s, s, 3), c.pixels)
		if err != nil {
			return fmt.Errorf("classify: input tensor: %w", err)
		}
		out, err := ort.NewTensor(ort.NewShape(int64(n), int64(len(c.info.Classes))), c.probs)
		if err != nil {
			return errors.Join(fmt.Errorf("classify: output tensor: %w", err), in.Destroy())
		}
		v = [2]ort.Value{in, out}
		c.views[n] = v
	}
	err := ortlib.RunWithContext(ctx, c.runOpts, func() error {
		return c.session.RunWithOptions([]ort.Value{v[0]}, []ort.Value{v[1]}, c.runOpts)
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("classify: run %s: %w", c.path, err)
	}
	return err
}

// ClassFolderLabels returns the true class of each image of src when src
// was listed from the one folder root and that folder is a class-folder
// tree for the classifier: every image lies in a sub-folder of root named
// after one of classes (deeper folders allowed). It returns nil otherwise.
func ClassFolderLabels(root string, src *dataset.Source, classes []string) []int {
	labels := make([]int, len(src.Items))
	for i := range src.Items {
		rel, err := filepath.Rel(root, src.Path(i))
		if err != nil {
			return nil
		}
		first, _, nested := strings.Cut(filepath.ToSlash(rel), "/")
		if !nested {
			return nil
		}
		if labels[i] = slices.Index(classes, first); labels[i] < 0 {
			return nil
		}
	}
	if len(labels) == 0 {
		return nil
	}
	return labels
}

// TopK writes into dst the indices of the k largest probabilities, largest
// first (ties: lower index first), and returns it; k is capped at
// len(probs).
func TopK(dst []int, probs []float32, k int) []int {
	k = min(k, len(probs))
	dst = dst[:0]
	for i, p := range probs {
		// Insertion into the sorted prefix: k is small.
		j := len(dst)
		for j > 0 && probs[dst[j-1]] < p {
			j--
		}
		if j >= k {
			continue
		}
		if len(dst) < k {
			dst = append(dst, 0)
		}
		copy(dst[j+1:], dst[j:len(dst)-1])
		dst[j] = i
	}
	return dst
}
