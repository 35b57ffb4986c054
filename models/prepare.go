package models

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Preprocessing names accepted by PrepareSettings.Preprocessing.
const (
	PreprocessingTorchvision = "torchvision"
	PreprocessingCaffe       = "caffe"
)

// Sizes used by Prepare.
const (
	vggDefaultSize  = 224 // VGG16's training resolution
	vggSizeMultiple = 32  // five 2x2 pools
	vggMapsStride   = 16  // block4_pool is 1/16 of the input side
	checkSize       = 64  // side of the self-check run: small, and 4x4 maps
	checkBatch      = 2   // a batch of 2 shows that the batch dim is free
)

// ErrNoTensor is wrapped when PrepareSettings.FeatureTensor names a tensor
// that no node of the graph writes.
var ErrNoTensor = errors.New("models: no such tensor")

// PrepareSettings chooses how Prepare cuts a model. The zero value detects
// a VGG16 and its preset and checks the result once under ONNX Runtime.
type PrepareSettings struct {
	// Preset is "" (detect from the graph), PresetTorchvision or PresetKeras.
	Preset string
	// FeatureTensor names the tensor to pool for a backbone that is not a
	// VGG16 (head-only mode: no maps, no block5). A 4-D tensor is pooled by
	// global average pooling over its last two axes (NCHW, as ONNX's
	// convolutions write); a 2-D one is taken as it is.
	FeatureTensor string
	// Preprocessing is the input preprocessing of a FeatureTensor model:
	// PreprocessingTorchvision ("" means this) or PreprocessingCaffe. Its
	// layout follows the model's input.
	Preprocessing string
	// SkipCheck skips running the cut model once under ONNX Runtime (which
	// must then be initialized) to confirm its outputs' shapes. A
	// FeatureTensor without shape information needs the run anyway.
	SkipCheck bool
	// DefaultSize is the square input side recorded in the spec (the side
	// the backbone was trained at, which extract uses unless told otherwise);
	// 0 means the input's fixed side, else 224.
	DefaultSize int
	// Threads for the check run; 0 means one per core.
	Threads int
}

// Prepare cuts the backbone in file src and writes outDir/extractor.onnx and
// outDir/spec.json (DESIGN.md, "Files on disk"). For a VGG16 (full, or conv
// base only; torchvision, Model Zoo or tf2onnx Keras export) the extractor
// outputs `features` [N,C5] (global average pooling of block5_pool) and
// `maps` [N,C4,H/16,W/16] (block4_pool, NCHW) with batch and spatial dims
// symbolic, and keeps block5's weights as initializers of their own, named
// in spec.Block5. Errors name src. A cancelled ctx stops the check runs
// under ONNX Runtime, and Prepare returns an error wrapping ctx's before
// it makes outDir. One writer at a time: while another process prepares
// into outDir, Prepare fails at once with a *fsutil.LockedError.
func Prepare(ctx context.Context, src string, s PrepareSettings, outDir string) (*Spec, error) {
	lock, err := lockPrepared(outDir)
	if err != nil {
		return nil, fmt.Errorf("models: prepare %s: %w", src, err)
	}
	defer lock.Unlock()
	b, err := fsutil.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("models: prepare %s: %w", src, err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("models: prepare %s: %w", src, err)
	}
	if err := inlineExternalData(m, filepath.Dir(src)); err != nil {
		return nil, fmt.Errorf("models: prepare %s: %w", src, err)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		abs = src
	}
	sum := sha256.Sum256(b)
	source := SourceSpec{Path: abs, SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(b))}
	spec, err := prepareModel(ctx, m, source, s, outDir)
	if err != nil {
		return nil, fmt.Errorf("models: prepare %s: %w", src, err)
	}
	return spec, nil
}

// prepareModel is Prepare for a model already in memory; source is recorded
// in the spec as given. Its errors do not name a file.
func prepareModel(ctx context.Context, m *onnxpb.ModelProto, source SourceSpec, s PrepareSettings, outDir string) (*Spec, error) {
	var (
		ext  *onnxpb.ModelProto
		spec *Spec
		err  error
	)
	if s.FeatureTensor != "" {
		ext, spec, err = cutCustom(ctx, m, s)
	} else {
		ext, spec, err = cutVGG(ctx, m, s)
	}
	if err != nil {
		return nil, err
	}
	spec.Format = specFormat
	spec.Source = source
	b, err := Marshal(ext)
	if err != nil {
		return nil, err
	}
	if !s.SkipCheck && spec.Maps != nil {
		if err := checkVGGExtractor(ctx, b, spec, s.Threads); err != nil {
			return nil, err
		}
	}
	// An interrupt during the cut or the check leaves outDir untouched.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	if err := otherONNX(outDir); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFile(filepath.Join(outDir, ExtractorFile), b, 0o644); err != nil {
		return nil, err
	}
	ext256 := sha256.Sum256(b)
	spec.ExtractorSHA256 = hex.EncodeToString(ext256[:])
	if err := WriteSpec(outDir, spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// lockPrepared takes the one-writer lock of the prepared model folder
// outDir (a *fsutil.LockedError naming the holder when another process
// writes it), making its parent as Prepare makes outDir, and removes the
// temporaries that a killed earlier writer left: of the folder, and of its
// extractor.onnx and spec.json inside it. The caller defers Unlock.
func lockPrepared(outDir string) (*fsutil.Lock, error) {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(outDir)), 0o755); err != nil {
		return nil, err
	}
	l, err := fsutil.LockOutput(outDir)
	if err != nil {
		return nil, err
	}
	if _, err := l.RemoveStale(filepath.Join(outDir, ExtractorFile), filepath.Join(outDir, specFile)); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// otherONNX refuses an output folder holding other .onnx files: consumers
// find the extractor as the folder's only model.
func otherONNX(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.EqualFold(filepath.Ext(e.Name()), ".onnx") && e.Name() != ExtractorFile {
			return fmt.Errorf("output folder %s already holds %s; a prepared model folder holds only %s", dir, e.Name(), ExtractorFile)
		}
	}
	return nil
}

// WriteSynthPrepared synthesizes a VGG16 (see SynthVGG16) and prepares it
// into dir without an ONNX Runtime check: a fixture for tests of the
// packages that consume prepared models.
func WriteSynthPrepared(dir string, s SynthSettings) (*Spec, error) {
	m := SynthVGG16(s)
	b, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	width := s.Width
	if width == 0 {
		width = 1
	}
	source := SourceSpec{
		Path:   fmt.Sprintf("synth:vgg16?style=%s&width=%g&seed=%d", s.style(), width, s.Seed),
		SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(b)),
	}
	lock, err := lockPrepared(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	// Without the check run there is nothing long to interrupt.
	return prepareModel(context.Background(), m, source, PrepareSettings{SkipCheck: true}, dir)
}

// WriteTinyPrepared writes TinyVGG(seed), prepared, into dir.
func WriteTinyPrepared(dir string, seed int64) (*Spec, error) {
	return WriteSynthPrepared(dir, SynthSettings{Seed: seed, Width: 1.0 / 16})
}

func cutVGG(ctx context.Context, m *onnxpb.ModelProto, s PrepareSettings) (*onnxpb.ModelProto, *Spec, error) {
	v, err := DetectVGG(m)
	if err != nil {
		return nil, nil, err
	}
	preset := s.Preset
	if preset == "" {
		if preset, err = detectPreset(v); err != nil {
			return nil, nil, err
		}
	} else if err := checkPreset(v, preset); err != nil {
		return nil, nil, err
	}
	pre, _ := presetPreprocessing(preset)
	pre.Layout = v.Layout

	out := proto.Clone(m).(*onnxpb.ModelProto)
	g := out.Graph
	names := onnxgraph.Names(g)
	ren := onnxgraph.Reserve(g, names, FeaturesOutput, MapsOutput)
	input := ren(v.Input)
	// The clone's nodes sit at the same indexes as the original's.
	var b5 [3]*onnxpb.NodeProto
	for i, n := range v.convs[4] {
		b5[i] = g.Node[slices.Index(m.Graph.Node, n)]
	}
	spec := &Spec{
		Preset:        preset,
		Preprocessing: pre,
		Input:         input,
		DefaultSize:   cmp.Or(s.DefaultSize, fixedSide(v.input), vggDefaultSize),
		SizeMultiple:  vggSizeMultiple,
		Features:      FeaturesSpec{Name: FeaturesOutput, Dim: v.Blocks[4].Channels, Tensor: v.Blocks[4].Pool},
		Maps:          &MapsSpec{Name: MapsOutput, Channels: v.Blocks[3].Channels, Stride: vggMapsStride, Tensor: v.Blocks[3].Pool},
		Block5:        &Block5Spec{Channels: v.Blocks[4].Channels},
	}
	for i, n := range b5 {
		w, b, err := ownParams(g, n, i+1, names)
		if err != nil {
			return nil, nil, err
		}
		spec.Block5.ConvWeights[i], spec.Block5.ConvBiases[i] = w, b
	}
	pool4, pool5 := ren(v.Blocks[3].Pool), ren(v.Blocks[4].Pool)
	gap := onnxgraph.Unique(names, "features_gap")
	g.Node = append(g.Node,
		onnxgraph.Node("GlobalAveragePool", "tlearn_features_gap", []string{pool5}, []string{gap}),
		onnxgraph.Node("Flatten", "tlearn_features", []string{gap}, []string{FeaturesOutput}, onnxgraph.AttrInt("axis", 1)),
		onnxgraph.Node("Identity", "tlearn_maps", []string{pool4}, []string{MapsOutput}),
	)
	g.Output = []*onnxpb.ValueInfoProto{
		onnxgraph.ValueInfo(FeaturesOutput, onnxpb.TensorProto_FLOAT, []any{"N", spec.Features.Dim}),
		onnxgraph.ValueInfo(MapsOutput, onnxpb.TensorProto_FLOAT, []any{"N", spec.Maps.Channels, "maps_h", "maps_w"}),
	}
	finishCut(out, input, v.Layout, true)
	out.DocString = proto.String(fmt.Sprintf("tlearn models prepare: %s backbone, outputs %s (global average pool of %q) and %s (%q)",
		preset, FeaturesOutput, pool5, MapsOutput, pool4))
	return out, spec, nil
}

// ownParams makes conv's weight and bias initializers of their own, used by
// no other node, so that fine-tuning can replace them by name: values
// reached through Identity or Constant nodes, or shared with other nodes,
// are copied to a new initializer; a missing bias becomes zeros.
func ownParams(g *onnxpb.GraphProto, conv *onnxpb.NodeProto, k int, names map[string]bool) (w, b string, err error) {
	uses := make(map[string]int)
	for _, n := range g.Node {
		for _, in := range n.Input {
			uses[in]++
		}
	}
	for _, o := range g.Output {
		uses[o.GetName()]++
	}
	inputs := make(map[string]bool)
	for _, vi := range g.Input {
		inputs[vi.GetName()] = true
	}
	direct := make(map[string]*onnxpb.TensorProto)
	for _, t := range g.Initializer {
		direct[t.GetName()] = t
	}
	if len(conv.Input) < 3 || conv.Input[2] == "" {
		ch, _ := Initializer(&onnxpb.ModelProto{Graph: g}, conv.Input[1])
		name := onnxgraph.Unique(names, fmt.Sprintf("block5_conv%d.bias", k))
		g.Initializer = append(g.Initializer, NewTensorFloat32(name, ch.Dims[:1], make([]float32, ch.Dims[0])))
		conv.Input = append(conv.Input[:2], name)
		uses[name] = 1
		direct[name] = g.Initializer[len(g.Initializer)-1]
	}
	for j, kind := range []string{"weight", "bias"} {
		name := conv.Input[1+j]
		t, ok := graphConstant(g, name)
		if !ok {
			return "", "", fmt.Errorf("block5 Conv %s: %s %q is not a constant", nodeName(conv), kind, name)
		}
		if direct[name] == t && uses[name] == 1 && !inputs[name] {
			continue
		}
		c := proto.Clone(t).(*onnxpb.TensorProto)
		c.Name = proto.String(onnxgraph.Unique(names, fmt.Sprintf("block5_conv%d.%s", k, kind)))
		g.Initializer = append(g.Initializer, c)
		conv.Input[1+j] = c.GetName()
	}
	return conv.Input[1], conv.Input[2], nil
}

// cutCustom cuts any backbone at s.FeatureTensor.
func cutCustom(ctx context.Context, m *onnxpb.ModelProto, s PrepareSettings) (*onnxpb.ModelProto, *Spec, error) {
	pre, err := customPreprocessing(s)
	if err != nil {
		return nil, nil, err
	}
	input, dims, layout, err := customInput(m.GetGraph())
	if err != nil {
		return nil, nil, err
	}
	pre.Layout = layout
	declared := fixedSide(input)
	size := cmp.Or(s.DefaultSize, declared, vggDefaultSize)
	t := s.FeatureTensor
	producer := producers(m.GetGraph())
	if producer[t] == nil {
		return nil, nil, fmt.Errorf("%w %q: no node writes it", ErrNoTensor, t)
	}
	rank, dim, err := featureShape(ctx, m, t, input.GetName(), dims, layout, cmp.Or(declared, size), s.Threads)
	if err != nil {
		return nil, nil, err
	}
	out, in, transposed, err := cutAt(m, t, producer[t], rank, input.GetName(), layout)
	if err != nil {
		return nil, nil, err
	}
	if transposed {
		// dim was read on the NHWC tensor; the probe of the check run below
		// confirms the final [N,D].
		dim = 0
	}
	spec := &Spec{
		Preset:        PresetCustom,
		Preprocessing: pre,
		Input:         in,
		DefaultSize:   size,
		Features:      FeaturesSpec{Name: FeaturesOutput, Dim: int(dim), Tensor: t},
	}
	symbolicSpatial := declared == 0
	if !s.SkipCheck || dim <= 0 {
		if spec.Features.Dim, symbolicSpatial, err = checkCustomCut(ctx, out, in, dims, layout, size, s.Threads); err != nil {
			return nil, nil, err
		}
	}
	if !symbolicSpatial {
		if s.SkipCheck && dim > 0 {
			size = declared // unchecked: keep the model's own size
		}
		spec.FixedSize = size
		setInputDims(out.Graph, in, fixedInputDims(dims, layout, size))
	}
	setOutputDims(out.Graph, FeaturesOutput, []any{"N", spec.Features.Dim})
	return out, spec, nil
}

// customPreprocessing checks the settings of a cut at a feature tensor and
// returns the input preprocessing they name (its layout still unset).
func customPreprocessing(s PrepareSettings) (dataset.Preprocessing, error) {
	var pre dataset.Preprocessing
	switch s.Preprocessing {
	case "", PreprocessingTorchvision:
		pre = dataset.TorchvisionPreprocessing
	case PreprocessingCaffe:
		pre = dataset.CaffePreprocessing
	default:
		return pre, fmt.Errorf("unknown preprocessing %q (want %s or %s)", s.Preprocessing, PreprocessingTorchvision, PreprocessingCaffe)
	}
	if s.Preset != "" && s.Preset != PresetCustom {
		return pre, fmt.Errorf("%w: %s is a VGG16 preset; a cut at a feature tensor takes preset %s", ErrPreset, s.Preset, PresetCustom)
	}
	return pre, nil
}

// customInput is the graph's image input: float32, rank 4, NHWC when its
// last dim is 3 and its second is not, else NCHW.
func customInput(g *onnxpb.GraphProto) (*onnxpb.ValueInfoProto, []onnxgraph.Dim, dataset.Layout, error) {
	input, err := imageInput(g)
	if err != nil {
		return nil, nil, "", err
	}
	elem, dims, known := onnxgraph.Shape(input)
	if elem != onnxpb.TensorProto_FLOAT {
		return nil, nil, "", fmt.Errorf("input %q is %s; tlearn feeds float32 images", input.GetName(), onnxgraph.DataTypeName(int32(elem)))
	}
	if !known || len(dims) != 4 {
		return nil, nil, "", fmt.Errorf("input %q has shape %v; want an image batch of rank 4", input.GetName(), dims)
	}
	layout := dataset.NCHW
	if dims[3].Value == 3 && dims[1].Value != 3 {
		layout = dataset.NHWC
	}
	return input, dims, layout, nil
}

// producers maps each tensor to the node that writes it.
func producers(g *onnxpb.GraphProto) map[string]*onnxpb.NodeProto {
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	return producer
}

// featureShape is the rank of tensor t and its second dim (0 when
// unknown): as the graph declares them, else found by running the model
// up to t once at the given input side (which needs ONNX Runtime). A
// tensor that is not float32 is an error.
func featureShape(ctx context.Context, m *onnxpb.ModelProto, t, input string, dims []onnxgraph.Dim, layout dataset.Layout, side, threads int) (rank int, dim int64, err error) {
	g := m.GetGraph()
	rank, isFloat := -1, false
	for _, vi := range append(slices.Clone(g.ValueInfo), g.Output...) {
		if vi.GetName() == t {
			if e, d, ok := onnxgraph.Shape(vi); ok && d != nil {
				rank, isFloat = len(d), e == onnxpb.TensorProto_FLOAT
				if len(d) >= 2 {
					dim = d[1].Value
				}
			}
		}
	}
	if rank < 0 || dim <= 0 {
		pm := proto.Clone(m).(*onnxpb.ModelProto)
		pm.Graph.Output = []*onnxpb.ValueInfoProto{{Name: proto.String(t)}}
		finishCut(pm, input, layout, false)
		b, err := Marshal(pm)
		if err != nil {
			return 0, 0, err
		}
		res, err := probe(ctx, b, input, inputShape(dims, layout, 1, side), []string{t}, threads)
		if err != nil {
			return 0, 0, fmt.Errorf("probe run to find the shape of %q: %w", t, err)
		}
		rank, isFloat = len(res[0].Shape), res[0].Float32
		if rank >= 2 {
			dim = res[0].Shape[1]
		}
	}
	if !isFloat {
		return 0, 0, fmt.Errorf("feature tensor %q is not float32 (a quantized tensor?); name a float tensor, e.g. the output of a DequantizeLinear", t)
	}
	return rank, dim, nil
}

// cutAt returns a copy of m whose one output, FeaturesOutput, is tensor t
// (written by node tp) pooled by global average pooling (rank 4) or taken
// as it is (rank 2), and the name of the copy's input. transposed reports
// that the pooled tensor is the NCHW tensor that tp transposes to t.
func cutAt(m *onnxpb.ModelProto, t string, tp *onnxpb.NodeProto, rank int, input string, layout dataset.Layout) (out *onnxpb.ModelProto, in string, transposed bool, err error) {
	pooled := t
	switch rank {
	case 4:
		// tf2onnx transposes back to NHWC before a graph output; pool the
		// NCHW tensor it transposed.
		if tp.GetOpType() == "Transpose" && len(tp.Input) == 1 && slices.Equal(onnxgraph.Attr(tp, "perm").GetInts(), []int64{0, 2, 3, 1}) {
			pooled, transposed = tp.Input[0], true
		}
	case 2:
	default:
		return nil, "", false, fmt.Errorf("feature tensor %q has rank %d; want 4 (pooled) or 2", t, rank)
	}
	out = proto.Clone(m).(*onnxpb.ModelProto)
	g := out.Graph
	names := onnxgraph.Names(g)
	ren := onnxgraph.Reserve(g, names, FeaturesOutput)
	pooled = ren(pooled)
	in = ren(input)
	if rank == 4 {
		gap := onnxgraph.Unique(names, "features_gap")
		g.Node = append(g.Node,
			onnxgraph.Node("GlobalAveragePool", "tlearn_features_gap", []string{pooled}, []string{gap}),
			onnxgraph.Node("Flatten", "tlearn_features", []string{gap}, []string{FeaturesOutput}, onnxgraph.AttrInt("axis", 1)))
	} else {
		g.Node = append(g.Node, onnxgraph.Node("Identity", "tlearn_features", []string{pooled}, []string{FeaturesOutput}))
	}
	g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(FeaturesOutput, onnxpb.TensorProto_FLOAT, []any{"N", nil})}
	finishCut(out, in, layout, true)
	out.DocString = proto.String(fmt.Sprintf("tlearn models prepare: custom backbone, output %s from %q", FeaturesOutput, t))
	return out, in, transposed, nil
}

// checkCustomCut runs the cut model at side size, then at size+32, and
// returns the features' width and whether the input's spatial dims may
// stay free: only where the model runs at another size too (models with
// fixed Reshapes do not).
func checkCustomCut(ctx context.Context, out *onnxpb.ModelProto, in string, dims []onnxgraph.Dim, layout dataset.Layout, size, threads int) (dim int, symbolic bool, err error) {
	b, err := Marshal(out)
	if err != nil {
		return 0, false, err
	}
	for _, side := range []int{size, size + 32} {
		res, err := probe(ctx, b, in, inputShape(dims, layout, checkBatch, side), []string{FeaturesOutput}, threads)
		if err != nil {
			if side != size {
				break
			}
			return 0, false, fmt.Errorf("check run of the cut model: %w", err)
		}
		sh := res[0].Shape
		if len(sh) != 2 || sh[0] != checkBatch {
			return 0, false, fmt.Errorf("check run of the cut model: %s has shape %v, want [%d,D]", FeaturesOutput, sh, checkBatch)
		}
		dim, symbolic = int(sh[1]), side != size
	}
	return dim, symbolic, nil
}

// fixedSide is the input's fixed square side, or 0.
func fixedSide(input *onnxpb.ValueInfoProto) int {
	_, dims, _ := onnxgraph.Shape(input)
	if len(dims) != 4 {
		return 0
	}
	h := 2
	if dims[3].Value == 3 && dims[1].Value != 3 {
		h = 1
	}
	if dims[h].Value > 0 && dims[h].Value == dims[h+1].Value {
		return int(dims[h].Value)
	}
	return 0
}

func inputShape(dims []onnxgraph.Dim, layout dataset.Layout, batch, side int) []int64 {
	// A VGG's input may declare no shape (it is optional in ONNX); its first
	// Conv takes 3 channels.
	var c int64
	if len(dims) == 4 {
		c = dims[1].Value
		if layout == dataset.NHWC {
			c = dims[3].Value
		}
	}
	if c <= 0 {
		c = 3
	}
	if layout == dataset.NHWC {
		return []int64{int64(batch), int64(side), int64(side), c}
	}
	return []int64{int64(batch), c, int64(side), int64(side)}
}

func fixedInputDims(dims []onnxgraph.Dim, layout dataset.Layout, side int) []any {
	s := inputShape(dims, layout, 1, side)
	return []any{"N", s[1], s[2], s[3]}
}

// finishCut removes what the outputs do not need, frees the input's batch
// and (when spatial) its height and width, and drops value_info, whose
// fixed shapes (the Model Zoo declares every tensor at 224) would contradict
// the free dims; ONNX Runtime infers shapes itself.
func finishCut(m *onnxpb.ModelProto, input string, layout dataset.Layout, spatial bool) {
	g := m.Graph
	onnxgraph.Prune(g)
	g.ValueInfo = nil
	inits := make(map[string]bool, len(g.Initializer))
	for _, t := range g.Initializer {
		inits[t.GetName()] = true
	}
	var ins []*onnxpb.ValueInfoProto
	for _, vi := range g.Input {
		if vi.GetName() == input {
			ins = append(ins, vi)
		}
	}
	if len(ins) != len(g.Input) {
		// Initializers listed as inputs (IR < 4) would be inputs a session
		// must be able to feed; IR 4 made that optional.
		m.IrVersion = proto.Int64(max(m.GetIrVersion(), 4))
	}
	g.Input = ins
	_, dims, _ := onnxgraph.Shape(ins[0])
	c := inputShape(dims, layout, 1, 1)
	var nd []any
	switch {
	case !spatial:
		nd = nil
	case layout == dataset.NHWC:
		nd = []any{"N", "H", "W", c[3]}
	default:
		nd = []any{"N", c[1], "H", "W"}
	}
	if nd != nil {
		setInputDims(g, input, nd)
	} else if len(dims) > 0 {
		// Probe models keep the declared sizes; only a fixed batch of 1 is
		// freed, so that probes can run any batch.
		d := make([]any, len(dims))
		for i, x := range dims {
			switch {
			case x.Value > 0:
				d[i] = x.Value
			case x.Param != "":
				d[i] = x.Param
			}
		}
		d[0] = "N"
		setInputDims(g, input, d)
	}
	m.ProducerName = proto.String("tlearn")
	m.ProducerVersion = nil
}

func setInputDims(g *onnxpb.GraphProto, name string, dims []any) {
	for i, vi := range g.Input {
		if vi.GetName() == name {
			g.Input[i] = onnxgraph.ValueInfo(name, onnxpb.TensorProto_FLOAT, dims)
		}
	}
}

func setOutputDims(g *onnxpb.GraphProto, name string, dims []any) {
	for i, vi := range g.Output {
		if vi.GetName() == name {
			g.Output[i] = onnxgraph.ValueInfo(name, onnxpb.TensorProto_FLOAT, dims)
		}
	}
}

// checkVGGExtractor runs a prepared VGG extractor once at checkSize and
// compares its outputs' shapes with the spec.
func checkVGGExtractor(ctx context.Context, model []byte, spec *Spec, threads int) error {
	dims := []onnxgraph.Dim{{}, {Value: 3}, {}, {}}
	if spec.Preprocessing.Layout == dataset.NHWC {
		dims = []onnxgraph.Dim{{}, {}, {}, {Value: 3}}
	}
	res, err := probe(ctx, model, spec.Input, inputShape(dims, spec.Preprocessing.Layout, checkBatch, checkSize), []string{FeaturesOutput, MapsOutput}, threads)
	if err != nil {
		return fmt.Errorf("check run of the cut model: %w", err)
	}
	m := checkSize / spec.Maps.Stride
	want := [][]int64{{checkBatch, int64(spec.Features.Dim)}, {checkBatch, int64(spec.Maps.Channels), int64(m), int64(m)}}
	for i, r := range res {
		if !slices.Equal(r.Shape, want[i]) || !r.Float32 {
			return fmt.Errorf("check run of the cut model: output %d has shape %v, want %v float32", i, r.Shape, want[i])
		}
	}
	return nil
}

// probe runs model once under ONNX Runtime on a deterministic input of the
// given shape: a smooth, varied pattern in the range of preprocessed
// pixels. Probes are small (batch 1 or 2 at test sizes).
func probe(ctx context.Context, model []byte, input string, shape []int64, outputs []string, threads int) ([]ortlib.ProbeOutput, error) {
	n, _ := onnxgraph.NumElements(shape)
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i%251)/125 - 1
	}
	return ortlib.Probe(ctx, model, []ortlib.Tensor{{Name: input, Shape: shape, Data: data}}, outputs, threads)
}
