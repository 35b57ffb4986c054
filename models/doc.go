// Package models reads, inspects and writes ONNX files, and prepares
// backbones: Load/Save/Marshal/Unmarshal (external tensor data inlined),
// tensor accessors, Inspect (what `tlearn models info` prints), VGG16
// detection and the backbone presets, Prepare (cut a backbone into a
// prepared model folder: extractor.onnx and spec.json, read back with
// ReadSpec, ReadExtractor and ReadBlock5), and synthetic VGG16s for tests
// and benchmarks (SynthVGG16, WriteTinyPrepared).
//
// Its subpackages do the other jobs around models: models/fetch downloads
// published models, models/traingraph generates the fine-tuning graphs,
// models/classifier builds the exported classifier, models/quantize makes
// the int8 extractor of a prepared model; the graph-editing
// helpers they share live in models/internal/onnxgraph. models runs no
// sessions itself except Prepare's short check runs (internal/ortlib's
// Probe).
//
// models imports dataset, internal packages and its building blocks
// models/onnxpb (the generated ONNX types) and models/internal/onnxgraph.
// It must not import head, extractor, cmd or the job subpackages
// models/fetch, models/traingraph, models/classifier and models/quantize (they import
// models, never the reverse), nor ONNX Runtime directly. Its errors name files and never
// CLI flags; the CLI branches on its sentinels (ErrNotPrepared, ErrNotVGG,
// ErrPreset, ErrNoTensor, ...) to add advice.
package models
