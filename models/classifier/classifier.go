package classifier

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/models"
	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Tensor names and input layout of an exported classifier.
const (
	Input  = "pixels"        // uint8 [N,H,W,3], RGB
	Output = "probabilities" // float32 [N,K]
	// InputLayout is recorded under MetaInputLayout.
	InputLayout = "NHWC uint8 RGB"
	// Format is the MetaFormat this tlearn writes and reads.
	Format = 1
)

// Keys of an exported classifier's metadata_props. Values are strings;
// MetaClasses and MetaPreprocessing hold JSON.
const (
	MetaFormat        = "tlearn.format"
	MetaClasses       = "tlearn.classes"       // JSON array of class names, in output order
	MetaSize          = "tlearn.size"          // square side images are resized to (a default: H and W are free unless MetaFixedSize)
	MetaSizeMultiple  = "tlearn.size_multiple" // other sides must be multiples of this (absent: any side)
	MetaFixedSize     = "tlearn.fixed_size"    // the only side the backbone accepts (absent: free)
	MetaInterpolation = "tlearn.interpolation" // resize filter, as dataset.ParseInterpolation reads it
	MetaPreprocessing = "tlearn.preprocessing" // JSON of dataset.Preprocessing, as done inside the graph
	MetaInputLayout   = "tlearn.input_layout"  // InputLayout
	MetaSourceSHA256  = "tlearn.source_model_sha256"
	MetaBackboneSHA   = "tlearn.backbone_sha256" // of the file `models prepare` cut
	MetaPreset        = "tlearn.preset"
	MetaMode          = "tlearn.mode" // ModeHead or ModeFinetune
	// MetaQuantization is the scheme of an int8 backbone (models
	// quantize); absent for float32.
	MetaQuantization = "tlearn.quantization"
)

// Training modes of a run (settings.json "mode", classifier MetaMode).
const (
	ModeHead     = "head"     // frozen backbone, trained head
	ModeFinetune = "finetune" // block5 trained with the head
)

// minOpset is the oldest default-domain opset Build extends: from 7
// on, Gemm, Mul and Add broadcast their bias without attributes.
const minOpset = 7

// Sentinel errors of Build and ReadInfo; returned errors wrap them.
var (
	// ErrWeightsMismatch means the weights do not fit the model or the classes.
	ErrWeightsMismatch = errors.New("classifier: weights do not fit the model")
	// ErrNotClassifier means an ONNX file lacks tlearn's classifier metadata.
	ErrNotClassifier = errors.New("classifier: not a tlearn classifier (no " + MetaClasses + " metadata)")
)

// Dense is a fully connected layer in Keras layout: y = x·Kernel + Bias.
type Dense struct {
	In, Out int
	Kernel  []float32 // In×Out, row-major
	Bias    []float32 // Out
}

// Block5Params are fine-tuned values for block5's three convolutions, in
// the order and torchvision layout of models.Spec.Block5: ConvWeights[k] is
// [C,C,3,3] row-major, ConvBiases[k] is [C].
type Block5Params struct {
	ConvWeights [3][]float32
	ConvBiases  [3][]float32
}

// Weights are the trained parameters that Build puts on the backbone.
type Weights struct {
	Hidden *Dense // nil for a head without a hidden layer
	Output Dense
	// Block5 replaces the prepared model's block5 parameters (a fine-tuned
	// run); nil keeps them (a head-only run).
	Block5 *Block5Params
}

// Settings describe the classifier beyond its weights. Classes is
// required; the zero value of the rest means: the model's default size,
// nearest-neighbour resizing, and a check run under ONNX Runtime.
type Settings struct {
	// Classes are the names of the K outputs, in order.
	Classes []string
	// Size is the square side recorded as the classifier's input size; 0
	// means the spec's (fixed size, else default size).
	Size int
	// Interpolation is the resize filter recorded for classify; "" means
	// dataset.Nearest.
	Interpolation dataset.Interpolation
	// ExtractorSHA256 is the sha256 of the extractor.onnx file the
	// classifier is built from, recorded under MetaSourceSHA256.
	ExtractorSHA256 string
	// SkipCheck skips running the classifier once under ONNX Runtime (which
	// must then be initialized) on a batch of 2 at Size.
	SkipCheck bool
	// Threads for the check run; 0 means one per core.
	Threads int
}

// Build builds one ONNX classifier from a prepared extractor (the model
// in spec's folder, as models.Load returns it) and trained weights:
//
//	pixels uint8 [N,H,W,3] RGB
//	  -> (Transpose to NCHW) -> (Gather BGR) -> Cast float -> Mul, Add   (preprocessing)
//	  -> backbone up to block5_pool -> GlobalAveragePool -> Flatten       (features [N,D])
//	  -> Gemm -> Relu -> Gemm -> Softmax                                  (probabilities [N,K])
//
// Resizing stays outside the graph: callers resize to the recorded size
// (any other side accepted by the backbone works too). The maps output and
// what only it needs are dropped; block5's initializers carry w.Block5 when
// given. Class names, size, interpolation and preprocessing are recorded in
// metadata_props (the Meta* keys; ReadInfo reads them back). The
// extractor is not modified. Unless s.SkipCheck, the result is run once
// under ONNX Runtime; a cancelled ctx stops that run and Build returns an
// error that wraps ctx's.
func Build(ctx context.Context, spec *models.Spec, extractor *onnxpb.ModelProto, w Weights, s Settings) (*onnxpb.ModelProto, error) {
	size, err := checkBuild(spec, w, &s)
	if err != nil {
		return nil, buildError(err)
	}
	if v := defaultOpset(extractor); v < minOpset {
		return nil, fmt.Errorf("classifier: the backbone uses ONNX opset %d; the classifier needs %d or newer (re-export the backbone with a newer opset)", v, minOpset)
	}
	m := proto.Clone(extractor).(*onnxpb.ModelProto)
	g := m.Graph
	names := onnxgraph.Names(g)
	ren := onnxgraph.Reserve(g, names, Input, Output)
	input, features := ren(spec.Input), ren(spec.Features.Name)
	if !slices.ContainsFunc(g.Input, func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == input }) {
		return nil, fmt.Errorf("classifier: the extractor has no input %q (spec.json and extractor.onnx do not belong together)", spec.Input)
	}
	if !slices.ContainsFunc(g.Output, func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == features }) {
		return nil, fmt.Errorf("classifier: the extractor has no output %q", spec.Features.Name)
	}
	if w.Block5 != nil {
		if err := setBlock5(g, spec, ren, w.Block5); err != nil {
			return nil, buildError(err)
		}
	}

	pre := preprocessNodes(g, names, spec.Preprocessing, input)
	head := headNodes(g, names, w, features)
	g.Node = slices.Concat(pre, g.Node, head)
	dims := []any{"N", "H", "W", 3}
	if spec.FixedSize > 0 {
		dims = []any{"N", spec.FixedSize, spec.FixedSize, 3}
	}
	g.Input = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(Input, onnxpb.TensorProto_UINT8, dims)}
	g.Output = []*onnxpb.ValueInfoProto{onnxgraph.ValueInfo(Output, onnxpb.TensorProto_FLOAT, []any{"N", len(s.Classes)})}
	g.ValueInfo = nil
	onnxgraph.Prune(g)
	g.Name = proto.String("tlearn_classifier")

	mode := ModeHead
	if w.Block5 != nil {
		mode = ModeFinetune
	}
	meta, err := metadata(spec, s, size, mode)
	if err != nil {
		return nil, buildError(err)
	}
	m.MetadataProps = meta
	m.ProducerName = proto.String("tlearn")
	m.ProducerVersion = nil
	hidden := "no hidden layer"
	if w.Hidden != nil {
		hidden = fmt.Sprintf("hidden %d", w.Hidden.Out)
	}
	m.DocString = proto.String(fmt.Sprintf("tlearn export: %s classifier (%s backbone, %s, %d classes); input %s %s, output %s [N,%d]",
		mode, spec.Preset, hidden, len(s.Classes), Input, InputLayout, Output, len(s.Classes)))

	if !s.SkipCheck {
		if err := checkRun(ctx, m, size, len(s.Classes), s.Threads); err != nil {
			return nil, buildError(err)
		}
	}
	return m, nil
}

// buildError prefixes an error of one of Build's steps with the package
// name, which the ErrWeightsMismatch errors they return start with already.
func buildError(err error) error {
	if errors.Is(err, ErrWeightsMismatch) {
		return err
	}
	return fmt.Errorf("classifier: %w", err)
}

// checkBuild validates the weights against the spec and fills defaults;
// it returns the recorded input side.
func checkBuild(spec *models.Spec, w Weights, s *Settings) (int, error) {
	if spec == nil {
		return 0, errors.New("no spec")
	}
	k := len(s.Classes)
	if k == 0 {
		return 0, errors.New("no class names")
	}
	if i := slices.IndexFunc(s.Classes, func(c string) bool { return c == "" }); i >= 0 {
		return 0, fmt.Errorf("class %d has an empty name", i)
	}
	if err := spec.Preprocessing.Validate(); err != nil {
		return 0, err
	}
	d := spec.Features.Dim
	in := d
	if h := w.Hidden; h != nil {
		if err := h.check("hidden"); err != nil {
			return 0, err
		}
		if h.In != d {
			return 0, fmt.Errorf("%w: the hidden layer takes %d features but the model's features have %d", ErrWeightsMismatch, h.In, d)
		}
		in = h.Out
	}
	if err := w.Output.check("output"); err != nil {
		return 0, err
	}
	switch {
	case w.Output.In != in && w.Hidden != nil:
		return 0, fmt.Errorf("%w: the output layer takes %d inputs but the hidden layer has %d units", ErrWeightsMismatch, w.Output.In, in)
	case w.Output.In != in:
		return 0, fmt.Errorf("%w: the output layer takes %d features but the model's features have %d", ErrWeightsMismatch, w.Output.In, in)
	case w.Output.Out != k:
		return 0, fmt.Errorf("%w: the output layer has %d units but there are %d classes", ErrWeightsMismatch, w.Output.Out, k)
	}
	if w.Block5 != nil && spec.Block5 == nil {
		return 0, fmt.Errorf("%w: the weights carry fine-tuned block5 parameters but the %s model has no block5 (not VGG-shaped)", ErrWeightsMismatch, spec.Preset)
	}
	if s.Interpolation == "" {
		s.Interpolation = dataset.Nearest
	}
	if _, err := dataset.ParseInterpolation(string(s.Interpolation)); err != nil {
		return 0, err
	}
	size := cmp.Or(s.Size, spec.FixedSize, spec.DefaultSize)
	switch {
	case size <= 0 || size > 1<<14:
		return 0, fmt.Errorf("input size %d out of range", size)
	case spec.FixedSize > 0 && size != spec.FixedSize:
		return 0, fmt.Errorf("the model takes only %d×%d inputs, not %d", spec.FixedSize, spec.FixedSize, size)
	case spec.SizeMultiple > 0 && size%spec.SizeMultiple != 0:
		return 0, fmt.Errorf("input size %d is not a multiple of %d", size, spec.SizeMultiple)
	}
	return size, nil
}

func (d *Dense) check(what string) error {
	switch {
	case d.In <= 0 || d.Out <= 0:
		return fmt.Errorf("%w: %s layer has shape %d×%d", ErrWeightsMismatch, what, d.In, d.Out)
	case len(d.Kernel) != d.In*d.Out:
		return fmt.Errorf("%w: %s kernel has %d values for %d×%d", ErrWeightsMismatch, what, len(d.Kernel), d.In, d.Out)
	case len(d.Bias) != d.Out:
		return fmt.Errorf("%w: %s bias has %d values for %d units", ErrWeightsMismatch, what, len(d.Bias), d.Out)
	}
	return nil
}

// defaultOpset is the version of the default ONNX domain a model imports.
func defaultOpset(m *onnxpb.ModelProto) int64 {
	for _, o := range m.OpsetImport {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// setBlock5 replaces the values of block5's initializers in place, keeping
// their names and dims.
func setBlock5(g *onnxpb.GraphProto, spec *models.Spec, ren func(string) string, p *Block5Params) error {
	inits := make(map[string]int, len(g.Initializer))
	for i, t := range g.Initializer {
		inits[t.GetName()] = i
	}
	for k := range 3 {
		for j, name := range []string{spec.Block5.ConvWeights[k], spec.Block5.ConvBiases[k]} {
			data := p.ConvWeights[k]
			if j == 1 {
				data = p.ConvBiases[k]
			}
			i, ok := inits[ren(name)]
			if !ok {
				return fmt.Errorf("block5 parameter %q is not an initializer of the extractor (spec.json and extractor.onnx do not belong together)", name)
			}
			old := g.Initializer[i]
			n, ok := onnxgraph.NumElements(old.Dims)
			if !ok || n != int64(len(data)) {
				return fmt.Errorf("%w: block5_conv%d has %d fine-tuned values for the model's %s of shape %v", ErrWeightsMismatch, k+1, len(data), name, old.Dims)
			}
			g.Initializer[i] = models.NewTensorFloat32(old.GetName(), old.Dims, data)
		}
	}
	if spec.Int8() {
		rewireBlock5(g, spec, ren)
	}
	return nil
}

// rewireBlock5 makes an int8 extractor's block5 convolutions take the
// float32 initializers that setBlock5 filled instead of their int8 twins
// (models/quantize keeps both; the graph runs the twins): fine-tuned
// weights then run in float32 on the int8 backbone's block4 activations.
func rewireBlock5(g *onnxpb.GraphProto, spec *models.Spec, ren func(string) string) {
	float := map[string]string{}
	for k := range 3 {
		float[ren(spec.Quantization.Block5Weights[k])] = ren(spec.Block5.ConvWeights[k])
		float[ren(spec.Quantization.Block5Biases[k])] = ren(spec.Block5.ConvBiases[k])
	}
	for _, n := range g.Node {
		if n.GetOpType() != "Conv" {
			continue
		}
		for j, in := range n.Input {
			if f, ok := float[in]; ok && j > 0 {
				n.Input[j] = f
			}
		}
	}
}

// preprocessNodes turns the uint8 NHWC RGB input into the backbone's input
// (named input): the resize-free part of dataset.Preprocess, as graph ops.
// The layout and channel order change on uint8 values, a quarter of the
// bytes of the float tensor; scale, mean and std fold into one Mul and one
// Add per channel, left out where they are the identity.
func preprocessNodes(g *onnxpb.GraphProto, names map[string]bool, p dataset.Preprocessing, input string) []*onnxpb.NodeProto {
	var nodes []*onnxpb.NodeProto
	x := Input
	next := func(op, base string, inputs []string, attrs ...*onnxpb.AttributeProto) {
		out := onnxgraph.Unique(names, base)
		nodes = append(nodes, onnxgraph.Node(op, out, append([]string{x}, inputs...), []string{out}, attrs...))
		x = out
	}
	constant := func(base string, t func(string) *onnxpb.TensorProto) string {
		name := onnxgraph.Unique(names, base)
		g.Initializer = append(g.Initializer, t(name))
		return name
	}
	axis := int64(3)
	channelDims := []int64{3}
	if p.Layout == dataset.NCHW {
		next("Transpose", "tlearn_pixels_nchw", nil, onnxgraph.AttrInts("perm", 0, 3, 1, 2))
		axis = 1
		channelDims = []int64{3, 1, 1}
	}
	if p.ChannelOrder == dataset.BGR {
		idx := constant("tlearn_bgr_index", func(n string) *onnxpb.TensorProto { return models.NewTensorInt64(n, []int64{3}, []int64{2, 1, 0}) })
		next("Gather", "tlearn_pixels_bgr", []string{idx}, onnxgraph.AttrInt("axis", axis))
	}
	next("Cast", "tlearn_pixels_float", nil, onnxgraph.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	// v = (pixel·Scale − Mean)/Std = pixel·a + b, a and b rounded once
	// from float64.
	var a, b [3]float32
	for c := range 3 {
		a[c] = float32(float64(p.Scale) / float64(p.Std[c]))
		b[c] = float32(-float64(p.Mean[c]) / float64(p.Std[c]))
	}
	if a != [3]float32{1, 1, 1} {
		k := constant("tlearn_preprocess_scale", func(n string) *onnxpb.TensorProto { return models.NewTensorFloat32(n, channelDims, a[:]) })
		next("Mul", "tlearn_pixels_scaled", []string{k})
	}
	if b != [3]float32{} {
		k := constant("tlearn_preprocess_offset", func(n string) *onnxpb.TensorProto { return models.NewTensorFloat32(n, channelDims, b[:]) })
		next("Add", "tlearn_pixels_preprocessed", []string{k})
	}
	// The last node writes the backbone's input tensor itself, so that the
	// backbone's nodes stay untouched.
	nodes[len(nodes)-1].Output[0] = input
	return nodes
}

// headNodes appends the dense head's initializers to g and returns its
// nodes, from features to the classifier's output.
func headNodes(g *onnxpb.GraphProto, names map[string]bool, w Weights, features string) []*onnxpb.NodeProto {
	var nodes []*onnxpb.NodeProto
	x := features
	dense := func(layer string, d *Dense) {
		kernel, bias := onnxgraph.Unique(names, "tlearn_"+layer+".weight"), onnxgraph.Unique(names, "tlearn_"+layer+".bias")
		g.Initializer = append(g.Initializer,
			models.NewTensorFloat32(kernel, []int64{int64(d.In), int64(d.Out)}, d.Kernel),
			models.NewTensorFloat32(bias, []int64{int64(d.Out)}, d.Bias))
		out := onnxgraph.Unique(names, "tlearn_"+layer)
		// Gemm takes the Keras-layout kernel [in,out] as B without transB.
		nodes = append(nodes, onnxgraph.Node("Gemm", "tlearn_"+layer, []string{x, kernel, bias}, []string{out}))
		x = out
	}
	if w.Hidden != nil {
		dense("hidden", w.Hidden)
		out := onnxgraph.Unique(names, "tlearn_hidden_relu")
		nodes = append(nodes, onnxgraph.Node("Relu", "tlearn_hidden_relu", []string{x}, []string{out}))
		x = out
	}
	output := w.Output
	dense("output", &output)
	nodes = append(nodes, onnxgraph.Node("Softmax", "tlearn_softmax", []string{x}, []string{Output}, onnxgraph.AttrInt("axis", 1)))
	return nodes
}

func metadata(spec *models.Spec, s Settings, size int, mode string) ([]*onnxpb.StringStringEntryProto, error) {
	classes, err := json.Marshal(s.Classes)
	if err != nil {
		return nil, err
	}
	pre, err := json.Marshal(spec.Preprocessing)
	if err != nil {
		return nil, err
	}
	kv := map[string]string{
		MetaFormat:        strconv.Itoa(Format),
		MetaClasses:       string(classes),
		MetaSize:          strconv.Itoa(size),
		MetaInterpolation: string(s.Interpolation),
		MetaPreprocessing: string(pre),
		MetaInputLayout:   InputLayout,
		MetaSourceSHA256:  s.ExtractorSHA256,
		MetaBackboneSHA:   spec.Source.SHA256,
		MetaPreset:        spec.Preset,
		MetaMode:          mode,
		MetaQuantization:  spec.QuantizationScheme(),
	}
	if spec.SizeMultiple > 0 {
		kv[MetaSizeMultiple] = strconv.Itoa(spec.SizeMultiple)
	}
	if spec.FixedSize > 0 {
		kv[MetaFixedSize] = strconv.Itoa(spec.FixedSize)
	}
	keys := make([]string, 0, len(kv))
	for k, v := range kv {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	props := make([]*onnxpb.StringStringEntryProto, len(keys))
	for i, k := range keys {
		props[i] = &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(kv[k])}
	}
	return props, nil
}

// Info is what an exported classifier records about itself.
type Info struct {
	Format        int
	Classes       []string
	Size          int // default square input side
	SizeMultiple  int // 0: any side
	FixedSize     int // 0: free
	Interpolation dataset.Interpolation
	Preprocessing dataset.Preprocessing // done inside the graph; informative
	Mode          string
	SourceSHA256  string
	Preset        string
}

// CheckSize reports whether side is an input side the classifier accepts.
func (c *Info) CheckSize(side int) error {
	if err := c.checkSize(side); err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	return nil
}

func (c *Info) checkSize(side int) error {
	switch {
	case side <= 0 || side > 1<<14:
		return fmt.Errorf("input size %d out of range", side)
	case c.FixedSize > 0 && side != c.FixedSize:
		return fmt.Errorf("the classifier takes only %d×%d inputs, not %d", c.FixedSize, c.FixedSize, side)
	case c.SizeMultiple > 0 && side%c.SizeMultiple != 0:
		return fmt.Errorf("input size %d is not a multiple of %d", side, c.SizeMultiple)
	}
	return nil
}

// ReadInfo reads the metadata and checks the input and output of
// a classifier made by Build. A model without MetaClasses gives an error
// wrapping ErrNotClassifier. Errors do not name a file.
func ReadInfo(m *onnxpb.ModelProto) (*Info, error) {
	kv := make(map[string]string, len(m.GetMetadataProps()))
	for _, p := range m.GetMetadataProps() {
		kv[p.GetKey()] = p.GetValue()
	}
	raw, ok := kv[MetaClasses]
	if !ok {
		return nil, ErrNotClassifier
	}
	bad := func(key string, err error) error {
		return fmt.Errorf("classifier: metadata %s: %w", key, err)
	}
	info := &Info{Mode: kv[MetaMode], SourceSHA256: kv[MetaSourceSHA256], Preset: kv[MetaPreset]}
	var err error
	if info.Format, err = strconv.Atoi(kv[MetaFormat]); err != nil || info.Format != Format {
		return nil, bad(MetaFormat, fmt.Errorf("%q, this tlearn reads %d", kv[MetaFormat], Format))
	}
	if err := json.Unmarshal([]byte(raw), &info.Classes); err != nil {
		return nil, bad(MetaClasses, err)
	}
	if len(info.Classes) == 0 || slices.Contains(info.Classes, "") {
		return nil, bad(MetaClasses, fmt.Errorf("%d classes, or an empty name", len(info.Classes)))
	}
	ints := []struct {
		key      string
		dst      *int
		required bool
	}{{MetaSize, &info.Size, true}, {MetaSizeMultiple, &info.SizeMultiple, false}, {MetaFixedSize, &info.FixedSize, false}}
	for _, f := range ints {
		v, ok := kv[f.key]
		if !ok && !f.required {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1<<14 {
			return nil, bad(f.key, fmt.Errorf("%q is not a side in pixels", v))
		}
		*f.dst = n
	}
	if err := info.checkSize(info.Size); err != nil {
		return nil, bad(MetaSize, err)
	}
	if info.Interpolation, err = dataset.ParseInterpolation(kv[MetaInterpolation]); err != nil {
		return nil, bad(MetaInterpolation, err)
	}
	if p, ok := kv[MetaPreprocessing]; ok {
		if err := json.Unmarshal([]byte(p), &info.Preprocessing); err != nil {
			return nil, bad(MetaPreprocessing, err)
		}
	}
	if l := kv[MetaInputLayout]; l != InputLayout {
		return nil, bad(MetaInputLayout, fmt.Errorf("%q, want %q", l, InputLayout))
	}
	if err := checkIO(m.GetGraph(), len(info.Classes)); err != nil {
		return nil, err
	}
	return info, nil
}

// checkIO checks the declared input and output against the
// metadata, so that a hand-edited file fails here rather than in a run.
func checkIO(g *onnxpb.GraphProto, k int) error {
	if len(g.GetInput()) != 1 || g.Input[0].GetName() != Input {
		return fmt.Errorf("classifier: input: want one input %q", Input)
	}
	elem, dims, known := onnxgraph.Shape(g.Input[0])
	if elem != onnxpb.TensorProto_UINT8 || !known || len(dims) != 4 || dims[3].Value != 3 {
		return fmt.Errorf("classifier: input %q: want uint8 [N,H,W,3], have %s %v", Input, onnxgraph.DataTypeName(int32(elem)), dims)
	}
	i := slices.IndexFunc(g.GetOutput(), func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == Output })
	if i < 0 {
		return fmt.Errorf("classifier: no output %q", Output)
	}
	elem, dims, known = onnxgraph.Shape(g.Output[i])
	if elem != onnxpb.TensorProto_FLOAT || !known || len(dims) != 2 || (dims[1].Value > 0 && dims[1].Value != int64(k)) {
		return fmt.Errorf("classifier: output %q: want float [N,%d], have %s %v", Output, k, onnxgraph.DataTypeName(int32(elem)), dims)
	}
	return nil
}

// checkRun runs a classifier once on a batch of two deterministic
// images and checks that each row is a probability distribution.
func checkRun(ctx context.Context, m *onnxpb.ModelProto, side, k, threads int) error {
	b, err := models.Marshal(m)
	if err != nil {
		return err
	}
	const batch = 2
	pix := make([]uint8, batch*side*side*3)
	for i := range pix {
		pix[i] = uint8(i*7 + i/(3*side)) // smooth in x, varied across rows and channels
	}
	res, err := ortlib.Probe(ctx, b, []ortlib.Tensor{{Name: Input, Shape: []int64{batch, int64(side), int64(side), 3}, Data: pix}}, []string{Output}, threads)
	if err != nil {
		return fmt.Errorf("check run of the classifier: %w", err)
	}
	if !res[0].Float32 {
		return fmt.Errorf("check run of the classifier: output %s is not float32", Output)
	}
	probs, shape := res[0].Data, res[0].Shape
	if !slices.Equal(shape, []int64{batch, int64(k)}) {
		return fmt.Errorf("check run of the classifier: %s has shape %v, want [%d %d]", Output, shape, batch, k)
	}
	for r := range batch {
		var sum float64
		for _, p := range probs[r*k : (r+1)*k] {
			if math.IsNaN(float64(p)) || p < 0 || p > 1 {
				return fmt.Errorf("check run of the classifier: probability %v", p)
			}
			sum += float64(p)
		}
		if math.Abs(sum-1) > 1e-3 {
			return fmt.Errorf("check run of the classifier: probabilities of an image sum to %v", sum)
		}
	}
	return nil
}

// Summary describes the classifier's input and output in one line each,
// for people.
func (info *Info) Summary() (input, output string) {
	side := "H,W"
	if info.FixedSize > 0 {
		side = fmt.Sprintf("%d,%d", info.FixedSize, info.FixedSize)
	}
	input = fmt.Sprintf("%s uint8 [N,%s,3] RGB 0..255, resized to %d×%d (%s) before the model", Input, side, info.Size, info.Size, info.Interpolation)
	output = fmt.Sprintf("%s float32 [N,%d]: %s", Output, len(info.Classes), strings.Join(info.Classes, ", "))
	return input, output
}
