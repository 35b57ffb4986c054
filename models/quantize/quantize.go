package quantize

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/progress"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Defaults of Settings.
const (
	DefaultImages = 64 // calibration images: min/max settles by then
	DefaultBatch  = 8
)

// ErrExists is wrapped when the output folder exists and Settings.Force
// is not set.
var ErrExists = errors.New("quantize: the output folder exists")

// ErrNoImages is wrapped when the calibration data holds no image.
var ErrNoImages = errors.New("quantize: no calibration images")

// Kind names a prepared model folder in the errors of fsutil.CheckReplace.
const Kind = "prepared model folder"

// Settings of Quantize. The zero value calibrates on DefaultImages images
// sampled with seed 0 at the model's own size.
type Settings struct {
	// Images is the number of calibration images, sampled without
	// replacement (all of them when the data holds fewer); 0 means
	// DefaultImages.
	Images int
	// Seed draws the sample.
	Seed uint64
	// Size is the square side the images are resized to; 0 means the
	// model's fixed size, else its default size. It becomes the int8
	// model's default size: the ranges hold at the side they were
	// measured at.
	Size int
	// Batch is the calibration batch; 0 means DefaultBatch.
	Batch int
	// Threads of the calibration runs; 0 means one per core.
	Threads int
	// Force replaces an existing prepared model folder at the output (and
	// nothing else).
	Force bool
	// Progress hears of the calibration, image by image; nil means none.
	Progress progress.Reporter
}

// Quantize reads the prepared float32 model in modelDir, measures its
// activation ranges on a seeded sample of the images of data (a class
// folder dataset, listed, decoded and preprocessed as extract does),
// builds the int8 extractor and writes it, with a spec.json recording the
// quantization, as the prepared model folder out: built in a hidden
// ".NAME.partial-*" folder beside out, synced and renamed into place, so
// that out is either absent (or the earlier folder) or complete. One
// writer at a time (a *fsutil.LockedError names the other); a killed
// writer's partial folder is removed by the next. A cancelled ctx stops
// the calibration and leaves nothing. Errors name the file or node at
// fault: a folder that is not a prepared model (models.ErrNotPrepared), a
// model quantized already (ErrQuantized), an op the quantizer does not
// handle (ErrUnsupported), data without images.
func Quantize(ctx context.Context, modelDir, data, out string, s Settings) (*models.Spec, error) {
	p := progress.OrNop(s.Progress)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := fsutil.CheckOutput(out, modelDir, data); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if err := checkNew(out, s.Force); err != nil {
		return nil, err
	}
	spec, err := models.ReadSpec(modelDir)
	if err != nil {
		return nil, err
	}
	if spec.Int8() {
		return nil, fmt.Errorf("%w: %s records scheme %s, quantized from extractor %.12s…; quantize the float32 model it was made from", ErrQuantized,
			filepath.Join(modelDir, "spec.json"), spec.Quantization.Scheme, spec.Quantization.FromSHA256)
	}
	raw, sum, err := models.ReadExtractor(modelDir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(modelDir, models.ExtractorFile)
	m, err := models.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("quantize: %s: %w", path, err)
	}
	pl, err := analyse(m)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	size := cmp.Or(s.Size, spec.FixedSize, spec.DefaultSize)
	if spec.FixedSize > 0 && size != spec.FixedSize {
		return nil, fmt.Errorf("quantize: %s takes only %d×%d images, not %d", path, spec.FixedSize, spec.FixedSize, size)
	}
	if spec.SizeMultiple > 0 && size%spec.SizeMultiple != 0 {
		return nil, fmt.Errorf("quantize: calibration size %d is not a multiple of %d, which %s needs", size, spec.SizeMultiple, path)
	}

	src, idx, filesSHA, err := sample(ctx, data, s)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	// The inputs are good: from here on the output is this process's
	// (its parent made, a killed earlier writer's partial folder gone).
	lock, err := lockOutput(out)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ranges, err := calibrate(ctx, m, pl, spec, src, idx, size, s, p)
	if err != nil {
		return nil, err
	}
	q, twins, err := build(m, pl, ranges)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	absData, err := filepath.Abs(data)
	if err != nil {
		absData = data
	}
	spec8 := *spec
	out8 := &spec8
	// Activation ranges depend on the input side: extract defaults to
	// the side they were measured at.
	out8.DefaultSize = size
	out8.Quantization = &models.QuantizationSpec{
		Scheme:     models.SchemeInt8QDQ,
		FromSHA256: sum,
		Calibration: models.CalibrationSpec{
			Data: absData, Images: len(idx), Seed: s.Seed, Size: size, FilesSHA256: filesSHA,
		},
	}
	if spec.Block5 != nil {
		// Fine-tuning starts from block5's float32 weights: they stay in
		// the file under their names, beside the int8 ones the graph runs.
		if err := keepBlock5(q, m, spec, twins, out8.Quantization); err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
	}
	if spec.Maps != nil {
		out8.Quantization.Maps = "int8"
	}
	q.DocString = proto.String(fmt.Sprintf("tlearn models quantize: %s of the %s extractor %.12s…, %d convolutions, calibrated on %d images",
		models.SchemeInt8QDQ, spec.Preset, sum, pl.convs, len(idx)))
	b, err := models.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := write(out, b, out8); err != nil {
		return nil, err
	}
	return out8, nil
}

// keepBlock5 adds block5's float32 weights of m back into q (the rewrite
// pruned them) and records the int8 twins that q's graph runs.
func keepBlock5(q, m *onnxpb.ModelProto, spec *models.Spec, twins map[string]string, qs *models.QuantizationSpec) error {
	have := map[string]bool{}
	for _, t := range q.Graph.Initializer {
		have[t.GetName()] = true
	}
	for k := range 3 {
		for j, name := range []string{spec.Block5.ConvWeights[k], spec.Block5.ConvBiases[k]} {
			twin, ok := twins[name]
			if !ok {
				return fmt.Errorf("%w: block5 parameter %q is no Conv's weight or bias", ErrUnsupported, name)
			}
			if j == 0 {
				qs.Block5Weights[k] = twin
			} else {
				qs.Block5Biases[k] = twin
			}
			if have[name] {
				continue
			}
			t, ok := models.Initializer(m, name)
			if !ok {
				return fmt.Errorf("%w: block5 parameter %q is not an initializer", ErrUnsupported, name)
			}
			c := proto.Clone(t).(*onnxpb.TensorProto)
			c.Name = proto.String(name)
			q.Graph.Initializer = append(q.Graph.Initializer, c)
		}
	}
	return nil
}

// sample lists data and draws the seeded calibration sample: idx in
// ascending order, and the sha256 of their paths.
func sample(ctx context.Context, data string, s Settings) (*dataset.Source, []int, string, error) {
	src, err := dataset.OpenData(ctx, data, dataset.Settings{})
	if err != nil {
		return nil, nil, "", fmt.Errorf("quantize: calibration data: %w", err)
	}
	if len(src.Items) == 0 {
		src.Close()
		return nil, nil, "", fmt.Errorf("%w in %s", ErrNoImages, data)
	}
	n := cmp.Or(s.Images, DefaultImages)
	perm := rand.New(rand.NewPCG(s.Seed, 0x71756e74)).Perm(len(src.Items))
	idx := perm[:min(n, len(perm))]
	slices.Sort(idx)
	h := sha256.New()
	for _, i := range idx {
		io.WriteString(h, src.Items[i].Path+"\n")
	}
	return src, idx, hex.EncodeToString(h.Sum(nil)), nil
}

// calibrate runs the float32 graph with ReduceMin/ReduceMax outputs over
// the sampled images and returns each ranged tensor's min and max.
func calibrate(ctx context.Context, m *onnxpb.ModelProto, pl *plan, spec *models.Spec, src *dataset.Source, idx []int, size int, s Settings, p progress.Reporter) (map[string]minMax, error) {
	cm, outs := calibrationModel(m, pl)
	b, err := models.Marshal(cm)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	var names []string
	for _, o := range outs {
		for _, n := range o {
			if n != "" {
				names = append(names, n)
			}
		}
	}
	batch := cmp.Or(s.Batch, DefaultBatch)
	l, err := dataset.NewLoader(src, idx, dataset.LoaderSettings{Size: size, Preprocessing: spec.Preprocessing, Batch: batch})
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	defer l.Close()
	ranges := make(map[string]minMax, len(pl.ranged))
	for _, t := range pl.ranged {
		ranges[t] = minMax{Min: float32(math.Inf(1)), Max: float32(math.Inf(-1))}
	}
	for t, relu := range pl.relu {
		if relu {
			ranges[t] = minMax{Min: 0, Max: float32(math.Inf(-1))}
		}
	}
	buf := make([]float32, l.BatchLen())
	p.Start("calibrating", len(idx), 0)
	defer p.Finish()
	for {
		bt, err := l.Next(ctx, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("quantize: calibration image: %w", err)
		}
		shape := []int64{int64(bt.Count), 3, int64(size), int64(size)}
		if spec.Preprocessing.Layout == dataset.NHWC {
			shape = []int64{int64(bt.Count), int64(size), int64(size), 3}
		}
		res, err := ortlib.Probe(ctx, b, []ortlib.Tensor{{Name: spec.Input, Shape: shape, Data: buf[:bt.Count*l.ImageLen()]}}, names, s.Threads)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, fmt.Errorf("quantize: calibration run: %w", err)
		}
		k := 0
		for i, t := range pl.ranged {
			r := ranges[t]
			for j, n := range outs[i] {
				if n == "" {
					continue
				}
				v := res[k].Data[0]
				k++
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("quantize: calibration: tensor %q holds %v (a damaged model or image)", t, v)
				}
				if j == 0 {
					r.Min = min(r.Min, v)
				} else {
					r.Max = max(r.Max, v)
				}
			}
			ranges[t] = r
		}
		p.Add(bt.Count)
	}
	return ranges, nil
}

// checkNew refuses an existing output unless force is set, and with force
// anything but a prepared model folder (or an empty folder).
func checkNew(out string, force bool) error {
	if _, err := os.Lstat(out); err == nil && !force {
		return fmt.Errorf("%w: %s", ErrExists, out)
	}
	if err := fsutil.CheckReplace(out, Kind, isPrepared); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	return fsutil.CheckCreatable(out)
}

func isPrepared(dir string) bool {
	_, err := models.ReadSpec(dir)
	return err == nil
}

// lockOutput makes out's parent, takes out's one-writer lock and removes
// what a killed earlier writer left beside out (its partial folders).
func lockOutput(out string) (*fsutil.Lock, error) {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(out)), 0o755); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	lock, err := fsutil.LockOutput(out)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if _, err := lock.RemoveStale(); err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("quantize: %w", err)
	}
	return lock, nil
}

// write writes extractor.onnx and spec.json into a hidden partial folder
// beside out, syncs it and renames it over out; the caller holds out's
// lock.
func write(out string, model []byte, spec *models.Spec) (err error) {
	out = filepath.Clean(out)
	parent, base := filepath.Split(out)
	if parent == "" {
		parent = "."
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".partial-")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("quantize: create %s: %w", out, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
			err = fsutil.Renamed(err, tmp, out)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if err := fsutil.WriteFile(filepath.Join(tmp, models.ExtractorFile), model, 0o644); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	sum := sha256.Sum256(model)
	spec.ExtractorSHA256 = hex.EncodeToString(sum[:])
	if err := models.WriteSpec(tmp, spec); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	var old string
	if _, err := os.Lstat(out); err == nil {
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("quantize: replace %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out)
		}
		return fmt.Errorf("quantize: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return fsutil.SyncDir(parent)
}
