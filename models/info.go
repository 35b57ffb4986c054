package models

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tlearn/tlearn/models/internal/onnxgraph"
	"github.com/tlearn/tlearn/models/onnxpb"
)

// Info summarizes an ONNX model for `tlearn models info`.
type Info struct {
	File       string       `json:"file"`
	IRVersion  int64        `json:"ir_version"`
	Opsets     []OpsetInfo  `json:"opsets"`
	Producer   string       `json:"producer,omitempty"`
	Inputs     []TensorInfo `json:"inputs"`
	Outputs    []TensorInfo `json:"outputs"`
	Nodes      int          `json:"nodes"`
	Ops        []OpCount    `json:"ops"` // by count, descending
	Parameters int64        `json:"parameters"`
	// ParameterBytes is the parameters' size in their stored types.
	ParameterBytes int64             `json:"parameter_bytes"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	// VGG is the detected VGG16 conv base; NotVGG says why there is none.
	VGG    *VGG   `json:"vgg,omitempty"`
	Preset string `json:"preset,omitempty"` // detected preset, "" when ambiguous or not VGG
	NotVGG string `json:"not_vgg,omitempty"`
	// Spec is the prepared model's spec when File is a prepared folder's extractor.
	Spec *Spec `json:"spec,omitempty"`
}

// OpsetInfo is one imported operator set.
type OpsetInfo struct {
	Domain  string `json:"domain"`
	Version int64  `json:"version"`
}

// TensorInfo is a graph input or output.
type TensorInfo struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	Shape []string `json:"shape"` // nil when the rank is unknown; "?" for an unknown dim
}

// OpCount is how many nodes of the main graph have an op type.
type OpCount struct {
	Op    string `json:"op"`
	Count int    `json:"count"`
}

// Inspect summarizes a model.
func Inspect(m *onnxpb.ModelProto) *Info {
	g := m.GetGraph()
	info := &Info{IRVersion: m.GetIrVersion(), Producer: strings.TrimSpace(m.GetProducerName() + " " + m.GetProducerVersion()), Nodes: len(g.GetNode())}
	for _, o := range m.OpsetImport {
		d := o.GetDomain()
		if d == "" {
			d = "ai.onnx"
		}
		info.Opsets = append(info.Opsets, OpsetInfo{d, o.GetVersion()})
	}
	inits := make(map[string]bool)
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
		n, _ := onnxgraph.NumElements(t.Dims)
		info.Parameters += n
		b, _ := byteSize(t)
		info.ParameterBytes += b
	}
	for _, vi := range g.GetInput() {
		if !inits[vi.GetName()] {
			info.Inputs = append(info.Inputs, tensorInfo(vi))
		}
	}
	for _, vi := range g.GetOutput() {
		info.Outputs = append(info.Outputs, tensorInfo(vi))
	}
	counts := make(map[string]int)
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			op = d + "." + op
		}
		counts[op]++
		if n.GetOpType() == "Constant" {
			if t, ok := constantValue(n); ok {
				c, _ := onnxgraph.NumElements(t.Dims)
				info.Parameters += c
				b, _ := byteSize(t)
				info.ParameterBytes += b
			}
		}
	}
	for op, c := range counts {
		info.Ops = append(info.Ops, OpCount{op, c})
	}
	sort.Slice(info.Ops, func(i, j int) bool {
		if info.Ops[i].Count != info.Ops[j].Count {
			return info.Ops[i].Count > info.Ops[j].Count
		}
		return info.Ops[i].Op < info.Ops[j].Op
	})
	for _, kv := range m.MetadataProps {
		if info.Metadata == nil {
			info.Metadata = make(map[string]string)
		}
		info.Metadata[kv.GetKey()] = kv.GetValue()
	}
	if v, err := DetectVGG(m); err != nil {
		info.NotVGG = strings.TrimPrefix(err.Error(), ErrNotVGG.Error()+": ")
	} else {
		info.VGG = v
		info.Preset, _ = detectPreset(v)
	}
	return info
}

func tensorInfo(vi *onnxpb.ValueInfoProto) TensorInfo {
	elem, dims, known := onnxgraph.Shape(vi)
	ti := TensorInfo{Name: vi.GetName(), Type: strings.ToLower(onnxgraph.DataTypeName(int32(elem)))}
	if vi.GetType().GetTensorType() == nil {
		ti.Type = "?"
	}
	if known {
		ti.Shape = make([]string, len(dims))
		for i, d := range dims {
			ti.Shape[i] = d.String()
		}
	}
	return ti
}

// InspectPath inspects an ONNX file, or a prepared model folder (its
// extractor.onnx, with the spec).
func InspectPath(path string) (*Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("models: info %s: %w", path, err)
	}
	var spec *Spec
	file := path
	if st.IsDir() {
		if spec, err = ReadSpec(path); err != nil {
			if errors.Is(err, ErrNotPrepared) {
				return nil, fmt.Errorf("models: info %s: a folder, but no %s in it: give an .onnx file or a prepared model folder", path, specFile)
			}
			return nil, err
		}
		file = filepath.Join(path, ExtractorFile)
	}
	m, err := Load(file)
	if err != nil {
		return nil, err
	}
	info := Inspect(m)
	info.File = file
	info.Spec = spec
	return info, nil
}

// WriteText writes the summary for people.
func (info *Info) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("file: %s\n", info.File)
	var ops []string
	for _, o := range info.Opsets {
		ops = append(ops, fmt.Sprintf("%s %d", o.Domain, o.Version))
	}
	p("ir version: %d, opsets: %s", info.IRVersion, strings.Join(ops, ", "))
	if info.Producer != "" {
		p(", producer: %s", info.Producer)
	}
	p("\n")
	if synth, ok := info.Metadata[MetaSynthetic]; ok {
		// The graph may mimic an exporter's (producer included): say who made it.
		p("made by tlearn models synth, seeded random weights: %s\n", synth)
	}
	for _, x := range []struct {
		title string
		ts    []TensorInfo
	}{{"inputs", info.Inputs}, {"outputs", info.Outputs}} {
		p("%s:\n", x.title)
		for _, t := range x.ts {
			shape := "rank unknown"
			if t.Shape != nil {
				shape = "[" + strings.Join(t.Shape, ",") + "]"
			}
			p("  %-24s %-8s %s\n", t.Name, t.Type, shape)
		}
	}
	p("parameters: %d (%.1f MB)\n", info.Parameters, float64(info.ParameterBytes)/1e6)
	var oc []string
	for _, o := range info.Ops {
		oc = append(oc, fmt.Sprintf("%s %d", o.Op, o.Count))
	}
	p("nodes: %d: %s\n", info.Nodes, strings.Join(oc, ", "))
	if v := info.VGG; v != nil {
		preset := info.Preset
		if preset == "" {
			preset = "ambiguous (Keras names, NCHW input): choose with --preset"
		}
		p("VGG16: input %s %s, preset %s\n", v.Input, v.Layout, preset)
		for i, b := range v.Blocks {
			p("  block%d: %d channels, convs %s -> pool %s\n", i+1, b.Channels, strings.Join(b.Convs, ", "), b.Pool)
		}
	} else {
		p("not a VGG16: %s\n", info.NotVGG)
	}
	if s := info.Spec; s != nil {
		p("prepared: preset %s, input %s (%s %s), default size %d\n", s.Preset, s.Input, s.Preprocessing.Layout, s.Preprocessing.ChannelOrder, s.DefaultSize)
		p("  %s: [N,%d] pooled from %s\n", s.Features.Name, s.Features.Dim, s.Features.Tensor)
		if s.Maps != nil {
			p("  %s: [N,%d,H/%d,W/%d] from %s\n", s.Maps.Name, s.Maps.Channels, s.Maps.Stride, s.Maps.Stride, s.Maps.Tensor)
		}
		if s.Block5 != nil {
			p("  block5 weights: %s\n  block5 biases: %s\n", strings.Join(s.Block5.ConvWeights[:], ", "), strings.Join(s.Block5.ConvBiases[:], ", "))
		}
		p("  source: %s (sha256 %s, %d bytes)\n", s.Source.Path, s.Source.SHA256, s.Source.Bytes)
		if q := s.Quantization; q != nil {
			c := q.Calibration
			p("  int8: %s of extractor sha256 %s, calibrated on %d images of %s at %d×%d (seed %d, list sha256 %s); block5's float32 weights kept for finetune\n",
				q.Scheme, q.FromSHA256, c.Images, c.Data, c.Size, c.Size, c.Seed, c.FilesSHA256)
		}
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
